"""What a new user hit in wave 1 (issue 10, items 2, 3, 5 and 6), each case reproduced: errors
that reached the user raw, files and folders, progress and stopping that misled, small things.
Each test failed before its fix."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

import mentor
from mentor.errors import ConfigError, EnvError
from mentor.experiment import build
from mentor.runs import checkpoint
from mentor.runs.folder import RunFolder
from mentor.runs.logger import MetricsLogger

MENTOR = Path(sys.executable).with_name("mentor")
QUIET = ["logging.progress=false", "logging.tensorboard=false"]


def run_cli(*args: str, cwd: Path | None = None, **popen) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(MENTOR), *args], capture_output=True, text=True, cwd=cwd, timeout=300, **popen
    )


def one_line_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


def tiny(tmp_path: Path, *extra: str, method: str = "ppo", env_id: str = "CartPole-v1"):
    return build(
        method=method,
        env_id=env_id,
        overrides=[
            f"output_dir={tmp_path}",
            "stopping.total_steps=512",
            "validation.every_steps=256",
            "validation.episodes=2",
            "validation.num_envs=2",
            "evaluation.episodes=2",
            *QUIET,
            *extra,
        ],
    )


# --- item 2: errors that reached the user raw ---------------------------------------------------


def test_record_with_an_agent_of_other_spaces_is_one_line(trained_run: Path, tmp_path) -> None:
    done = run_cli(
        "record",
        str(trained_run),
        "--env",
        "Acrobot-v1",
        "--episodes",
        "1",
        "--out",
        str(tmp_path / "data"),
    )
    line = one_line_error(done)
    assert "env 'Acrobot-v1' has observation space Box(shape=(6,), dtype=float32)" in line
    assert "the agent was trained on Box(shape=(4,), dtype=float32)" in line
    assert not (tmp_path / "data").exists()


def test_show_defaults_lists_a_method_with_a_required_field() -> None:
    """dagger's method.expert has no default: show-defaults used to crash on it."""
    done = run_cli("show-defaults", "dagger")
    assert done.returncode == 0, done.stderr
    tree = yaml.safe_load(done.stdout)
    assert tree["method"]["expert"] == "<required>"
    assert "(required) The expert" in done.stdout
    done = run_cli("show-defaults", "dagger", "CartPole-v1")
    assert done.returncode == 0, done.stderr
    assert "# <required>: set with --set (method.expert)" in done.stdout
    assert yaml.safe_load(done.stdout)["stopping"]["target_return"] == "env"


def test_evaluate_with_no_episodes_and_train_of_a_number(trained_run: Path) -> None:
    agent = mentor.load(trained_run)
    for bad in (0, -3, 2.5):
        with pytest.raises(ConfigError, match=r"evaluate: episodes must be a whole number >= 1"):
            mentor.evaluate(agent, "CartPole-v1", episodes=bad)
    with pytest.raises(ConfigError, match=r"num_envs must be a whole number >= 1, got 0"):
        mentor.evaluate(agent, "CartPole-v1", episodes=2, num_envs=0)
    with pytest.raises(TypeError, match=r"an Experiment, a dict of sections .* got int: 42"):
        mentor.train(42)


THREE_ACTIONS = """
from gymnasium import spaces
from gymnasium.envs.classic_control import CartPoleEnv


class ThreeActions(CartPoleEnv):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.action_space = spaces.Discrete(3)
"""


def test_evaluate_on_an_env_with_other_actions_names_both(trained_run, tmp_path, monkeypatch):
    (tmp_path / "three_actions.py").write_text(THREE_ACTIONS)
    monkeypatch.syspath_prepend(str(tmp_path))
    agent = mentor.load(trained_run)
    with pytest.raises(EnvError, match=r"has action space Discrete\(3\); the agent was trained"):
        mentor.evaluate(agent, "three_actions:ThreeActions", episodes=1)


# --- item 3: files and folders ------------------------------------------------------------------


