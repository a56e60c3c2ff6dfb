"""Exact resume and the faults a run must survive (issue 4; FAULT-17, 23-26, 31, 32 of the notes).

The promise: a run stopped after a checkpoint (Ctrl-C, SIGTERM, SIGKILL) and resumed ends with
parameters bitwise equal to a run that was never stopped. Each signal is sent to a real
``mentor train`` process; the reference run is trained in this process with the same experiment.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import mentor
from mentor.errors import CheckpointError, ConfigError, EnvWorkerError
from mentor.experiment import build
from mentor.runs import checkpoint
from mentor.runs.signals import GracefulStop

QUIET = ["logging.progress=false", "logging.tensorboard=false"]

# Small runs that still cross episode ends, validations and several checkpoints. The first
# checkpoint comes at about a quarter of the run, so a signal sent then arrives mid-run.
RUNS = {
    "ppo": ("CartPole-v1", [
        "env.num_envs=4", "method.num_steps=64", "method.num_epochs=2", "method.num_minibatches=4",
        "agent.network.hidden_sizes=[32, 32]", "stopping.total_steps=12288",
        "checkpoints.every_steps=2048", "validation.every_steps=4096",
        "env.normalize_obs=true", "env.normalize_reward=true",
        "method.learning_rate={kind: linear, start: 0.001, end: 0.0}",
    ]),
    "dqn": ("CartPole-v1", [
        "env.num_envs=2", "method.learning_starts=200", "method.batch_size=32",
        "method.buffer_size=5000", "method.train_freq=4", "method.gradient_steps=1",
        "method.target_update_freq=100",
        "agent.network.hidden_sizes=[32, 32]", "stopping.total_steps=3000",
        "checkpoints.every_steps=750", "validation.every_steps=1500", "logging.every_steps=250",
    ]),
    "sac": ("Pendulum-v1", [
        "env.num_envs=1", "method.learning_starts=100", "method.batch_size=32",
        "method.buffer_size=5000", "agent.network.hidden_sizes=[32, 32]",
        "stopping.total_steps=1600", "checkpoints.every_steps=400",
        "validation.every_steps=800", "logging.every_steps=200",
    ]),
    "td3": ("Pendulum-v1", [
        "env.num_envs=1", "method.learning_starts=100", "method.batch_size=32",
        "method.buffer_size=5000", "agent.network.hidden_sizes=[32, 32]",
        "stopping.total_steps=1600", "checkpoints.every_steps=400",
        "validation.every_steps=800", "logging.every_steps=200",
    ]),
}  # fmt: skip


def overrides(method: str, tmp_path: Path, name: str, *extra: str) -> list[str]:
    env_id, options = RUNS[method]
    return [
        f"method.name={method}", f"env.id={env_id}", f"output_dir={tmp_path}", f"name={name}",
        "seed=7", "validation.episodes=2", "validation.num_envs=2", "evaluation.episodes=2",
        "checkpoints.keep_last=10", *QUIET, *options, *extra,
    ]  # fmt: skip


def train(method: str, tmp_path: Path, name: str, *extra: str) -> Path:
    return mentor.train(build(overrides=overrides(method, tmp_path, name, *extra))).run_dir


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def assert_bitwise_equal(run: Path, reference: Path) -> None:
    ours, theirs = weights(run / "final"), weights(reference / "final")
    assert ours.keys() == theirs.keys()
    for key in theirs:
        assert torch.equal(ours[key], theirs[key]), f"{key} differs after resume"
    # The logs are the same too: rows after the stop were written once, by the resumed run.
    assert logged(run) == logged(reference)


def assert_resumes_bitwise(experiment: Callable[[str], Any], tmp_path: Path, keep: int = 2) -> Path:
    """Train ``experiment("reference")`` to its end, stop a copy after its ``keep``-th checkpoint
    and resume it: its envs restored exactly, its weights and logs the reference's. Returns the
    reference's run folder."""
    reference = mentor.train(experiment("reference")).run_dir
    run = copy_stopped_at(reference, tmp_path, keep=keep)
    mentor.resume(run)
    assert manifest(run)["resumes"][0]["env"] == "restored exactly"
    assert_bitwise_equal(run, reference)
    return reference


