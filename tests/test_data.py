"""Tests of datasets: recording, Minari's format both ways, tables, experts, splits, the CLI.

The round trips use the real ``minari`` package, pointed at a temporary data root through
``MINARI_DATASETS_PATH``: what mentor writes, Minari reads with the same arrays, and what
Minari writes, mentor reads.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from gymnasium import spaces
from typer.testing import CliRunner

from mentor.agent import policy_from
from mentor.cli import app, main
from mentor.data.dataset import Dataset, kfold, split
from mentor.data.load import load_data, save_dataset
from mentor.data.record import action_for_keys, human_policy, record
from mentor.envs.resolve import make_env
from mentor.errors import ConfigError, DatasetError, EnvError
from mentor.experiment import DataConfig

minari = pytest.importorskip("minari")

MENTOR = Path(sys.executable).with_name("mentor")
runner = CliRunner()


# --- experts used below --------------------------------------------------------------------------


def cartpole_expert(obs: np.ndarray) -> np.ndarray:
    """Push toward the side the pole leans to: a batch of observations -> a batch of actions."""
    return (obs[:, 2] + 0.5 * obs[:, 3] > 0).astype(np.int64)


def pendulum_expert(obs: np.ndarray) -> np.ndarray:
    return np.clip(-2.0 * obs[:, 1:2] - 0.5 * obs[:, 2:3], -2.0, 2.0).astype(np.float32)


def dict_expert(obs: dict) -> np.ndarray:
    return np.asarray(obs["target"])


def image_expert(obs: np.ndarray) -> np.ndarray:
    return (obs.mean(axis=(1, 2, 3)) > 100).astype(np.int64)


EXPERTS = {
    "CartPole-v1": cartpole_expert,
    "Pendulum-v1": pendulum_expert,
    "mentor.envs.testing:DictObsEnv": dict_expert,
    "mentor.envs.testing:ImageEnv": image_expert,  # an image space: stored raw, not as JPEG
}


def assert_batches_equal(a, b) -> None:
    if isinstance(a, dict):
        assert set(a) == set(b)
        for key in a:
            assert_batches_equal(a[key], b[key])
        return
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a, b)


def assert_datasets_equal(a: Dataset, b: Dataset) -> None:
    assert a.observation_space == b.observation_space
    assert a.action_space == b.action_space
    for name in ("observations", "actions", "rewards", "terminations", "truncations"):
        assert_batches_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(a.episode_starts, b.episode_starts)
    assert_batches_equal(a.final_observations, b.final_observations)


def _slice(batch, start: int, end: int):
    if isinstance(batch, dict):
        return {key: value[start:end] for key, value in batch.items()}
    return batch[start:end]


# --- Minari's format, both ways ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env_id", "data_format"),
    [
        ("CartPole-v1", "hdf5"),
        ("Pendulum-v1", "hdf5"),
        ("mentor.envs.testing:DictObsEnv", "hdf5"),
        ("mentor.envs.testing:ImageEnv", "hdf5"),
        ("CartPole-v1", "arrow"),
        ("mentor.envs.testing:DictObsEnv", "arrow"),
    ],
)
def test_record_save_minari_load_round_trip(tmp_path, monkeypatch, env_id, data_format) -> None:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    recorded = record(EXPERTS[env_id], env_id, None, episodes=3, seed=7, max_episode_steps=40)
    assert recorded.num_episodes == 3
    name = f"{env_id.rpartition(':')[2]}-{data_format}-v0"
    save_dataset(
        recorded,
        tmp_path / name,
        env_id=env_id,
        max_episode_steps=40,
        seeds=[7, 8, 9],
        data_format=data_format,
    )

    theirs = minari.load_dataset(name)  # the real package reads what mentor wrote
    assert theirs.total_episodes == 3 and theirs.total_steps == len(recorded)
    assert theirs.observation_space == recorded.observation_space
    assert theirs.action_space == recorded.action_space
    assert theirs.spec.dataset_id == name
    assert theirs.recover_environment().spec.max_episode_steps == 40
    bounds = list(recorded.episode_bounds())
    for index, episode in enumerate(theirs.iterate_episodes()):
        start, end = bounds[index]
        final = _slice(recorded.final_observations, index, index + 1)
        observations = _slice(recorded.observations, start, end)
        if isinstance(observations, dict):
            expected = {k: np.concatenate([observations[k], final[k]]) for k in observations}
        else:
            expected = np.concatenate([observations, final])
        assert_batches_equal(episode.observations, expected)
        assert_batches_equal(episode.actions, recorded.actions[start:end])
        assert_batches_equal(episode.rewards, recorded.rewards[start:end])
        assert_batches_equal(episode.terminations, recorded.terminations[start:end])
        assert_batches_equal(episode.truncations, recorded.truncations[start:end])
    assert [m["seed"] for m in theirs.storage.get_episode_metadata(range(3))] == [7, 8, 9]

    by_folder = load_data(DataConfig(path=str(tmp_path / name)))
    by_id = load_data(DataConfig(path=name), recorded.observation_space, recorded.action_space)
    assert_datasets_equal(by_folder, recorded)
    assert_datasets_equal(by_id, recorded)
    assert by_id.source == f"Minari dataset '{name}'"


def test_reads_a_dataset_minari_wrote(tmp_path, monkeypatch) -> None:
    from minari.data_collector import EpisodeBuffer

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    recorded = record(pendulum_expert, "Pendulum-v1", None, episodes=2, max_episode_steps=25)
    buffers = []
    for index, (start, end) in enumerate(recorded.episode_bounds()):
        buffers.append(
            EpisodeBuffer(
                observations=np.concatenate(
                    [recorded.observations[start:end], recorded.final_observations[[index]]]
                ),
                actions=recorded.actions[start:end],
                rewards=recorded.rewards[start:end],
                terminations=recorded.terminations[start:end],
                truncations=recorded.truncations[start:end],
            )
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Minari asks for an author, a description, ...
        minari.create_dataset_from_buffers("ns/pendulum-expert-v1", buffers, env="Pendulum-v1")
    loaded = load_data(DataConfig(path="ns/pendulum-expert-v1"))
    assert_datasets_equal(loaded, recorded)
    first = load_data(DataConfig(path="ns/pendulum-expert-v1", max_episodes=1))
    assert first.num_episodes == 1 and len(first) == 25


def test_metadata_is_minaris(tmp_path) -> None:
    recorded = record(cartpole_expert, "CartPole-v1", {}, episodes=2)
    folder = save_dataset(recorded, tmp_path / "demos", env_id="CartPole-v1")
    metadata = json.loads((folder / "data" / "metadata.json").read_text())
    assert metadata["dataset_id"] == "demos-v0"  # Minari ids carry a version
    assert metadata["minari_version"] in minari.supported_dataset_versions
    assert metadata["data_format"] == "hdf5"
    assert metadata["total_episodes"] == 2 and metadata["total_steps"] == len(recorded)
    assert json.loads(metadata["env_spec"])["id"] == "CartPole-v1"
    assert json.loads(metadata["action_space"]) == {
        "type": "Discrete", "dtype": "int64", "start": 0, "n": 2,
    }  # fmt: skip
    with pytest.raises(DatasetError, match="exists and is not empty"):
        save_dataset(recorded, folder)
    save_dataset(recorded, folder, overwrite=True)


def test_a_table_cannot_be_saved_without_final_observations(tmp_path) -> None:
    table = tmp_path / "t.csv"
    table.write_text("a,y\n1,0\n2,1\n")
    dataset = load_data(DataConfig(path=str(table), observation_columns=["a"], action_column="y"))
    with pytest.raises(DatasetError, match="no final observations"):
        save_dataset(dataset, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unknown_path_names_the_data_root(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    with pytest.raises(DatasetError, match=f"installed under {tmp_path}"):
        load_data(DataConfig(path="nothing-v0"))
    (tmp_path / "folder").mkdir()
    with pytest.raises(DatasetError, match="not a dataset folder"):
        load_data(DataConfig(path=str(tmp_path / "folder")))


# --- spaces --------------------------------------------------------------------------------------


def test_spaces_differing_from_the_env_are_named_with_both_shapes(tmp_path) -> None:
    recorded = record(cartpole_expert, "CartPole-v1", None, episodes=1)
    save_dataset(recorded, tmp_path / "cartpole")
    pendulum_obs = spaces.Box(-8.0, 8.0, (3,), np.float32)
    with pytest.raises(DatasetError, match=r"observation space .*\(4,\).*\(3,\)"):
        load_data(DataConfig(path=str(tmp_path / "cartpole")), pendulum_obs, spaces.Discrete(2))
    with pytest.raises(DatasetError, match=r"action space Discrete\(2\).*Discrete\(3\)"):
        load_data(
            DataConfig(path=str(tmp_path / "cartpole")),
            recorded.observation_space,
            spaces.Discrete(3),
        )


# --- recording -----------------------------------------------------------------------------------


def test_record_is_seeded_per_episode_whatever_the_number_of_envs() -> None:
    one = record(cartpole_expert, "CartPole-v1", None, episodes=4, seed=3)
    three = record(cartpole_expert, "CartPole-v1", None, episodes=4, seed=3, num_envs=3)
    assert_datasets_equal(one, three)
    assert one.terminations.sum() + one.truncations.sum() == 4
    ends = np.append(one.episode_starts[1:], len(one)) - 1
    assert np.all(one.terminations[ends] | one.truncations[ends])
    assert one.source == "recorded from cartpole_expert on CartPole-v1"
    env = make_env("CartPole-v1")
    for index, start in enumerate(one.episode_starts):  # episode i is reset with seed + i
        np.testing.assert_array_equal(one.observations[start], env.reset(seed=3 + index)[0])


@pytest.mark.parametrize(
    ("env_id", "expert", "pattern"),
    [
        ("CartPole-v1", lambda obs: np.full(len(obs), 7), r"action 7 at episode 0, step 0 .*"
         r"Discrete\(2\)"),
        ("CartPole-v1", lambda obs: np.full(len(obs), 0.5), r"action 0\.5 .*Discrete\(2\)"),
        ("Pendulum-v1", lambda obs: np.full((len(obs), 1), 5.0), r"action \[5\.\] at episode 0, "
         r"step 0 is outside the action space Box\(-2\.0, 2\.0, \(1,\), float32\)"),
        ("CartPole-v1", lambda obs: 1, r"one action per observation"),
    ],
)  # fmt: skip
def test_an_expert_outside_the_action_space_is_refused(env_id, expert, pattern) -> None:
    with pytest.raises(DatasetError, match=pattern):
        record(expert, env_id, None, episodes=1)


def test_the_expert_is_checked_at_a_later_step_too() -> None:
    calls = []

    def late(obs: np.ndarray) -> np.ndarray:
        calls.append(1)
        return np.full(len(obs), 0 if len(calls) < 4 else 2)

    with pytest.raises(DatasetError, match="action 2 at episode 0, step 3"):
        record(late, "CartPole-v1", None, episodes=1)


def test_policy_from_a_trained_run(trained_run) -> None:
    from mentor.agent import Agent

    expert = policy_from(str(trained_run))
    recorded = record(expert, "CartPole-v1", None, episodes=2, seed=11)
    agent = Agent.load(trained_run)
    np.testing.assert_array_equal(recorded.actions, agent.act(recorded.observations))
    assert recorded.source == f"recorded from {trained_run} on CartPole-v1"


def test_policy_from_module_function(tmp_path, monkeypatch) -> None:
    (tmp_path / "my_experts.py").write_text(
        "import numpy as np\n\n"
        "def always_right(obs):\n"
        "    return np.ones(len(obs), dtype=np.int64)\n\n"
        "NOT_CALLABLE = 3\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    recorded = record(policy_from("my_experts:always_right"), "CartPole-v1", None, episodes=1)
    assert set(recorded.actions.tolist()) == {1}
    assert recorded.source == "recorded from my_experts:always_right on CartPole-v1"
    with pytest.raises(ConfigError, match="has no attribute 'nope'"):
        policy_from("my_experts:nope")
    with pytest.raises(ConfigError, match="not a function"):
        policy_from("my_experts:NOT_CALLABLE")
    with pytest.raises(ConfigError, match="cannot import module 'no_such_module'"):
        policy_from("no_such_module:f")
    with pytest.raises(DatasetError, match="neither an existing run/checkpoint folder"):
        policy_from(str(tmp_path / "missing_run"))


# --- tables --------------------------------------------------------------------------------------

TABLE = (
    "ep,x1,x2,act,r\n"
    "a,0.5,1,0,1\na,1.5,2,1,2\n"
    "b,2.5,3,1,3\n"
    "c,3.5,4,2,0.5\nc,4.5,5,0,0.5\nc,5,6,1,0.5\n"
)


def table_config(path: Path, **extra) -> DataConfig:
    return DataConfig(
        path=str(path),
        observation_columns=["x1", "x2"],
        action_column="act",
        reward_column="r",
        episode_column="ep",
        **extra,
    )


def test_summary_of_a_table_matches_hand_computed_values(tmp_path) -> None:
    path = tmp_path / "log.csv"
    path.write_text(TABLE)
    dataset = load_data(table_config(path))
    summary = dataset.summary()
    # episodes a: rewards 1 + 2, b: 3, c: 3 * 0.5 -> returns 3, 3, 1.5
    assert summary["episodes"] == 3 and summary["steps"] == 6
    assert summary["return_mean"] == pytest.approx(2.5)
    assert summary["return_std"] == pytest.approx(np.sqrt((0.25 + 0.25 + 1.0) / 3))
    assert (summary["return_min"], summary["return_max"]) == (1.5, 3.0)
    assert summary["length_mean"] == pytest.approx(2.0)
    assert (summary["length_min"], summary["length_max"]) == (1, 3)
    assert summary["action_counts"] == {"0": 2, "1": 3, "2": 1}
    assert dataset.action_space == spaces.Discrete(3)
    assert dataset.observation_space == spaces.Box(-np.inf, np.inf, (2,), np.float32)
    np.testing.assert_array_equal(dataset.observations[3], np.array([3.5, 4.0], np.float32))
    np.testing.assert_array_equal(dataset.truncations, [False, True, True, False, False, True])
    assert not dataset.terminations.any()
    first = load_data(table_config(path, max_episodes=2))
    assert first.num_episodes == 2 and len(first) == 3


def test_a_table_without_episode_column_has_one_row_episodes(tmp_path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("f,label\n0.1,0.5\n0.2,-1.25\n")
    dataset = load_data(DataConfig(path=str(path), observation_columns=["f"], action_column="f"))
    assert dataset.num_episodes == 2 and dataset.truncations.all()
    floats = load_data(DataConfig(path=str(path), observation_columns=["f"], action_column="label"))
    assert floats.action_space == spaces.Box(-np.inf, np.inf, (1,), np.float32)
    np.testing.assert_array_equal(floats.actions[:, 0], np.array([0.5, -1.25], np.float32))


def test_parquet_table_reads_like_csv(tmp_path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    csv_path = tmp_path / "log.csv"
    csv_path.write_text(TABLE)
    table = pa.table(
        {
            "ep": ["a", "a", "b", "c", "c", "c"],
            "x1": [0.5, 1.5, 2.5, 3.5, 4.5, 5.0],
            "x2": [1, 2, 3, 4, 5, 6],
            "act": [0, 1, 1, 2, 0, 1],
            "r": [1, 2, 3, 0.5, 0.5, 0.5],
        }
    )
    pq.write_table(table, tmp_path / "log.parquet")
    from_csv = load_data(table_config(csv_path))
    from_parquet = load_data(table_config(tmp_path / "log.parquet"))
    for name in ("observations", "actions", "rewards", "truncations", "episode_starts"):
        assert_batches_equal(getattr(from_csv, name), getattr(from_parquet, name))
    assert from_parquet.action_space == from_csv.action_space


def test_a_table_reads_into_the_envs_spaces(tmp_path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("a,b,c,d,y\n0.1,0.2,0.01,0.02,1\n0.0,0.1,0.0,-0.1,0\n")
    config = DataConfig(path=str(path), observation_columns=["a", "b", "c", "d"], action_column="y")
    obs_space = spaces.Box(-5.0, 5.0, (4,), np.float32)
    dataset = load_data(config, obs_space, spaces.Discrete(2))
    assert dataset.observation_space == obs_space and dataset.action_space == spaces.Discrete(2)
    with pytest.raises(DatasetError, match=r"column 'y', row 1: '1' is not an action .*Discrete"):
        load_data(config, obs_space, spaces.Discrete(1))
    with pytest.raises(DatasetError, match=r"observation space .*\(4,\).*\(3,\)"):
        load_data(config, spaces.Box(-1.0, 1.0, (3,), np.float32), spaces.Discrete(2))


@pytest.mark.parametrize(
    ("text", "columns", "pattern"),
    [
        ("a,b,y\n1,2,0\n", ["a", "nope"], r"has no column 'nope'; its columns: a, b, y"),
        ("a,b,y\n1,2,0\n3,x7,1\n", ["a", "b"], r"column 'b', row 2: 'x7' is not a finite number"),
        ("a,b,y\n1,,0\n", ["a", "b"], r"column 'b', row 1: '' is not a finite number"),
        ("", ["a"], r"is empty: it has no header"),
        ("a,b,y\n", ["a"], r"is empty: it has a header but no rows"),
        ("a,b,y\n1,2\n", ["a"], r"row 1 has 2 fields, the header 3"),
    ],
)
def test_bad_tables_are_one_line_errors(tmp_path, text, columns, pattern) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DatasetError, match=pattern) as info:
        load_data(DataConfig(path=str(path), observation_columns=columns, action_column="y"))
    assert "\n" not in str(info.value)


def test_table_needs_its_columns_and_must_exist(tmp_path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,y\n1,0\n")
    with pytest.raises(DatasetError, match=r"data.observation_columns .* data.action_column"):
        load_data(DataConfig(path=str(path)))
    with pytest.raises(DatasetError, match="does not exist"):
        load_data(DataConfig(path=str(tmp_path / "gone.csv"), observation_columns=["a"],
                             action_column="y"))  # fmt: skip
    with pytest.raises(DatasetError, match=r"data.path is not set"):
        load_data(DataConfig())


# --- k-fold and validation splits ----------------------------------------------------------------


@pytest.mark.parametrize(("items", "folds"), [(10, 3), (7, 7), (12, 5), (2, 2)])
def test_kfold_partitions_episodes(items, folds) -> None:
    parts = kfold(items, folds, np.random.default_rng(0))
    assert len(parts) == folds
    everything = np.concatenate(parts)
    assert sorted(everything.tolist()) == list(range(items))  # each episode in exactly one fold
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1
    with pytest.raises(DatasetError):
        kfold(items, items + 1, np.random.default_rng(0))


def test_folds_and_split_select_whole_episodes() -> None:
    dataset = record(cartpole_expert, "CartPole-v1", None, episodes=5, max_episode_steps=20)
    rng = np.random.default_rng(1)
    parts = kfold(dataset.num_episodes, 2, rng)
    subsets = [dataset.episodes(p) for p in parts]
    assert sum(s.num_episodes for s in subsets) == 5 and sum(len(s) for s in subsets) == len(
        dataset
    )
    train, validation = split(dataset.num_episodes, 0.2, rng)
    assert len(validation) == 1 and len(train) == 4
    assert set(train.tolist()).isdisjoint(validation.tolist())
    assert sorted([*train.tolist(), *validation.tolist()]) == list(range(5))
    held_out = dataset.episodes(validation)
    lengths = dataset.episode_lengths()
    assert len(held_out) == lengths[validation[0]]
    with pytest.raises(DatasetError):
        split(1, 0.2, rng)
    # validation_fraction 0 holds nothing out, even of a single episode
    assert [part.tolist() for part in split(5, 0.0, rng)] == [[0, 1, 2, 3, 4], []]
    assert [part.tolist() for part in split(1, 0.0, rng)] == [[0], []]


# --- a person at the keyboard --------------------------------------------------------------------


def test_keys_held_map_to_actions() -> None:
    left, right, up = 1, 2, 3
    mapping = {(left,): 0, (right,): 2, (left, up): 5}
    assert action_for_keys({left}, mapping, 1) == 0
    assert action_for_keys({up, left}, mapping, 1) == 5
    assert action_for_keys({right, 99}, mapping, 1) == 2  # keys outside the mapping ignored
    assert action_for_keys(set(), mapping, 1) == 1
    assert action_for_keys({left, right}, mapping, 1) == 1  # no such combination


def test_human_without_a_display_is_a_clear_error(monkeypatch) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("the display check is Linux's")
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(EnvError, match=r"needs a display .* DISPLAY"):
        human_policy("CartPole-v1")


def test_human_with_an_env_that_cannot_open_a_window(monkeypatch) -> None:
    pytest.importorskip("pygame")
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    with pytest.raises(EnvError, match=r"cannot open a window .* not 'human'"):
        human_policy("mentor.envs.testing:DictObsEnv")


def test_human_without_pygame_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pygame", None)  # import pygame raises ImportError
    with pytest.raises(EnvError, match="pygame, which is not installed"):
        human_policy("CartPole-v1")


# --- the command line ----------------------------------------------------------------------------


def test_cli_record_then_info(tmp_path, monkeypatch) -> None:
    (tmp_path / "cli_experts.py").write_text(
        "import numpy as np\n\ndef lean(obs):\n    return (obs[:, 2] > 0).astype(np.int64)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "demos"
    result = runner.invoke(
        app,
        ["record", "cli_experts:lean", "--env", "CartPole-v1", "--episodes", "3", "--out",
         str(out), "--seed", "4"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "written:" in result.output and "episodes" in result.output
    recorded = record(policy_from("cli_experts:lean"), "CartPole-v1", None, 3, seed=4)
    assert_datasets_equal(load_data(DataConfig(path=str(out))), recorded)

    info = runner.invoke(app, ["dataset", "info", str(out), "--json"])
    assert info.exit_code == 0, info.output
    summary = json.loads(info.output)
    assert summary["episodes"] == 3 and summary["steps"] == len(recorded)
    assert summary["return_mean"] == pytest.approx(recorded.episode_returns().mean())
    table = runner.invoke(app, ["dataset", "info", str(out)])
    assert table.exit_code == 0 and "return mean ± std" in table.output


def test_cli_info_on_a_table_with_columns(tmp_path) -> None:
    path = tmp_path / "log.csv"
    path.write_text(TABLE)
    result = runner.invoke(
        app,
        ["dataset", "info", str(path), "--obs-columns", "x1,x2", "--action-column", "act",
         "--set", "data.reward_column=r", "--set", "episode_column=ep", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["episodes"] == 3 and summary["return_mean"] == pytest.approx(2.5)


def run_main(args: list[str], capsys, monkeypatch) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["mentor", *args])
    with pytest.raises(SystemExit) as info:
        main()
    return info.value.code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["dataset", "info", "{tmp}/t.csv", "--obs-columns", "a,zz", "--action-column", "y"],
         r"has no column 'zz'; its columns: a, y"),
        (["dataset", "info", "{tmp}/t.csv"], r"data.observation_columns"),
        (["dataset", "info", "{tmp}/t.csv", "--set", "data.max_episodes=0"],
         r"data.max_episodes"),
        (["record", "--env", "CartPole-v1", "--out", "{tmp}/o"], r"or --human"),
        (["record", "x:y", "--human", "--env", "CartPole-v1", "--out", "{tmp}/o"],
         r"not both"),
        (["record", "{tmp}/no_run", "--env", "CartPole-v1", "--out", "{tmp}/o"],
         r"neither an existing run/checkpoint folder"),
        (["record", "x:y", "--env", "CartPol-v1", "--out", "{tmp}/o"], r"did you mean"),
    ],
)  # fmt: skip
def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys, monkeypatch, args, pattern) -> None:
    (tmp_path / "t.csv").write_text("a,y\n1,0\n")
    code, err = run_main([a.replace("{tmp}", str(tmp_path)) for a in args], capsys, monkeypatch)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert re.search(pattern, lines[0]), lines[0]


def test_cli_human_plays_with_the_dummy_video_driver(tmp_path) -> None:
    """End to end in a subprocess (pygame's window stays out of the test process): nobody
    presses a key, so CartPole repeats its first action until the pole falls."""
    pytest.importorskip("pygame")
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
    proc = subprocess.run(
        [str(MENTOR), "record", "-", "--human", "--env", "CartPole-v1", "--episodes", "2",
         "--out", str(tmp_path / "played")],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    played = load_data(DataConfig(path=str(tmp_path / "played")))
    assert played.num_episodes == 2 and set(played.actions.tolist()) == {0}
    assert played.source.startswith("dataset ")
