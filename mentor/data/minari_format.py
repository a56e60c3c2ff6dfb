"""Minari's on-disk dataset format, read and written directly (no ``minari`` import needed).

Minari (Farama's standard for offline-RL datasets) keeps each dataset in a folder named by its
id, under a root folder (``$MINARI_DATASETS_PATH``, default ``~/.minari/datasets``)::

    <root>/<dataset_id>/data/metadata.json     what the dataset is (below)
    <root>/<dataset_id>/data/main_data.hdf5     data_format "hdf5": one group per episode
    <root>/<dataset_id>/data/<i>/part-0.arrow   data_format "arrow" (or .parquet for
    <root>/<dataset_id>/data/<i>/metadata.json    "parquet"): one folder per episode

``metadata.json`` holds ``dataset_id``, ``minari_version`` (the format version: readers refuse
versions they do not know), ``data_format``, ``total_episodes``, ``total_steps``,
``observation_space`` and ``action_space`` (each a JSON *string* of Minari's space
serialization: {"type": "Box", "dtype", "shape", "low", "high"}, {"type": "Discrete", "dtype":
"int64", "start", "n"}, MultiDiscrete, MultiBinary, {"type": "Dict", "subspaces": {...}}),
``env_spec`` (Gymnasium's ``EnvSpec.to_json()``, when known), ``jpeg_encoding`` (image spaces
stored as JPEG bytes when true; absent means true), ``dataset_size`` (MB) and free-form keys
such as ``description``.

An episode of T decisions stores T + 1 observations (the last is the observation after the
final decision) and T actions, rewards (float64), terminations and truncations (bool). In HDF5,
episode ``i`` is the group ``episode_i`` (attributes ``id``, ``seed`` when known,
``total_steps``) with one dataset per field, and a sub-group per key for a Dict space. In Arrow,
each episode is one record batch of T + 1 rows: observations and the other fields as columns
(a fixed-size list per row for Box, MultiDiscrete and MultiBinary, a struct for Dict), the last
row of actions, rewards, terminations and truncations being padding.

Writing follows what Minari 0.5 writes, so ``minari.load_dataset(dataset_id)`` opens mentor's
datasets; HDF5 is the default (h5py is much lighter than pyarrow), Arrow is available. Image
spaces are stored as raw arrays (``jpeg_encoding: false``): lossless. Reading accepts both
formats, JPEG-encoded images included.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import io
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.envs.registration import EnvSpec

from mentor.data.dataset import Dataset
from mentor.errors import DatasetError

METADATA = "metadata.json"
HDF5_FILE = "main_data.hdf5"
# The format version written to metadata.json: the newest Minari release whose layout this
# module writes (readers accept the versions they list as supported, 0.4.0 to 0.5.4 for 0.5.4).
FORMAT_VERSION = "0.5.4"
# Releases that write this same layout: when one of them is installed, its version is written
# (an older Minari refuses datasets from a newer one).
SAME_LAYOUT = {"0.5.0", "0.5.1", "0.5.2", "0.5.3", "0.5.4"}
FORMATS = ("hdf5", "arrow", "parquet")
# Minari's dataset id: (namespace/)name-vN; the version is required to load it by id.
DATASET_ID = re.compile(r"^(?:[-_\w][-_\w/]*[-_\w]+/)?[-_\w]+?-v\d+$")


# --- where datasets are ------------------------------------------------------------------------


def datasets_root() -> Path:
    """Minari's data root: ``$MINARI_DATASETS_PATH`` or ``~/.minari/datasets``."""
    root = os.environ.get("MINARI_DATASETS_PATH")
    return Path(root) if root else Path.home() / ".minari" / "datasets"


def data_dir(folder: Path) -> Path | None:
    """The folder holding metadata.json: ``folder/data`` (a dataset folder) or ``folder``."""
    for candidate in (folder / "data", folder):
        if (candidate / METADATA).is_file():
            return candidate
    return None


def installed_ids(root: Path | None = None) -> list[str]:
    """The dataset ids installed under the data root (namespaced ids included)."""
    root = root or datasets_root()
    if not root.is_dir():
        return []
    found = [p.parent.parent.relative_to(root).as_posix() for p in root.glob("**/data/" + METADATA)]
    return sorted(found)


# --- spaces --------------------------------------------------------------------------------------