def logged(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    return [{k: v for k, v in row.items() if not k.startswith("time")} for row in rows]


def manifest(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text())


def assert_resumes_with_new_episodes(experiment: Any, tmp_path: Path) -> None:
    """For envs without a snapshot (Box2D's world, ALE's vector env): train ``experiment``,
    stop a copy after its last checkpoint and resume it; it starts new episodes, seeded, its
    manifest names that fallback, and it runs to its budget."""
    reference = mentor.train(experiment).run_dir
    run = copy_stopped_at(reference, tmp_path, keep=1)
    mentor.resume(run)
    written = manifest(run)
    assert written["resumes"][0]["env"].startswith("reset to new episodes"), written["resumes"]
    assert written["stop_reason"].startswith("budget")


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One uninterrupted run per method."""
    root = tmp_path_factory.mktemp("reference")
    return {method: train(method, root, f"{method}-reference") for method in RUNS}


# --- signals to a real training process ------------------------------------------------------


def start_training(method: str, tmp_path: Path, name: str, *extra: str) -> subprocess.Popen:
    args = [sys.executable, "-m", "mentor", "train", "--quiet"]
    env_id, _ = RUNS[method]
    args += [method, env_id]
    for item in overrides(method, tmp_path, name):
        if not item.startswith(("method.name=", "env.id=")):
            args += ["--set", item]
    return subprocess.Popen(
        [*args, *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for_checkpoint(process: subprocess.Popen, run: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not list((run / "checkpoints").glob("step_*")):
        if process.poll() is not None:
            raise AssertionError(f"training ended early: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("no checkpoint appeared")
        time.sleep(0.01)


@pytest.mark.parametrize("method", sorted(RUNS))
@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "SIGKILL"])
def test_a_run_stopped_by_a_signal_resumes_bitwise_equal(
    tmp_path: Path, references: dict[str, Path], method: str, how: str
) -> None:
    run = tmp_path / f"{method}-stopped"
    process = start_training(method, tmp_path, run.name)
    wait_for_checkpoint(process, run)
    # Freeze the process the moment its first checkpoint exists, so the signal lands mid-run
    # however fast this machine is; it is delivered when the process continues.
    os.kill(process.pid, signal.SIGSTOP)
    os.kill(process.pid, getattr(signal, how))
    os.kill(process.pid, signal.SIGCONT)
    _, stderr = process.communicate(timeout=120)

    if how == "SIGKILL":
        assert process.returncode == -signal.SIGKILL
        assert manifest(run)["stop_reason"] is None  # it never got to say
    else:
        assert process.returncode == 130, stderr
        stopped = manifest(run)
        assert stopped["stop_reason"].startswith(f"interrupted: {how}")
        assert f"mentor resume {run}" in stopped["stop_reason"]
        assert not (run / "final").exists()  # the run is not over: no final/, no evaluation
        # The checkpoint of the step where it stopped was written on the way out.
        assert checkpoint.newest_intact(run).step == stopped["total_steps"]
    reference_steps = manifest(references[method])["total_steps"]
    assert checkpoint.newest_intact(run).step < reference_steps

    result = mentor.resume(run)
    assert result.total_steps == reference_steps
    assert_bitwise_equal(run, references[method])
    resumed = manifest(run)
    assert resumed["resumes"][0]["env"] == "restored exactly"
    assert resumed["stop_reason"] == manifest(references[method])["stop_reason"]


def test_a_second_signal_raises_at_once_and_the_handlers_are_restored() -> None:
    """The handlers put back are those found, whatever they were (a Ray test run earlier in
    the same process leaves ray.init's SIGTERM handler, not the default)."""
    before = signal.getsignal(signal.SIGINT)
    before_term = signal.getsignal(signal.SIGTERM)
    with GracefulStop() as stop:
        assert signal.getsignal(signal.SIGTERM) == stop._handle  # its own while it runs
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested == "SIGTERM"  # the first one only asks
        with pytest.raises(KeyboardInterrupt, match="second SIGINT"):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # not reached: the handler raises as soon as the signal arrives
    assert signal.getsignal(signal.SIGINT) is before
    assert signal.getsignal(signal.SIGTERM) is before_term


def test_a_second_ctrl_c_stops_at_once_and_the_checkpoints_stay_intact(tmp_path: Path) -> None:
    # Long updates (10 epochs over 4096 steps), so the second Ctrl-C lands inside one.
    slow = ["--set", "method.num_steps=1024", "--set", "method.num_epochs=10"]
    run = tmp_path / "ppo-twice"
    process = start_training("ppo", tmp_path, run.name, *slow)
    wait_for_checkpoint(process, run)
    os.kill(process.pid, signal.SIGINT)
    line = process.stderr.readline()
    while not line.strip():
        line = process.stderr.readline()
    assert line.startswith("SIGINT: finishing this update")
    os.kill(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    stopped = manifest(run)
    # On a loaded machine the first stop may complete before the second signal arrives.
    if stopped["stop_reason"].startswith("interrupted at once"):
        assert stderr.strip().startswith("stopped: second SIGINT")
    else:
        assert stopped["stop_reason"].startswith("interrupted: SIGINT")
    kept = checkpoint.latest(run)
    for folder in kept:
        checkpoint.load(folder)  # every checkpoint left is complete and verifies
    assert not list((run / "checkpoints").glob(".tmp-*"))
    assert checkpoint.newest_intact(run).folder == kept[0]


# --- resuming: which checkpoint, and what it refuses -----------------------------------------


def copy_stopped_at(reference: Path, tmp_path: Path, keep: int) -> Path:
    """A copy of a finished run as if it had been killed after its ``keep``-th checkpoint."""
    run = tmp_path / "copy"
    shutil.copytree(reference, run)
    shutil.rmtree(run / "final")
    for folder in checkpoint.latest(run)[: -keep or None]:
        shutil.rmtree(folder)
    (run / "evaluation.json").unlink()
    return run


def test_a_corrupted_newest_checkpoint_is_skipped_and_named(
    tmp_path: Path, references: dict[str, Path], capsys: pytest.CaptureFixture
) -> None:
    run = copy_stopped_at(references["ppo"], tmp_path, keep=3)
    newest = checkpoint.latest(run)[0]
    model = newest / "model.safetensors"
    model.write_bytes(model.read_bytes()[:-100])  # truncated
    mentor.resume(run)
    assert_bitwise_equal(run, references["ppo"])
    skipped = manifest(run)["resumes"][0]["skipped"]
    assert len(skipped) == 1 and newest.name in skipped[0] and "corrupted" in skipped[0]
    assert f"skipped {newest.name}" in capsys.readouterr().err


def test_no_intact_checkpoint_is_an_error_naming_each(tmp_path: Path) -> None:
    run = tmp_path / "broken"
    (run / "checkpoints" / "step_000000000100").mkdir(parents=True)
    (run / "checkpoints" / "step_000000000100" / "meta.json").write_text("{not json")
    (run / "manifest.json").write_text("{}")
    with pytest.raises(CheckpointError, match=r"no intact checkpoint.*step_000000000100.*JSON"):
        mentor.resume(run)


def test_a_finished_run_resumes_only_with_a_larger_budget(
    tmp_path: Path, references: dict[str, Path]
) -> None:
    run = tmp_path / "finished"
    shutil.copytree(references["dqn"], run)
    # Whatever stopped it (a budget here, a target or a plateau elsewhere), a finished run goes
    # on only with changed stopping rules.
    with pytest.raises(ConfigError, match=r"has finished \(budget: reached total_steps=3000\)"):
        mentor.resume(run)
    with pytest.raises(ConfigError, match=r"already reached stopping.total_steps=3,000.*--set"):
        mentor.resume(run, ["stopping.target_return=400"])
    result = mentor.resume(run, ["stopping.total_steps=3500"])
    assert result.total_steps == 3500
    assert manifest(run)["resume_overrides"] == ["stopping.total_steps=3500"]
    assert "total_steps: 3500" in (run / "experiment.yaml").read_text()


def test_resume_into_other_spaces_is_an_error_naming_both(
    tmp_path: Path, references: dict[str, Path]
) -> None:
    run = copy_stopped_at(references["ppo"], tmp_path, keep=2)
    with pytest.raises(CheckpointError, match=r"trained with observation space .*this experiment"):
        mentor.resume(run, ["env.id=Acrobot-v1"])


def test_a_run_with_async_workers_resumes_bitwise_equal(tmp_path: Path) -> None:
    extra = ["env.vectorization=async", "env.num_envs=2", "stopping.total_steps=4096"]
    reference = train("ppo", tmp_path, "async", *extra)
    run = copy_stopped_at(reference, tmp_path, keep=1)
    mentor.resume(run)
    assert manifest(run)["resumes"][0]["env"] == "restored exactly"
    assert_bitwise_equal(run, reference)


def test_a_run_with_declared_info_keys_resumes_bitwise_equal(tmp_path: Path) -> None:
    """The running sums of "sum" info keys are part of the env state: a checkpoint taken in
    the middle of episodes holds them, and the resumed run logs the same costs."""
    extra = [
        "env.id=mentor.envs.testing:InfoEnv",
        "env.info_keys=[is_success, {cost: sum}]",
        "stopping.total_steps=4096",
    ]
    reference = train("ppo", tmp_path, "info", *extra)
    run = copy_stopped_at(reference, tmp_path, keep=1)
    (folder,) = checkpoint.latest(run)
    sums = load_file(str(folder / "env.safetensors"))["info_sums"]
    assert sums.shape == (4, 1) and sums.abs().sum() > 0  # episodes were under way
    mentor.resume(run)
    assert manifest(run)["resumes"][0]["env"] == "restored exactly"
    assert_bitwise_equal(run, reference)
    assert "rollout/cost_mean" in logged(run)[-1]
    with open(run / "validation.csv") as ours, open(reference / "validation.csv") as theirs:
        drop_time = [{k: v for k, v in row.items() if k != "time"} for row in csv.DictReader(ours)]
        assert drop_time == [
            {k: v for k, v in row.items() if k != "time"} for row in csv.DictReader(theirs)
        ]


def test_a_checkpoint_written_before_episode_records_still_resumes_bitwise_equal(
    tmp_path: Path,
) -> None:
    """Checkpoints of earlier versions hold finished episodes as two lists, returns and
    lengths, and no info state: they resume, exactly."""
    reference = train("dqn", tmp_path, "old-env-state", "logging.every_steps=300")
    run = copy_stopped_at(reference, tmp_path, keep=1)
    (folder,) = checkpoint.latest(run)
    meta = json.loads((folder / "meta.json").read_text())
    env = meta["state"]["env"]
    episodes = env.pop("episodes")
    del env["info_sum_keys"], env["info_sums_seen"]
    assert episodes, "episodes ended since the last metrics row (at 600): the lists are not empty"
    env["finished_returns"] = [episode["ret"] for episode in episodes]
    env["finished_lengths"] = [episode["length"] for episode in episodes]
    (folder / "meta.json").write_text(json.dumps(meta))
    mentor.resume(run)
    assert manifest(run)["resumes"][0]["env"] == "restored exactly"
    assert_bitwise_equal(run, reference)


def test_resume_refuses_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a mentor run folder"):
        mentor.resume(tmp_path)


class StatelessEnv(gym.Env):
    """An env mentor knows nothing about, that does not give its state."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple:
        super().reset(seed=seed)
        self.t = 0
        return self.np_random.uniform(-1, 1, 2).astype(np.float32), {}

    def step(self, action: int) -> tuple:
        self.t += 1
        obs = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        return obs, float(action == (obs[0] > 0)), False, self.t >= 20, {}


def test_an_env_without_state_resumes_at_new_episodes_and_says_so(tmp_path: Path) -> None:
    extra = [f"env.id={__name__}:StatelessEnv", "stopping.total_steps=4096"]
    finished = train("ppo", tmp_path, "stateless", *extra)
    run = copy_stopped_at(finished, tmp_path, keep=1)
    meta = json.loads((checkpoint.latest(run)[0] / "meta.json").read_text())
    assert "StatelessEnv" in meta["env_state"]
    result = mentor.resume(run)
    assert result.total_steps == 4096
    note = manifest(run)["resumes"][0]["env"]
    assert note.startswith("reset to new episodes") and "StatelessEnv" in note


# --- checkpoint writing: kills, full disks, unwritable folders -------------------------------

KILL_DURING_SAVE = """
import os, signal, sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
import torch
from mentor.runs import checkpoint
from mentor.runs.signals import GracefulStop

path, when = Path(sys.argv[1]), sys.argv[2]
if when == "between-files":
    import safetensors.torch as st
    real, calls = st.save_file, []
    def dying_save(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    checkpoint.save_file = dying_save
else:  # between the two renames: the old folder moved aside, the new one not yet in place
    real_replace, calls = os.replace, []
    def dying_replace(src, dst):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(src, dst)
    checkpoint.os.replace = dying_replace
new = {"model": {"w": torch.full((3,), 2.0)}, "optimizer": {"m": torch.ones(2)}}
checkpoint.save(path, new, {"step": 2})
"""


@pytest.mark.parametrize("when", ["between-files", "between-renames"])
def test_a_kill_while_writing_a_checkpoint_leaves_the_previous_one(
    tmp_path: Path, when: str
) -> None:
    path = tmp_path / "checkpoints" / "step_1"
    checkpoint.save(path, {"model": {"w": torch.ones(3)}, "optimizer": {"m": torch.zeros(2)}},
                    {"step": 1})  # fmt: skip
    process = subprocess.run([sys.executable, "-c", KILL_DURING_SAVE, str(path), when])
    assert process.returncode == -signal.SIGKILL
    components, meta = checkpoint.load(path)  # the old one, whole
    assert meta["step"] == 1 and torch.equal(components["model"]["w"], torch.ones(3))
    assert checkpoint.resolve(path) is not None


def test_a_full_disk_while_checkpointing_stops_with_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from mentor.runs import checkpoint as module

    real, calls = module.save_file, []

    def full_disk(*args: object, **kwargs: object) -> None:
        calls.append(1)
        if len(calls) > 12:  # the first checkpoints fit
            raise OSError(errno.ENOSPC, "No space left on device")
        real(*args, **kwargs)

    monkeypatch.setattr(module, "save_file", full_disk)
    with pytest.raises(CheckpointError, match=r"No space left on device.*previous checkpoints"):
        train("ppo", tmp_path, "full")
    run = tmp_path / "full"
    assert manifest(run)["stop_reason"].startswith("error: cannot write checkpoint")
    kept = checkpoint.latest(run)
    assert kept
    for folder in kept:
        checkpoint.load(folder)
    assert not list((run / "checkpoints").glob(".tmp-*"))  # the partial copy was removed


def test_an_unwritable_checkpoint_folder_is_a_clear_error(tmp_path: Path) -> None:
    experiment = build(overrides=overrides("ppo", tmp_path, "unwritable"))
    run = tmp_path / "unwritable"
    from mentor.methods import ppo
    from mentor.runs.folder import RunFolder

    folder = RunFolder.create(tmp_path, "unwritable")
    folder.start(experiment.to_yaml(), {"name": run.name})
    shutil.rmtree(run / "checkpoints")
    (run / "checkpoints").write_text("a file where the folder should be")
    with pytest.raises(CheckpointError, match=r"cannot write checkpoint .*checkpoints"):
        ppo.train(experiment, folder)
    assert manifest(run)["stop_reason"].startswith("error: cannot write checkpoint")


def test_cli_resume_errors_are_one_line_with_exit_code_2(tmp_path: Path) -> None:
    process = subprocess.run(
        [sys.executable, "-m", "mentor", "resume", str(tmp_path / "nothing")],
        capture_output=True,
        text=True,
    )
    assert process.returncode == 2
    assert process.stderr.count("\n") == 1 and "not a mentor run folder" in process.stderr


# --- faulty envs during training (async workers) ---------------------------------------------


def faulty_run(tmp_path: Path, name: str, env: str, kwargs: str, *extra: str) -> list[str]:
    return overrides(
        "ppo", tmp_path, name, f"env.id=mentor.envs.faulty:{env}", f"env.kwargs={kwargs}",
        "env.vectorization=async", "env.num_envs=2", "method.num_steps=64",
        "stopping.total_steps=1024", "checkpoints.every_steps=256", "validation.every_steps=512",
        *extra,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("env", "fault", "said"),
    [
        ("CrashingEnv", "crash_at_step", "raised RuntimeError in step"),
        ("HangingEnv", "hang_at_step", "did not answer a step within 1.0 s"),
        ("DyingEnv", "die_at_step", "worker died in step"),
    ],
)
def test_a_failing_env_worker_is_restarted_and_training_goes_on(
    tmp_path: Path, env: str, fault: str, said: str, capsys: pytest.CaptureFixture
) -> None:
    # One copy: copies step in lockstep, and two failing at once would both count as the one.
    count = tmp_path / "failures.txt"
    kwargs = f"{{{fault}: 100, times: 1, count_file: '{count}'}}"
    experiment = build(overrides=faulty_run(tmp_path, "restarted", env, kwargs,
                                            "env.step_timeout=1.0", "env.num_envs=1"))  # fmt: skip
    result = mentor.train(experiment)
    assert result.stop_reason.startswith("budget") and result.total_steps == 1024
    restarts = manifest(result.run_dir)["env_restarts"]
    assert len(restarts) == 1 and said in restarts[0] and "restart 1 of 3" in restarts[0]
    assert restarts[0].startswith("env 0")
    assert "env worker restarted: env" in capsys.readouterr().err
    if env == "CrashingEnv":  # the worker's traceback comes with it
        assert "Traceback" in restarts[0] and "RuntimeError" in restarts[0]


def test_past_the_restart_limit_training_stops_with_a_checkpoint_and_a_clear_error(
    tmp_path: Path,
) -> None:
    # Every new worker crashes again at its 300th step: one restart is allowed, the second
    # failure stops the run. No periodic checkpoint is due, so the one written is the failure's.
    options = faulty_run(tmp_path, "limit", "CrashingEnv", "{crash_at_step: 300}",
                         "env.max_restarts=1", "checkpoints.every_steps=100000")  # fmt: skip
    experiment = build(overrides=options)
    limit = r"env \d raised RuntimeError in step.*restart limit \(1\) used up"
    with pytest.raises(EnvWorkerError, match=limit) as caught:
        mentor.train(experiment)
    assert "Traceback" in caught.value.traceback
    run = tmp_path / "limit"
    stopped = manifest(run)
    assert stopped["stop_reason"].startswith("error: env")
    assert len(stopped["env_restarts"]) == 1
    kept = checkpoint.newest_intact(run)  # the last completed update is saved
    assert kept.meta["env_state"].startswith("env workers failed: env")
    assert kept.step == stopped["total_steps"] > 0
    # Resuming from it starts new episodes, and says why.
    mentor.resume(run, ["env.kwargs={crash_at_step: 1000000}"])
    note = manifest(run)["resumes"][0]["env"]
    assert note.startswith("reset to new episodes: env workers failed")
