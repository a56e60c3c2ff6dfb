"""Tests of checkpoints: save and load, atomic writes, and every way a file on disk can be wrong
(FAULT-23, 25, 26, 27, 28 and 29 in /work/shared/FAULTS.md)."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from mentor import api
from mentor.agent import Agent, initialize, load_weights
from mentor.errors import CheckpointError, ConfigError, EnvError
from mentor.experiment import build
from mentor.runs import checkpoint

FIXTURE_RUN_V2 = Path(__file__).parent / "fixtures" / "run_v2"
FIXTURE_V1 = Path(__file__).parent / "fixtures" / "checkpoint_v1"

# CartPole observations (cart position, cart velocity, pole angle, pole angular velocity).
OBSERVATIONS = np.array(
    [
        [0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.1, 0.5],
        [0.0, 0.0, -0.1, -0.5],
        [0.5, 1.0, 0.05, 0.2],
        [-0.5, -1.0, -0.05, -0.2],
        [0.0, 0.5, 0.02, -0.3],
        [0.1, -0.2, 0.01, 0.1],
        [0.0, 0.0, 0.03, -0.4],
    ],
    dtype=np.float32,
)


def copy_of(folder: Path, tmp_path: Path) -> Path:
    """A copy the test may break, so the session's trained run stays intact."""
    return Path(shutil.copytree(folder, tmp_path / folder.name))


def rewrite_meta(folder: Path, **changes: object) -> None:
    meta = json.loads((folder / checkpoint.META).read_text())
    meta.update(changes)
    (folder / checkpoint.META).write_text(json.dumps(meta))


def random_agent(env_id: str, seed: int = 0, **network: object) -> Agent:
    overrides = [f"agent.network.{key}={value}" for key, value in network.items()]
    experiment = build(
        method="ppo", env_id=env_id, overrides=["env.normalize_obs=true", *overrides]
    )
    env = gym.make(env_id)
    torch.manual_seed(seed)
    agent = Agent.build(experiment, env.observation_space, env.action_space)
    env.close()
    return agent


def save_agent(agent: Agent, path: Path) -> None:
    meta = {"experiment": agent.experiment.model_dump(mode="json"), **agent.spaces_meta()}
    checkpoint.save(path, {"model": agent.policy.state_dict()}, meta)


def batch_of_observations(agent: Agent, n: int = 64) -> np.ndarray:
    agent.observation_space.seed(1)
    return np.stack([agent.observation_space.sample() for _ in range(n)]).clip(-5, 5)


# --- save and load ------------------------------------------------------------------------------


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_round_trip_gives_identical_actions(env_id: str, tmp_path: Path) -> None:
    agent = random_agent(env_id, hidden_sizes="[16, 16]")
    # Statistics that are not the initial ones, so the test sees whether they are saved.
    stats = agent.policy.normalizer.stats
    stats.mean.fill_(0.3)
    stats.var.fill_(2.0)
    stats.count.fill_(1234.0)
    save_agent(agent, tmp_path / "ckpt")
    loaded = Agent.load(tmp_path / "ckpt")

    assert loaded.observation_space == agent.observation_space
    assert loaded.action_space == agent.action_space
    assert loaded.experiment == agent.experiment
    for key, value in agent.policy.state_dict().items():
        assert torch.equal(loaded.policy.state_dict()[key], value), key

    obs = batch_of_observations(agent)
    np.testing.assert_array_equal(loaded.act(obs), agent.act(obs))
    torch.manual_seed(7)
    sampled = agent.act(obs, deterministic=False)
    torch.manual_seed(7)
    np.testing.assert_array_equal(loaded.act(obs, deterministic=False), sampled)
    assert not np.array_equal(sampled, agent.act(obs)), "sampling should differ from the mode"
    # One observation in, one action out, in the env's own form.
    single = loaded.act(obs[0])
    assert np.shape(single) == np.shape(agent.action_space.sample())