def test_checkpoint_files_follow_the_umask(trained_run: Path, tmp_path) -> None:
    """safetensors wrote every tensor file 0600: another user could not load a deployed agent."""
    import torch

    previous = os.umask(0o022)
    try:
        out = mentor.export(trained_run, tmp_path / "deploy")
        checkpoint.save(tmp_path / "ckpt", {"model": {"w": torch.zeros(2)}}, {"step": 0})
    finally:
        os.umask(previous)
    for file in [*out.glob("*.safetensors"), *(tmp_path / "ckpt").glob("*.safetensors")]:
        assert file.stat().st_mode & 0o777 == 0o644, file


def test_a_run_folder_in_use_is_refused_naming_the_holder(tmp_path) -> None:
    """Two `mentor train --name r --overwrite` at once interleaved metrics.csv and TensorBoard
    files. The second one now stops before touching the folder, naming the first's process."""
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "manifest.json").write_text("{}")
    holder = RunFolder.create(tmp_path, "r", overwrite=True)
    (holder.path / "manifest.json").write_text("{}")
    (holder.path / "metrics.csv").write_text("step\n1\n")
    try:
        done = run_cli(
            "train",
            "ppo",
            "CartPole-v1",
            "--name",
            "r",
            "--overwrite",
            "--output-dir",
            str(tmp_path),
            "--quiet",
        )
        line = one_line_error(done)
        assert f"run folder '{tmp_path / 'r'}' is in use by process {os.getpid()}" in line
        assert (holder.path / "metrics.csv").read_text() == "step\n1\n"  # untouched
        with pytest.raises(ConfigError, match="is in use by process"):
            RunFolder.open(holder.path)
    finally:
        holder.release()
    RunFolder.open(holder.path).release()  # free again once released


def test_eval_of_an_export_writes_into_the_export(trained_run: Path, tmp_path) -> None:
    """It used to write its JSON into the export's parent folder."""
    out = mentor.export(trained_run, tmp_path / "deploy" / "cartpole")
    done = run_cli("eval", str(out), "--episodes", "2", "--num-envs", "2")
    assert done.returncode == 0, done.stderr
    assert (out / "eval_CartPole-v1_2ep.json").is_file()
    assert not list((tmp_path / "deploy").glob("*.json"))
    mentor.load(out)  # the export still loads


# --- item 5: progress, stopping and resume ----------------------------------------------------


def test_resume_advises_a_budget_past_the_checkpoint(tmp_path) -> None:
    run = mentor.train(tiny(tmp_path, "stopping.total_steps=1024")).run_dir
    with pytest.raises(ConfigError) as error:
        mentor.resume(run, ["stopping.total_steps=300"])
    # 1,024 + the run's own budget of 1,024, rounded up to a thousand.
    assert "raise it past 1,024: --set stopping.total_steps=3000" in str(error.value)


def test_resume_of_a_run_stopped_at_its_target_asks_for_the_target_too(tmp_path) -> None:
    run = mentor.train(tiny(tmp_path, "stopping.target_return=1")).run_dir
    assert json.loads((run / "manifest.json").read_text())["stop_reason"].startswith("target")
    with pytest.raises(
        ConfigError, match=r"stopped at its target .*--set stopping.target_return=null"
    ):
        mentor.resume(run, ["stopping.total_steps=4096"])
    result = mentor.resume(
        run, ["stopping.total_steps=1024", "stopping.target_return=null", *QUIET]
    )
    assert result.stop_reason == "budget: reached total_steps=1024"


SLOW_ENV = '''
import time

import gymnasium as gym
from gymnasium.envs.classic_control import CartPoleEnv


class SlowToMake(CartPoleEnv):
    """CartPole that takes 1.5 s to construct: a window for a signal before training starts."""

    def __init__(self, **kwargs):
        time.sleep(1.5)
        super().__init__(**kwargs)
'''