def serialize_space(space: spaces.Space) -> dict[str, Any]:
    """A space as Minari serializes it (before the JSON string around it)."""
    if isinstance(space, spaces.Box):
        return {
            "type": "Box",
            "dtype": str(space.dtype),
            "shape": list(space.shape),
            "low": space.low.tolist(),
            "high": space.high.tolist(),
        }
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "dtype": "int64", "start": int(space.start), "n": int(space.n)}
    if isinstance(space, spaces.MultiDiscrete):
        return {
            "type": "MultiDiscrete",
            "dtype": str(space.dtype),
            "nvec": space.nvec.tolist(),
            "start": space.start.tolist(),
        }
    if isinstance(space, spaces.MultiBinary):
        n = space.n
        return {"type": "MultiBinary", "n": int(n) if np.ndim(n) == 0 else list(n)}
    if isinstance(space, spaces.Dict):
        return {
            "type": "Dict",
            "subspaces": {key: serialize_space(sub) for key, sub in space.spaces.items()},
        }
    raise DatasetError(f"the space {space} cannot be written in Minari's format by mentor")


def deserialize_space(data: dict[str, Any] | str) -> spaces.Space:
    """The space of a Minari serialization (a dict, or the JSON string of one)."""
    if isinstance(data, str):
        data = json.loads(data)
    kind = data.get("type")
    if kind == "Box":
        dtype = data["dtype"]
        low = np.array(data["low"], dtype=dtype)
        high = np.array(data["high"], dtype=dtype)
        return spaces.Box(low=low, high=high, shape=tuple(data["shape"]), dtype=dtype)
    if kind == "Discrete":
        return spaces.Discrete(n=data["n"], start=data.get("start", 0))
    if kind == "MultiDiscrete":
        return spaces.MultiDiscrete(
            nvec=data["nvec"], dtype=data.get("dtype", "int64"), start=data.get("start")
        )
    if kind == "MultiBinary":
        return spaces.MultiBinary(n=data["n"])
    if kind == "Dict":
        return spaces.Dict({k: deserialize_space(v) for k, v in data["subspaces"].items()})
    raise DatasetError(
        f"a Minari space of type '{kind}' is not supported by mentor "
        "(Box, Discrete, MultiDiscrete, MultiBinary and Dict are)"
    )


def env_spec_for(
    env_id: str, kwargs: dict | None = None, max_episode_steps: int | None = None
) -> EnvSpec | None:
    """The EnvSpec that remakes the env (Minari's ``recover_environment``); None if it has none.

    A registered id gives its spec with the kwargs and time limit applied; an entry point
    ``package.module:ClassName`` gives a spec whose entry point is that class."""
    kwargs = dict(kwargs or {})
    if env_id in gym.registry:
        base = gym.spec(env_id)
        return dataclasses.replace(
            base,
            kwargs={**base.kwargs, **kwargs},
            max_episode_steps=max_episode_steps or base.max_episode_steps,
        )
    if ":" in env_id:
        try:
            return EnvSpec(
                id=env_id, entry_point=env_id, kwargs=kwargs, max_episode_steps=max_episode_steps
            )
        except gym.error.Error:
            return None
    return None


# --- reading -------------------------------------------------------------------------------------


def read_metadata(folder: Path) -> dict[str, Any]:
    try:
        metadata = json.loads((folder / METADATA).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(f"'{folder / METADATA}' is not readable JSON ({exc})") from None
    missing = [
        key
        for key in ("data_format", "total_episodes", "observation_space", "action_space")
        if key not in metadata
    ]
    if missing:
        raise DatasetError(f"'{folder / METADATA}' lacks {', '.join(missing)}")
    if metadata["data_format"] not in FORMATS:
        raise DatasetError(
            f"'{folder}': data_format '{metadata['data_format']}' is not one of "
            + ", ".join(FORMATS)
        )
    return metadata


def read(folder: Path, max_episodes: int | None = None, source: str | None = None) -> Dataset:
    """A ``Dataset`` from a Minari data folder (the one holding metadata.json)."""
    metadata = read_metadata(folder)
    source = source or f"dataset '{folder.parent if folder.name == 'data' else folder}'"
    obs_space = deserialize_space(metadata["observation_space"])
    act_space = deserialize_space(metadata["action_space"])
    count = int(metadata["total_episodes"])
    if max_episodes is not None:
        count = min(count, max_episodes)
    if count == 0:
        raise DatasetError(f"{source} is empty: it has no episodes")
    jpeg = bool(metadata.get("jpeg_encoding", True))
    reader = _read_hdf5 if metadata["data_format"] == "hdf5" else _read_arrow
    episodes = reader(folder, metadata["data_format"], count, obs_space, act_space, jpeg, source)
    observations, finals = [], []
    for index, episode in enumerate(episodes):
        steps = len(episode["rewards"])
        rows = _rows(episode["observations"])
        if rows != steps + 1 or len(_first(episode["actions"])) != steps:
            raise DatasetError(
                f"{source}: episode {index} has {rows} observations and "
                f"{len(_first(episode['actions']))} actions for {steps} rewards; Minari's format "
                "has one observation more than rewards and as many actions"
            )
        observations.append(_slice(episode["observations"], 0, steps))
        finals.append(_slice(episode["observations"], steps, steps + 1))
    lengths = [len(e["rewards"]) for e in episodes]
    if sum(lengths) == 0:
        raise DatasetError(f"{source} is empty: its episodes have no steps")
    if 0 in lengths:
        raise DatasetError(f"{source}: episode {lengths.index(0)} has no steps")
    return Dataset(
        observation_space=obs_space,
        action_space=act_space,
        observations=_concat(observations),
        actions=_concat([e["actions"] for e in episodes]),
        rewards=np.concatenate([e["rewards"] for e in episodes]).astype(np.float64),
        terminations=np.concatenate([e["terminations"] for e in episodes]).astype(bool),
        truncations=np.concatenate([e["truncations"] for e in episodes]).astype(bool),
        episode_starts=np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64),
        final_observations=_concat(finals),
        source=source,
    )