def test_a_trained_run_loads_its_best_checkpoint(trained_run: Path) -> None:
    agent = Agent.load(trained_run)
    assert agent.folder == trained_run / "checkpoints" / "best"
    assert agent.experiment.seed == 3
    assert agent.meta["format_version"] == checkpoint.FORMAT_VERSION
    # Trained with observation normalization: the statistics count every observation learned
    # from up to the checkpoint's step (all but the reset steps after an episode's end).
    step = agent.meta["step"]
    assert 0.9 * step < agent.policy.normalizer.stats.count.item() <= step + 1e-3
    actions = agent.act(OBSERVATIONS)
    assert actions.shape == (len(OBSERVATIONS),)
    assert set(actions.tolist()) <= {0, 1}


def test_fixture_checkpoint_v1_still_loads_and_acts_the_same() -> None:
    """A checkpoint written by mentor 0.1.0 (format 1), committed under tests/fixtures: every
    later version must load it and, for these observations, act as it did then."""
    agent = Agent.load(FIXTURE_V1)
    assert agent.meta["format_version"] == 1
    assert agent.experiment.agent.network.hidden_sizes == [16, 16]
    assert agent.act(OBSERVATIONS).tolist() == [0, 1, 0, 0, 1, 0, 1, 0]
    assert agent.act(OBSERVATIONS[1]) == 1
    assert isinstance(agent.act(OBSERVATIONS[1]), int)


def test_fixture_run_v2_loads_acts_the_same_and_resumes(tmp_path: Path) -> None:
    """A run folder written by checkpoint format 2 (the first that resumes), committed under
    tests/fixtures: every later version must load its agent, act as it did, and go on training
    from it with its envs where they were."""
    import mentor

    agent = Agent.load(FIXTURE_RUN_V2 / "final")
    assert agent.meta["format_version"] == 2
    assert agent.act(OBSERVATIONS).tolist() == [1, 1, 0, 0, 1, 0, 1, 0]
    run = tmp_path / "run"
    shutil.copytree(FIXTURE_RUN_V2, run)
    result = mentor.resume(run, ["stopping.total_steps=3072", "logging.progress=false"])
    assert result.total_steps == 3072 and result.stop_reason.startswith("budget")
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["resumes"][0]["env"] == "restored exactly"
    assert manifest["resumes"][0]["step"] == 2048


def test_a_format_1_checkpoint_loads_as_an_agent_but_cannot_resume(tmp_path: Path) -> None:
    import mentor

    run = tmp_path / "run"
    shutil.copytree(FIXTURE_V1, run / "final")
    (run / "manifest.json").write_text("{}")
    with pytest.raises(CheckpointError, match=r"format 1.*loads as an agent.*cannot resume"):
        mentor.resume(run, ["stopping.total_steps=100000"])


# --- resolve -------------------------------------------------------------------------------------


def test_resolve_prefers_best_then_final_then_the_latest(trained_run: Path, tmp_path) -> None:
    run = copy_of(trained_run, tmp_path)
    assert checkpoint.resolve(run) == run / "checkpoints" / "best"
    assert checkpoint.resolve(run / "final") == run / "final"
    shutil.rmtree(run / "checkpoints" / "best")
    assert checkpoint.resolve(run) == run / "final"
    shutil.copytree(run / "final", run / "checkpoints" / "step_000000001024")
    shutil.copytree(run / "final", run / "checkpoints" / "step_000000002048")
    shutil.rmtree(run / "final")
    assert checkpoint.resolve(run) == run / "checkpoints" / "step_000000002048"
    shutil.rmtree(run / "checkpoints")
    with pytest.raises(CheckpointError, match=r"run folder '.*' has no checkpoint yet"):
        checkpoint.resolve(run)


def test_resolve_refuses_what_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"'.*missing' does not exist"):
        Agent.load(tmp_path / "missing")
    (tmp_path / "folder").mkdir()
    with pytest.raises(CheckpointError, match=r"neither a mentor run folder nor a checkpoint"):
        Agent.load(tmp_path / "folder")
    with pytest.raises(CheckpointError, match=r"'.*folder' is not a mentor checkpoint: no meta"):
        checkpoint.load(tmp_path / "folder")


# --- FAULT-23: a crash while saving -------------------------------------------------------------


def tensors(value: float) -> dict[str, dict[str, torch.Tensor]]:
    return {
        "model": {"w": torch.full((3, 2), value)},
        "optimizer": {"0.exp_avg": torch.full((3, 2), value / 2)},
    }