@pytest.mark.parametrize("background", [False, True], ids=["terminal", "background-job"])
def test_a_sigint_before_the_loop_stops_at_its_first_update(tmp_path, background: bool) -> None:
    """FAULT-17 before the loop: a SIGINT while the training envs are made (after the run folder
    exists) used to be lost — handlers were installed only around the loop, and a background
    job inherits SIG_IGN. Now it stops after the first update, with a checkpoint to resume."""
    (tmp_path / "slow_env.py").write_text(SLOW_ENV)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if background else None
    process = subprocess.Popen(
        [
            str(MENTOR),
            "train",
            "ppo",
            "slow_env:SlowToMake",
            "--quiet",
            "--name",
            "early",
            "--output-dir",
            str(tmp_path),
            "--set",
            "env.num_envs=2",
            "--set",
            "stopping.total_steps=100000",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=ignore,
    )
    run = tmp_path / "early"
    deadline = time.time() + 60
    while not (run / "manifest.json").exists() and time.time() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGINT)  # the two envs take 3 s more to make
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["stop_reason"].startswith("interrupted: SIGINT at step 256"), manifest
    assert checkpoint.newest_intact(run).step == 256


def test_an_early_ctrl_c_outside_training_says_so() -> None:
    from mentor.cli import _second_interrupt

    with pytest.raises(Exception) as stopped, _second_interrupt():
        raise KeyboardInterrupt
    assert getattr(stopped.value, "exit_code", None) == 130


def test_the_final_evaluation_says_which_weights_it_played(tmp_path) -> None:
    """It printed "best on validation" when no validation had run."""
    result = mentor.train(tiny(tmp_path, "validation.every_steps=100000"))
    assert result.evaluated == "final" and not result.validations
    assert json.loads((result.run_dir / "evaluation.json").read_text())["checkpoint"] == "final"
    result = mentor.train(tiny(tmp_path, "name=with-validation"))
    assert result.evaluated == "best"


def test_stochastic_dqn_acts_epsilon_greedily_and_says_so(tmp_path) -> None:
    """--stochastic was a silent no-op for DQN."""
    import torch

    experiment = tiny(
        tmp_path, "method.learning_starts=100", "exploration.epsilon=0.3", method="dqn"
    )
    run = mentor.train(experiment).run_dir
    agent = mentor.load(run)
    assert agent.policy.epsilon == 0.3
    obs = np.zeros((2000, 4), dtype=np.float32)
    torch.manual_seed(0)
    greedy, sampled = agent.act(obs), agent.act(obs, deterministic=False)
    # A random action differs from the greedy one half the time: 0.3 / 2 of the rows.
    assert 0.12 < np.mean(greedy != sampled) < 0.18
    done = run_cli("eval", str(run), "--episodes", "2", "--num-envs", "2", "--stochastic")
    assert done.returncode == 0, done.stderr
    assert "stochastic actions: epsilon-greedy, epsilon 0.3" in done.stdout


def test_target_env_on_an_env_without_a_threshold_warns(tmp_path, capsys) -> None:
    experiment = tiny(
        tmp_path, "stopping.target_return=env", "stopping.total_steps=256", env_id="Pendulum-v1"
    )
    mentor.train(experiment)
    assert "env 'Pendulum-v1' registers no reward threshold" in capsys.readouterr().err


def test_bc_counts_gradient_steps_and_says_so(tmp_path) -> None:
    from mentor.agent import policy_from
    from mentor.data.load import save_dataset
    from mentor.data.record import record

    dataset = record(policy_from("mentor.envs.experts:cartpole"), "CartPole-v1", {}, 4, seed=1)
    data = save_dataset(dataset, tmp_path / "data", env_id="CartPole-v1")
    experiment = tiny(tmp_path, f"data.path={data}", "method.max_epochs=3", method="bc")
    run = mentor.train(experiment).run_dir
    assert json.loads((run / "manifest.json").read_text())["step_unit"] == "gradient steps"
    rows = (run / "metrics.csv").read_text().splitlines()
    header, first = (
        rows[0].split(","),
        dict(zip(rows[0].split(","), rows[1].split(","), strict=True)),
    )
    assert "time/samples_per_second" in header
    # time/sps is gradient steps per second: samples per second / samples per step.
    per_step = float(first["time/samples_per_second"]) / float(first["time/sps"])
    assert per_step == pytest.approx(float(first["train/samples"]) / float(first["step"]), rel=1e-3)