def _read_hdf5(
    folder: Path,
    fmt: str,
    count: int,
    obs_space: spaces.Space,
    act_space: spaces.Space,
    jpeg: bool,
    source: str,
) -> list[dict[str, Any]]:
    h5py = _need("h5py", fmt)
    file = folder / HDF5_FILE
    if not file.is_file():
        raise DatasetError(f"{source}: '{file}' is missing")
    episodes = []
    with h5py.File(file, "r") as handle:
        for index in range(count):
            group = handle.get(f"episode_{index}")
            if group is None:
                raise DatasetError(f"{source}: '{file}' has no group episode_{index}")
            try:
                episodes.append(
                    {
                        "observations": _h5_value(group["observations"], obs_space, jpeg),
                        "actions": _h5_value(group["actions"], act_space, jpeg),
                        **{k: group[k][()] for k in ("rewards", "terminations", "truncations")},
                    }
                )
            except KeyError as exc:
                raise DatasetError(f"{source}: episode_{index} lacks {exc}") from None
    return episodes


def _h5_value(node: Any, space: spaces.Space, jpeg: bool) -> Any:
    if isinstance(space, spaces.Dict):
        return {key: _h5_value(node[key], sub, jpeg) for key, sub in space.spaces.items()}
    if jpeg and _is_image(space):
        return _decode_jpeg([bytes(np.asarray(row, dtype=np.uint8)) for row in node[()]])
    return node[()]


def _read_arrow(
    folder: Path,
    fmt: str,
    count: int,
    obs_space: spaces.Space,
    act_space: spaces.Space,
    jpeg: bool,
    source: str,
) -> list[dict[str, Any]]:
    _need("pyarrow", fmt)
    import pyarrow.dataset as pds

    episodes = []
    for index in range(count):
        where = folder / str(index)
        if not where.is_dir():
            raise DatasetError(f"{source}: the folder of episode {index} ('{where}') is missing")
        table = pds.dataset(str(where), format=fmt, ignore_prefixes=["_", ".", METADATA]).to_table()
        try:
            episodes.append(
                {
                    "observations": _arrow_value(table.column("observations"), obs_space, jpeg),
                    "actions": _slice(
                        _arrow_value(table.column("actions"), act_space, jpeg),
                        0,
                        table.num_rows - 1,
                    ),
                    **{
                        k: table.column(k).to_numpy()[:-1]
                        for k in ("rewards", "terminations", "truncations")
                    },
                }
            )
        except KeyError as exc:
            raise DatasetError(f"{source}: episode {index} lacks the column {exc}") from None
    return episodes


def _arrow_value(column: Any, space: spaces.Space, jpeg: bool) -> Any:
    import pyarrow as pa

    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if isinstance(space, spaces.Dict):
        return {key: _arrow_value(array.field(key), sub, jpeg) for key, sub in space.spaces.items()}
    if jpeg and _is_image(space):
        return _decode_jpeg([value.as_py() for value in array])
    if isinstance(space, (spaces.Box, spaces.MultiDiscrete, spaces.MultiBinary)):
        flat = array.flatten().to_numpy(zero_copy_only=False)
        return flat.reshape(len(array), *space.shape).astype(space.dtype, copy=False)
    return array.to_numpy(zero_copy_only=False)