def test_fault_23_crash_mid_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch) -> None:
    """FAULT-23: the second component's write fails; the old checkpoint is whole at its path."""
    path = tmp_path / "best"
    checkpoint.save(path, tensors(1.0), {"step": 1})
    real_save_file = checkpoint.save_file
    calls = []

    def crash_on_second(tensor_dict, filename, *args, **kwargs):
        calls.append(filename)
        if len(calls) == 2:
            real_save_file(tensor_dict, filename, *args, **kwargs)
            Path(filename).write_bytes(Path(filename).read_bytes()[:10])  # half written
            raise OSError("simulated crash while writing")
        return real_save_file(tensor_dict, filename, *args, **kwargs)

    monkeypatch.setattr(checkpoint, "save_file", crash_on_second)
    with pytest.raises(OSError, match="simulated crash"):
        checkpoint.save(path, tensors(2.0), {"step": 2})
    assert len(calls) == 2

    components, meta = checkpoint.load(path)
    assert meta["step"] == 1
    assert torch.equal(components["model"]["w"], torch.full((3, 2), 1.0))
    assert torch.equal(components["optimizer"]["0.exp_avg"], torch.full((3, 2), 0.5))
    assert sorted(p.name for p in path.iterdir()) == sorted(
        ["meta.json", "model.safetensors", "optimizer.safetensors"]
    )

    # The next save works and replaces it; nothing of the failed one is left behind.
    monkeypatch.setattr(checkpoint, "save_file", real_save_file)
    checkpoint.save(path, tensors(3.0), {"step": 3})
    components, meta = checkpoint.load(path)
    assert meta["step"] == 3
    assert torch.equal(components["model"]["w"], torch.full((3, 2), 3.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best"]


def test_fault_23_crash_between_the_renames_keeps_the_previous_checkpoint(
    tmp_path, monkeypatch
) -> None:
    """FAULT-23: killed after the old folder was moved aside, before the new one took its place:
    loading the path finds the previous checkpoint."""
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "manifest.json").write_text("{}")
    path = run / "checkpoints" / "best"
    checkpoint.save(path, tensors(1.0), {"step": 1})
    real_replace = os.replace

    def crash_on_second(src, dst):
        if Path(src).name.startswith(".tmp-"):
            raise OSError("simulated kill")
        return real_replace(src, dst)

    monkeypatch.setattr(checkpoint.os, "replace", crash_on_second)
    with pytest.raises(OSError, match="simulated kill"):
        checkpoint.save(path, tensors(2.0), {"step": 2})
    monkeypatch.setattr(checkpoint.os, "replace", real_replace)

    assert not path.exists()
    components, meta = checkpoint.load(path)
    assert meta["step"] == 1
    assert torch.equal(components["model"]["w"], torch.full((3, 2), 1.0))
    assert checkpoint.load(checkpoint.resolve(run))[1]["step"] == 1
    # The next save puts a whole checkpoint back at the path.
    checkpoint.save(path, tensors(3.0), {"step": 3})
    assert checkpoint.load(path)[1]["step"] == 3
    assert checkpoint.resolve(run) == path


# --- FAULT-25: corrupted or truncated files -----------------------------------------------------


def flip_bytes(file: Path) -> None:
    data = bytearray(file.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 8] = bytes(b ^ 0xFF for b in data[middle : middle + 8])
    file.write_bytes(bytes(data))


def sha256(file: Path) -> str:
    return hashlib.sha256(file.read_bytes()).hexdigest()


def truncate(file: Path) -> None:
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])


@pytest.mark.parametrize("damage", [flip_bytes, truncate], ids=["flipped", "truncated"])
@pytest.mark.parametrize("component", ["model", "optimizer"])
def test_fault_25_damaged_file_names_the_file(trained_run, tmp_path, damage, component) -> None:
    """FAULT-25: a damaged component is refused, naming the file; nothing is half-loaded."""
    folder = copy_of(trained_run / "final", tmp_path)
    damage(folder / f"{component}.safetensors")
    pattern = rf"checkpoint file '.*final/{component}\.safetensors' is corrupted \(checksum"
    with pytest.raises(CheckpointError, match=pattern):
        checkpoint.load(folder)
    with pytest.raises(CheckpointError, match=pattern):
        Agent.load(folder)


