"""Datasets in and out: the one place a method (bc, dagger, gail) gets its data from.

``load_data(config)`` reads what ``data.path`` names, tried in this order:

    a .csv / .parquet file      a table of decisions (``mentor.data.table``), its columns named
                                by data.observation_columns, action_column, reward_column and
                                episode_column
    a folder                    a dataset folder in Minari's format (``mentor record`` writes
                                them): the folder with data/metadata.json, or that data folder
    anything else               the id of a Minari dataset installed under Minari's data root
                                ($MINARI_DATASETS_PATH, default ~/.minari/datasets), such as
                                "D4RL/door/human-v2"

then keeps the first ``data.max_episodes`` episodes, and, when the env's spaces are given,
checks the data lives in them (a table reads its features and labels into the env's spaces).

``save_dataset(dataset, folder)`` writes Minari's format (``mentor.data.minari_format``): the
folder's name is the dataset id, so with ``MINARI_DATASETS_PATH`` pointing at its parent,
``minari.load_dataset(name)`` opens it too.
"""

from __future__ import annotations

from pathlib import Path

from gymnasium import spaces

from mentor.data import minari_format
from mentor.data.dataset import Dataset
from mentor.data.table import TABLE_SUFFIXES, read_table
from mentor.errors import DatasetError, did_you_mean
from mentor.experiment import DataConfig


def load_data(
    config: DataConfig,
    observation_space: spaces.Space | None = None,
    action_space: spaces.Space | None = None,
) -> Dataset:
    """The dataset of the data section, checked against the env's spaces when they are given."""
    if not config.path:
        raise DatasetError(
            "data.path is not set: give a dataset folder, a Minari dataset id, or a "
            ".csv/.parquet table"
        )
    path = Path(config.path).expanduser()
    if path.suffix.lower() in TABLE_SUFFIXES:
        dataset = read_table(
            path,
            config.observation_columns,
            config.action_column,
            config.reward_column,
            config.episode_column,
            observation_space,
            action_space,
        )
    elif path.is_dir():
        folder = minari_format.data_dir(path)
        if folder is None:
            raise DatasetError(
                f"'{path}' is not a dataset folder: it has no data/{minari_format.METADATA} "
                "(mentor record writes dataset folders)"
            )
        dataset = minari_format.read(folder, config.max_episodes)
    elif path.exists():
        raise DatasetError(
            f"'{path}' is a file but not a table ({', '.join(TABLE_SUFFIXES)}): give a table, "
            "a dataset folder or a Minari dataset id"
        )
    else:
        dataset = _installed(config.path, config.max_episodes)
    if config.max_episodes is not None and dataset.num_episodes > config.max_episodes:
        dataset = dataset.episodes(list(range(config.max_episodes)))
    if observation_space is not None or action_space is not None:
        dataset.check_spaces(
            observation_space or dataset.observation_space, action_space or dataset.action_space
        )
    return dataset


def _installed(dataset_id: str, max_episodes: int | None) -> Dataset:
    root = minari_format.datasets_root()
    folder = minari_format.data_dir(root / dataset_id)
    if folder is None:
        installed = minari_format.installed_ids(root)
        raise DatasetError(
            f"data.path '{dataset_id}' is neither a file, a dataset folder, nor a Minari dataset "
            f"installed under {root}" + did_you_mean(dataset_id, installed)
        )
    return minari_format.read(folder, max_episodes, source=f"Minari dataset '{dataset_id}'")


def save_dataset(
    dataset: Dataset,
    path: str | Path,
    *,
    env_id: str | None = None,
    env_kwargs: dict | None = None,
    max_episode_steps: int | None = None,
    seeds: list[int] | None = None,
    dataset_id: str | None = None,
    data_format: str = "hdf5",
    overwrite: bool = False,
) -> Path:
    """Write ``dataset`` to the folder ``path`` in Minari's format; returns the folder.

    ``env_id`` (with its kwargs and time limit) records the env's spec, so Minari's
    ``recover_environment`` can remake it; ``seeds`` are the episodes' reset seeds. The dataset
    id is the folder's name (with '-v0' added when it has no version); ``data_format`` is
    "hdf5" (default) or "arrow"."""
    env_spec = minari_format.env_spec_for(env_id, env_kwargs, max_episode_steps) if env_id else None
    return minari_format.write(
        dataset,
        path,
        dataset_id=dataset_id,
        env_spec=env_spec,
        seeds=seeds,
        data_format=data_format,
        overwrite=overwrite,
    )