def test_the_progress_bar_counts_what_the_method_counts(tmp_path) -> None:
    logger = MetricsLogger(
        tmp_path, 11, False, False, True, progress_unit="rounds", rate_unit="env steps"
    )
    try:
        logger.log(2500, {"time/sps": 900.0}, progress=2)
        task = logger.progress.tasks[0]
        assert (task.total, task.completed) == (11, 2)
        columns = " ".join(getattr(c, "text_format", "") for c in logger.progress.columns)
        assert "{task.total:,.0f} rounds" in columns and "env steps/s" in columns
    finally:
        logger.close()


# --- item 6: small things ---------------------------------------------------------------------


def test_version_and_dir() -> None:
    done = run_cli("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"mentor {mentor.__version__}"
    assert {"train", "resume", "load", "export", "evaluate"} <= set(dir(mentor))


def test_a_config_error_does_not_wait_for_torch() -> None:
    """Validation comes first: a bad key is reported without importing torch (3-4 s)."""
    code = textwrap.dedent(
        """
        import sys
        from mentor.cli import main
        sys.argv = ["mentor", "train", "ppo", "CartPole-v1", "--set", "method.learning_rat=1"]
        try:
            main()
        except SystemExit as exit:
            print(exit.code, "torch" in sys.modules)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.split() == ["2", "False"], done.stderr


def test_the_start_of_a_run_says_what_is_happening(tmp_path) -> None:
    done = run_cli(
        "train",
        "ppo",
        "CartPole-v1",
        "--output-dir",
        str(tmp_path),
        "--set",
        "stopping.total_steps=256",
        "--set",
        "evaluation.episodes=2",
        "--set",
        "logging.tensorboard=false",
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:3] == [
        "checking env CartPole-v1 (a short rollout)",
        f"run folder: {tmp_path / 'ppo-CartPole-v1'}",
        "training ppo on CartPole-v1",
    ]
    shutil.rmtree(tmp_path / "ppo-CartPole-v1")


def test_preflight_lets_async_restart_an_env_that_only_raises(tmp_path, capsys) -> None:
    """The 64-step pre-flight refused an env that raises early even with restartable async
    workers, with no opt-out (FAULT-14 before training)."""
    count = tmp_path / "failures"
    crashing = [
        "env.id=mentor.envs.faulty:CrashingEnv",
        f"env.kwargs={{crash_at_step: 10, times: 2, count_file: {count}}}",
        "env.num_envs=2",
    ]
    with pytest.raises(EnvError, match=r"breaks the Gymnasium API \(rollout: step 9 raised"):
        mentor.train(tiny(tmp_path, *crashing, "env.vectorization=sync"))
    count.unlink()
    # One worker: two would both read the count file before either writes (it is not locked).
    async_run = [*crashing, "env.vectorization=async", "env.num_envs=1", "name=a"]
    result = mentor.train(tiny(tmp_path, *async_run))
    assert "its async workers restart it" in capsys.readouterr().err
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert len(manifest["env_restarts"]) == 1  # the second failure, in training
    count.unlink()
    with pytest.raises(RuntimeError, match="CrashingEnv crashed"):  # in training: no preflight
        mentor.train(tiny(tmp_path, *crashing, "env.vectorization=sync", "env.preflight=false"))


def test_the_final_evaluation_reports_each_episode_to_its_progress_bar() -> None:
    from mentor.core.vec_env import VecEnv
    from mentor.evaluation.evaluate import run_episodes

    done: list[int] = []
    venv = VecEnv.make("CartPole-v1", {}, 3)
    try:
        run_episodes(
            lambda obs, _: np.zeros(len(obs), np.int64), venv, 7, 0, lambda: done.append(1)
        )
    finally:
        venv.close()
    assert len(done) == 7