def test_fault_25_damaged_file_with_a_matching_checksum_is_still_refused(
    trained_run, tmp_path
) -> None:
    """FAULT-25: when the checksum was rewritten too, safetensors' own parse catches it."""
    folder = copy_of(trained_run / "final", tmp_path)
    truncate(folder / "model.safetensors")
    meta = json.loads((folder / checkpoint.META).read_text())
    checksums = {**meta["checksums"], "model.safetensors": sha256(folder / "model.safetensors")}
    rewrite_meta(folder, checksums=checksums)
    with pytest.raises(CheckpointError, match=r"file '.*model\.safetensors' cannot be read"):
        Agent.load(folder)


def test_fault_25_missing_component_and_bad_meta(trained_run, tmp_path) -> None:
    folder = copy_of(trained_run / "final", tmp_path)
    (folder / "optimizer.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"is missing its file 'optimizer\.safetensors'"):
        checkpoint.load(folder)
    (folder / checkpoint.META).write_text('{"format_version": 1, "checks')
    with pytest.raises(CheckpointError, match=r"'.*meta\.json' is not valid JSON"):
        Agent.load(folder)
    (folder / checkpoint.META).write_text(json.dumps({"format_version": 1, "checksums": {}}))
    with pytest.raises(CheckpointError, match=r"meta\.json is incomplete"):
        Agent.load(folder)


# --- FAULT-26: a newer format -------------------------------------------------------------------


@pytest.mark.parametrize("version", [3, 99, None, "1"])
def test_fault_26_newer_or_unknown_format_tells_to_upgrade(trained_run, tmp_path, version) -> None:
    folder = copy_of(trained_run / "final", tmp_path)
    rewrite_meta(folder, format_version=version)
    with pytest.raises(
        CheckpointError,
        match=rf"checkpoint format {version!r}; this mentor reads up to 2: upgrade with "
        r"'pip install -U mentor'",
    ):
        Agent.load(folder)


# --- FAULT-29: pickle is never loaded -----------------------------------------------------------


class Payload:
    """Unpickling this runs a command: it creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def test_the_payload_really_runs_when_unpickled(tmp_path: Path) -> None:
    """The control for the FAULT-29 tests: a plain ``pickle.loads`` does run the command."""
    marker = tmp_path / "control"
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.exists()


def test_fault_29_pickle_given_as_a_checkpoint_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    file = tmp_path / "agent.pt"
    torch.save({"model": Payload(marker)}, file)
    with pytest.raises(CheckpointError, match=r"agent\.pt' is neither a mentor run folder"):
        Agent.load(file)
    folder = tmp_path / "ckpt"
    folder.mkdir()
    shutil.copy(file, folder / "model.pt")
    with pytest.raises(CheckpointError, match=r"ckpt' is neither a mentor run folder"):
        Agent.load(folder)
    assert not marker.exists()


@pytest.mark.parametrize("fix_checksum", [False, True], ids=["checksum-differs", "checksum-fixed"])
def test_fault_29_pickle_as_model_safetensors_is_refused(
    trained_run, tmp_path, fix_checksum
) -> None:
    """FAULT-29: a pickle in place of model.safetensors, even with its checksum in meta.json,
    is refused, naming the file, and its code never runs."""
    marker = tmp_path / "code-ran"
    folder = copy_of(trained_run / "final", tmp_path)
    model = folder / "model.safetensors"
    with open(model, "wb") as f:
        pickle.dump(Payload(marker), f)
    if fix_checksum:
        meta = json.loads((folder / checkpoint.META).read_text())
        rewrite_meta(folder, checksums={**meta["checksums"], model.name: sha256(model)})
    with pytest.raises(CheckpointError, match=r"'.*final/model\.safetensors' (is|cannot)"):
        Agent.load(folder)
    assert not marker.exists()


# --- FAULT-28: tensors that do not fit ----------------------------------------------------------


def test_fault_28_load_weights_lists_missing_unexpected_and_reshaped_keys() -> None:
    module = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    before = {k: v.clone() for k, v in module.state_dict().items()}
    state = {
        "0.weight": torch.zeros(8, 4),
        "0.bias": torch.zeros(5),  # reshaped
        "2.weight": torch.zeros(2, 8),  # 2.bias missing
        "3.weight": torch.zeros(1),  # unexpected
    }
    with pytest.raises(
        CheckpointError,
        match=r"'src' does not fit this network: missing \['2\.bias'\], "
        r"unexpected \['3\.weight'\], reshaped \(checkpoint vs network\) "
        r"\['0\.bias \(5,\) vs \(8,\)'\]",
    ):
        load_weights(module, state, Path("src"))
    for key, value in module.state_dict().items():
        assert torch.equal(value, before[key]), f"{key} changed: the load must be all or nothing"


@pytest.mark.parametrize(
    ("overrides", "pattern"),
    [
        (
            ["agent.network.hidden_sizes=[32, 32]", "env.normalize_obs=true"],
            r"missing \[\], unexpected \[\], reshaped \(checkpoint vs network\) "
            r"\['actor_body\.0\.bias \(64,\) vs \(32,\)', 'actor_body\.0\.weight \(64, 4\) vs "
            r"\(32, 4\)', ",
        ),
        (
            ["env.normalize_obs=false"],
            r"missing \[\], unexpected \['normalizer\.stats\.count', 'normalizer\.stats\.mean', "
            r"'normalizer\.stats\.var'\], reshaped \(checkpoint vs network\) \[\]",
        ),
    ],
    ids=["narrower-layers", "without-normalizer"],
)
def test_fault_28_init_from_a_network_that_does_not_fit(
    trained_run, tmp_path, overrides, pattern
) -> None:
    """FAULT-28 through agent.init: the trained run (64-wide layers, observation statistics)
    into a network of other widths, or without the statistics."""
    experiment = build(
        method="ppo",
        env_id="CartPole-v1",
        overrides=[
            f"agent.init={trained_run}",
            f"output_dir={tmp_path}",
            "logging.progress=false",
            "logging.tensorboard=false",
            *overrides,
        ],
    )
    with pytest.raises(CheckpointError, match=r"best' does not fit this network: " + pattern):
        api.train(experiment)


# --- FAULT-27: another env's checkpoint ---------------------------------------------------------


def test_fault_27_init_from_another_envs_checkpoint_names_both_spaces(
    trained_run, tmp_path
) -> None:
    """FAULT-27: a CartPole agent (4 observations) as the start of an Acrobot run (6)."""
    experiment = build(
        method="ppo",
        env_id="Acrobot-v1",
        overrides=[
            f"agent.init={trained_run}",
            f"output_dir={tmp_path}",
            "logging.progress=false",
            "logging.tensorboard=false",
        ],
    )
    with pytest.raises(
        CheckpointError,
        match=r"agent\.init '.*best': its observation space .*'shape': \[4\].* differs from the "
        r"env's .*'shape': \[6\]",
    ):
        api.train(experiment)


def test_fault_27_space_mismatch_is_found_before_any_weight_changes(trained_run) -> None:
    experiment = build(method="ppo", env_id="Pendulum-v1", overrides=[f"agent.init={trained_run}"])
    env = gym.make("Pendulum-v1")
    agent = Agent.build(experiment, env.observation_space, env.action_space)
    before = {k: v.clone() for k, v in agent.policy.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"observation space .* differs from the env's"):
        initialize(agent, experiment.agent)
    for key, value in agent.policy.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_fault_27_evaluating_on_another_env_names_both_spaces(trained_run) -> None:
    agent = Agent.load(trained_run)
    with pytest.raises(
        EnvError, match=r"env 'Acrobot-v1' has observation space Box\(.*\(6,\).* trained on Box"
    ):
        api.evaluate(agent, "Acrobot-v1", episodes=2)


# --- agent.init: part of a network, frozen ------------------------------------------------------


def test_init_layers_and_freeze(trained_run: Path) -> None:
    experiment = build(
        overrides=[
            f"agent.init={trained_run}",
            "agent.init_layers=[actor]",
            "agent.freeze=[actor_body]",
            "env.normalize_obs=true",
        ]
    )
    env = gym.make("CartPole-v1")
    agent = Agent.build(experiment, env.observation_space, env.action_space)
    fresh = {k: v.clone() for k, v in agent.policy.state_dict().items()}
    initialize(agent, experiment.agent)
    saved = checkpoint.load(trained_run / "checkpoints" / "best")[0]["model"]
    for key, value in agent.policy.state_dict().items():
        expected = saved[key] if key.startswith("actor") else fresh[key]
        assert torch.equal(value, expected), key
    frozen = {name for name, p in agent.policy.named_parameters() if not p.requires_grad}
    assert frozen and all(name.startswith("actor_body") for name in frozen)
    assert any(p.requires_grad for name, p in agent.policy.named_parameters() if "head" in name)

    for key, pattern in [
        ("init_layers", r"agent\.init_layers pattern 'nothing' matches no parameter .* top-level "
         r"layers are \['actor_body'"),
        ("freeze", r"agent\.freeze pattern 'actor_bdy' matches no parameter of the network "
         r"\(did you mean: actor_body"),
    ]:  # fmt: skip
        bad = "nothing" if key == "init_layers" else "actor_bdy"
        config = experiment.agent.model_copy(update={key: [bad]})
        with pytest.raises(ConfigError, match=pattern):
            initialize(Agent.build(experiment, env.observation_space, env.action_space), config)
    env.close()


def test_optimizer_and_rng_states_restore_exactly() -> None:
    """The restore halves of what every checkpoint saves: after restoring, the next optimizer
    step and the next random draws equal those of the run that was never interrupted."""
    import random

    import numpy as np

    from mentor.core.seeding import rng_state, seed_everything, set_rng_state
    from mentor.runs.state import TrainState

    def model_and_optimizer() -> tuple[torch.nn.Linear, torch.optim.Adam]:
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 2)
        return model, torch.optim.Adam(model.parameters(), lr=0.1)

    def step(model: torch.nn.Linear, optimizer: torch.optim.Adam) -> None:
        optimizer.zero_grad()
        model(torch.ones(4, 3)).square().sum().backward()
        optimizer.step()

    def listed(model: torch.nn.Linear, optimizer: torch.optim.Adam) -> TrainState:
        state = TrainState()
        state.module("model", model)
        state.optimizer("optimizer", optimizer)
        return state

    model, optimizer = model_and_optimizer()
    step(model, optimizer)
    components, values = listed(model, optimizer).save()
    components = {n: {k: v.clone() for k, v in t.items()} for n, t in components.items()}
    values = json.loads(json.dumps(values))  # as it travels through meta.json
    step(model, optimizer)  # the uninterrupted run's next step
    restored, restored_optimizer = model_and_optimizer()
    listed(restored, restored_optimizer).load(components, values, "test")
    step(restored, restored_optimizer)
    for key, value in model.state_dict().items():
        assert torch.equal(restored.state_dict()[key], value), key

    seed_everything(3)
    state = json.loads(json.dumps(rng_state()))  # as it travels through meta.json
    expected = (random.random(), np.random.rand())
    seed_everything(4)
    set_rng_state(state)
    assert (random.random(), np.random.rand()) == expected


def test_export_writes_the_agent_alone_and_it_acts_the_same(trained_run: Path, tmp_path: Path):
    import mentor

    out = mentor.export(trained_run, tmp_path / "deploy")
    assert sorted(p.name for p in out.iterdir()) == ["meta.json", "model.safetensors"]
    exported, original = Agent.load(out), Agent.load(trained_run)
    assert exported.act(OBSERVATIONS).tolist() == original.act(OBSERVATIONS).tolist()
    for name, value in original.policy.normalizer.stats.state_dict().items():  # they travel too
        assert torch.equal(exported.policy.normalizer.stats.state_dict()[name], value), name
    assert original.policy.normalizer.stats.count.item() > 100
    with pytest.raises(ConfigError, match="exists"):
        mentor.export(trained_run, out)
    with pytest.raises(CheckpointError, match="neither a mentor run folder"):
        mentor.export(tmp_path, tmp_path / "other")