def _is_image(space: spaces.Space) -> bool:
    """Minari's test for a space it JPEG-encodes."""
    return (
        isinstance(space, spaces.Box)
        and len(space.shape) in (2, 3)
        and space.shape[0] >= 32
        and space.shape[1] >= 32
        and space.dtype == np.uint8
        and bool(np.all(space.low == 0))
        and bool(np.all(space.high == 255))
    )


def _decode_jpeg(frames: list[bytes]) -> np.ndarray:
    from PIL import Image

    return np.stack([np.array(Image.open(io.BytesIO(frame)), dtype=np.uint8) for frame in frames])


# --- writing -------------------------------------------------------------------------------------


def dataset_id_for(folder: Path) -> str:
    """The id a folder's dataset gets: its name, with '-v0' added when it has no version (Minari
    needs one), characters other than letters, digits, '-' and '_' replaced by '_'."""
    name = re.sub(r"[^-\w]", "_", folder.resolve().name) or "dataset"
    return name if DATASET_ID.match(name) else f"{name}-v0"


def write(
    dataset: Dataset,
    folder: str | Path,
    *,
    dataset_id: str | None = None,
    env_spec: EnvSpec | None = None,
    seeds: list[int] | None = None,
    data_format: str = "hdf5",
    overwrite: bool = False,
    description: str | None = None,
) -> Path:
    """Write ``dataset`` as the Minari dataset folder ``folder`` (its data under folder/data).

    With ``MINARI_DATASETS_PATH`` set to the folder's parent, ``minari.load_dataset(<folder
    name>)`` loads it. Returns the folder."""
    folder = Path(folder)
    if data_format not in FORMATS:
        raise DatasetError(f"data format '{data_format}' is not one of {', '.join(FORMATS)}")
    if dataset.final_observations is None:
        raise DatasetError(
            f"{dataset.source} has no final observations (a table of decisions has none): "
            "Minari's format stores the observation after each episode's last decision"
        )
    if seeds is not None and len(seeds) != dataset.num_episodes:
        raise DatasetError(f"{len(seeds)} seeds for {dataset.num_episodes} episodes")
    dataset_id = dataset_id or dataset_id_for(folder)
    if not DATASET_ID.match(dataset_id):
        raise DatasetError(f"dataset id '{dataset_id}' is not of Minari's form (namespace/)name-vN")
    # Serialize the spaces first: an unsupported space fails before anything is written.
    obs_json = json.dumps(serialize_space(dataset.observation_space))
    act_json = json.dumps(serialize_space(dataset.action_space))
    if folder.exists() and any(folder.iterdir()):
        if not overwrite:
            raise DatasetError(f"'{folder}' exists and is not empty (overwrite to replace it)")
        if data_dir(folder) is None:
            raise DatasetError(f"'{folder}' is not a dataset folder: refusing to replace it")
        shutil.rmtree(folder)
    tmp = folder.with_name(f".tmp-{folder.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    data = tmp / "data"
    data.mkdir(parents=True)
    try:
        episodes = list(_episodes(dataset))
        if data_format == "hdf5":
            _write_hdf5(data, episodes, seeds)
        else:
            _write_arrow(data, data_format, episodes, dataset, seeds)
        metadata: dict[str, Any] = {
            "total_episodes": dataset.num_episodes,
            "total_steps": len(dataset),
            "data_format": data_format,
            "jpeg_encoding": False,
            "observation_space": obs_json,
            "action_space": act_json,
        }
        spec_json = _spec_json(env_spec)
        if spec_json is not None:
            metadata["env_spec"] = spec_json
        metadata["dataset_id"] = dataset_id
        metadata["minari_version"] = _format_version()
        metadata["description"] = description or dataset.source
        metadata["dataset_size"] = round(
            sum(f.stat().st_size for f in data.rglob("*") if f.is_file()) / 1e6, 1
        )
        (data / METADATA).write_text(json.dumps(metadata))
        folder.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _format_version() -> str:
    try:
        installed = importlib.metadata.version("minari")
    except importlib.metadata.PackageNotFoundError:
        return FORMAT_VERSION
    return installed if installed in SAME_LAYOUT else FORMAT_VERSION


def _spec_json(env_spec: EnvSpec | None) -> str | None:
    if env_spec is None:
        return None
    try:
        return env_spec.to_json()
    except (TypeError, ValueError, gym.error.Error):  # kwargs or entry point not JSON-able
        return None


def _episodes(dataset: Dataset) -> Any:
    """Per episode: T + 1 observations (the final one last), T actions, rewards, flags."""
    for index, (start, end) in enumerate(dataset.episode_bounds()):
        yield {
            "observations": _concat(
                [
                    _slice(dataset.observations, start, end),
                    _slice(dataset.final_observations, index, index + 1),
                ]
            ),
            "actions": _slice(dataset.actions, start, end),
            "rewards": dataset.rewards[start:end].astype(np.float64),
            "terminations": dataset.terminations[start:end].astype(bool),
            "truncations": dataset.truncations[start:end].astype(bool),
        }


def _write_hdf5(data: Path, episodes: list[dict], seeds: list[int] | None) -> None:
    h5py = _need("h5py", "hdf5")
    with h5py.File(data / HDF5_FILE, "w", track_order=True) as handle:
        for index, episode in enumerate(episodes):
            group = handle.create_group(f"episode_{index}")
            group.attrs["id"] = np.int64(index)
            if seeds is not None:
                group.attrs["seed"] = np.int64(seeds[index])
            group.attrs["total_steps"] = np.int64(len(episode["rewards"]))
            for key, value in episode.items():
                _h5_write(group, key, value)


def _h5_write(group: Any, key: str, value: Any) -> None:
    if isinstance(value, dict):
        sub = group.create_group(key)
        for name, part in value.items():
            _h5_write(sub, name, part)
        return
    value = np.asarray(value)
    group.create_dataset(key, data=value, chunks=True, maxshape=(None, *value.shape[1:]))


def _write_arrow(
    data: Path, fmt: str, episodes: list[dict], dataset: Dataset, seeds: list[int] | None
) -> None:
    _need("pyarrow", fmt)
    import pyarrow as pa

    for index, episode in enumerate(episodes):
        steps = len(episode["rewards"])
        batch = pa.RecordBatch.from_pydict(
            {
                "observations": _arrow_array(episode["observations"], dataset.observation_space),
                "actions": _arrow_array(_pad(episode["actions"]), dataset.action_space),
                **{
                    key: pa.array(_pad(episode[key]))
                    for key in ("rewards", "terminations", "truncations")
                },
            }
        )
        where = data / str(index)
        where.mkdir()
        if fmt == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(pa.Table.from_batches([batch]), where / "part-0.parquet")
        else:
            with pa.ipc.new_file(where / "part-0.arrow", batch.schema) as writer:
                writer.write_batch(batch)
        meta: dict[str, Any] = {"id": index, "total_steps": steps}
        if seeds is not None:
            meta["seed"] = int(seeds[index])
        (where / METADATA).write_text(json.dumps(meta))


def _pad(value: Any) -> Any:
    """One more row of zeros: Arrow episodes give every field T + 1 rows."""
    if isinstance(value, dict):
        return {key: _pad(part) for key, part in value.items()}
    value = np.asarray(value)
    return np.concatenate([value, np.zeros((1, *value.shape[1:]), dtype=value.dtype)])


def _arrow_array(value: Any, space: spaces.Space) -> Any:
    import pyarrow as pa

    if isinstance(space, spaces.Dict):
        names = list(space.spaces)
        return pa.StructArray.from_arrays(
            [_arrow_array(value[key], space.spaces[key]) for key in names], names=names
        )
    value = np.asarray(value)
    if isinstance(space, (spaces.Box, spaces.MultiDiscrete, spaces.MultiBinary)):
        flat = value.reshape(len(value), -1).astype(space.dtype, copy=False)
        kind = pa.list_(pa.from_numpy_dtype(space.dtype), list_size=flat.shape[1])
        return pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), type=kind)
    return pa.array(value.astype(np.int64, copy=False))


# --- batches: arrays, or dicts of arrays ----------------------------------------------------


def _first(batch: Any) -> Any:
    return _first(next(iter(batch.values()))) if isinstance(batch, dict) else batch


def _rows(batch: Any) -> int:
    return len(_first(batch))


def _slice(batch: Any, start: int, end: int) -> Any:
    if isinstance(batch, dict):
        return {key: _slice(value, start, end) for key, value in batch.items()}
    return batch[start:end]


def _concat(batches: list[Any]) -> Any:
    if isinstance(batches[0], dict):
        return {key: _concat([b[key] for b in batches]) for key in batches[0]}
    return np.concatenate([np.asarray(b) for b in batches])


def _need(module: str, fmt: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise DatasetError(
            f"datasets in Minari's {fmt} format need the package {module}: "
            "pip install 'mentor[data]'"
        ) from None
