"""mentor tune (issue 13): the search space, scores, Optuna's samplers and pruners, storage, faults.

Studies here are tiny: CartPole, PPO, 1,024-2,048 steps a run, 2 seeds a trial.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml

import mentor
from mentor.errors import ConfigError
from mentor.experiment import build
from mentor.runs.stopping import Progress, Validation
from mentor.tune.space import TuneConfig, check_space, split_tune, suggest
from mentor.tune.study import (
    PruneOnValidation,
    Study,
    curve_auc,
    default_storage,
    load_study_file,
    open_storage,
    tune,
)

BASE = {
    "method": {"name": "ppo", "num_steps": 32, "num_minibatches": 2},
    "env": {"id": "CartPole-v1", "num_envs": 4},
    "stopping": {"total_steps": 1024},
    "validation": {"every_steps": 256, "episodes": 4, "num_envs": 2},
    "evaluation": {"episodes": 4},
    "logging": {"tensorboard": False},
}
SPACE = {
    "method.learning_rate": {"log_uniform": [1.0e-4, 1.0e-2]},
    "agent.network.hidden_sizes": {"depth": [1, 2], "width": [16, 32]},
}


def study_file(tmp_path: Path, space=None, **tune_fields) -> Path:
    tune_section = {
        "seeds": [0, 1], "trials": 3, "top_k": 1, "recheck_seeds": [7, 8],
        "startup_trials": 2, "space": SPACE if space is None else space, **tune_fields,
    }  # fmt: skip
    path = tmp_path / "tune-tiny.yaml"
    path.write_text(yaml.safe_dump({**BASE, "tune": tune_section}))
    return path


def quiet_tune(path: Path, tmp_path: Path, **kwargs):
    return tune(path, folder=tmp_path / "t", name="t", say=lambda line: None, **kwargs)


# --- the space ---------------------------------------------------------------------------------


def test_the_space_maps_to_optunas_distributions_and_conditions_hold() -> None:
    space = {
        "method.learning_rate": {"log_uniform": [1.0e-4, 1.0e-2]},
        "method.gae_lambda": {"uniform": [0.8, 1.0], "step": 0.05},
        "method.num_epochs": {"int": [2, 10], "step": 2},
        "env.num_envs": {"int": [2, 16], "log": True},
        "agent.network.activation": {"choice": ["tanh", "relu"]},
        "agent.network.hidden_sizes": {"depth": [1, 3], "width": [32, 64]},
        "method.clip_coef": {"choice": [0.1, 0.2], "when": {"agent.network.activation": "relu"}},
        "method.target_kl": {"choice": [0.01, 0.02], "when": {"agent.network.shared": True}},
    }
    base, config = split_tune({**BASE, "tune": {"space": space}}, "test")
    experiment = check_space(base, config, "test")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen_clip = set()
    for _ in range(12):
        trial = study.ask()
        values = suggest(trial, config, experiment)
        d = trial.distributions
        assert isinstance(d["method.learning_rate"], optuna.distributions.FloatDistribution)
        assert d["method.learning_rate"].log and d["method.learning_rate"].low == 1e-4
        assert d["method.gae_lambda"].step == 0.05
        assert d["method.num_epochs"].step == 2 and not d["method.num_epochs"].log
        assert d["env.num_envs"].log
        assert d["agent.network.activation"].choices == ("tanh", "relu")
        assert d["agent.network.hidden_sizes.depth"].high == 3
        depth, width = (
            trial.params["agent.network.hidden_sizes.depth"],
            trial.params["agent.network.hidden_sizes.width"],
        )
        assert values["agent.network.hidden_sizes"] == [width] * depth
        # Conditional: clip_coef only where relu was drawn; target_kl never (shared is false).
        assert ("method.clip_coef" in values) == (values["agent.network.activation"] == "relu")
        assert "method.target_kl" not in values
        seen_clip.add("method.clip_coef" in values)
        study.tell(trial, 0.0)
    assert seen_clip == {True, False}


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({}, "tune.space is empty"),
        ({"method.learning_rate": {"uniform": [0.1, 0.01]}}, "low 0.1 > high 0.01"),
        (
            {"method.learning_rate": {"log_uniform": [0.0, 0.01]}},
            "log_uniform: the range must be above 0",
        ),
        ({"agent.network.activation": {"choice": []}}, "choice: give at least one value"),
        ({"method.learning_rate": {"uniform": [0.1, 0.2], "choice": [1]}}, "exactly one of"),
        ({"method.lerning_rate": {"log_uniform": [1e-4, 1e-3]}}, "did you mean"),
        ({"method.gamma": {"uniform": [0.9, 1.5]}}, r"tune.space.method.gamma = 1.5"),
    ],
)
def test_a_space_that_cannot_be_tried_fails_before_trial_0(tmp_path, space, message) -> None:
    path = study_file(tmp_path, space=space)
    with pytest.raises(ConfigError, match=message):
        load_study_file(path)


def test_bad_spaces_from_the_cli_are_one_line_and_exit_2(tmp_path) -> None:
    path = study_file(tmp_path, space={"method.lerning_rate": {"log_uniform": [1e-4, 1e-3]}})
    done = subprocess.run(
        [sys.executable, "-m", "mentor.cli", "tune", str(path), "--folder", str(tmp_path / "t")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "learning_rate" in lines[0] and "Traceback" not in done.stderr
    assert not (tmp_path / "t").exists()  # nothing was made


def test_a_storage_that_cannot_be_opened_is_named(tmp_path) -> None:
    path = study_file(tmp_path)
    with pytest.raises(ConfigError, match=r"--storage 'sqlite:////nonexistent/dir/x.db' cannot"):
        quiet_tune(path, tmp_path, storage="sqlite:////nonexistent/dir/x.db")


def test_recheck_seeds_must_be_fresh() -> None:
    with pytest.raises(ValueError, match=r"recheck_seeds must be fresh: \[1\]"):
        TuneConfig(space={}, seeds=[0, 1], recheck_seeds=[1, 5])


def test_a_tune_file_trains_as_its_base_experiment(tmp_path) -> None:
    """mentor train reads a tune file too: the tune section is left out of the run."""
    experiment = build(file=study_file(tmp_path))
    assert experiment.method.num_steps == 32


# --- scores ------------------------------------------------------------------------------------


def test_the_area_under_the_validation_curve_holds_each_value_to_the_next() -> None:
    rows = [{"step": 100, "return_mean": 10.0}, {"step": 200, "return_mean": 30.0}]
    # 10 from 100 to 200, then 30 held to the budget 400: (10 * 100 + 30 * 200) / 300
    assert curve_auc(rows, 400) == pytest.approx(7000 / 300)
    assert curve_auc(rows, 200) == pytest.approx(10.0)  # the last validation is the budget's end
    assert curve_auc(rows[:1], 100) == 10.0
    assert curve_auc([], 400) != curve_auc([], 400)  # NaN: no validation ran


def test_a_pruner_prunes_on_a_synthetic_validation_stream() -> None:
    """Optuna's median pruner, fed through the stop rule: a trial below the median of the
    earlier ones at the same step is stopped, with the reason as its stop reason."""
    study = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=2)
    )

    def feed(values: list[float]) -> str | None:
        trial = study.ask()
        rule = PruneOnValidation(trial, index=0, budget=1000)
        history: list[float] = []
        reason = None
        for step, value in zip(range(100, 1000, 100), values, strict=False):
            history.append(value)
            summary = type("S", (), {"return_mean": value})()
            validation = Validation(step, summary, max(history), tuple(history))
            reason = rule(Progress(step, 1.0, 1.0, validation))
            if reason:
                break
        study.tell(trial, None if reason else sum(history) / len(history),
                   state=optuna.trial.TrialState.PRUNED if reason else None)  # fmt: skip
        return reason

    assert feed([10.0, 20.0, 30.0]) is None
    assert feed([12.0, 22.0, 32.0]) is None
    assert feed([11.0, 21.0, 31.0]) is None  # above the median of the first two at each step
    reason = feed([1.0, 2.0, 3.0])
    assert reason is not None and reason.startswith("pruned by Optuna at step 100")


# --- studies -----------------------------------------------------------------------------------


def test_a_tiny_study_runs_rechecks_and_its_best_yaml_trains(tmp_path) -> None:
    path = study_file(tmp_path, pruner="none")
    result = quiet_tune(path, tmp_path)
    study = optuna.load_study(study_name="t", storage=result.storage)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 3
    for trial in complete:
        assert len(trial.user_attrs["scores"]) == 2  # one per seed
        for seed in (0, 1):
            assert (tmp_path / "t" / "trials" / f"{trial.number:04d}" / f"seed-{seed}").is_dir()
    best = json.loads((tmp_path / "t" / "best.json").read_text())
    assert best["seeds"] == [7, 8] and best["trial"] == study.best_trial.number
    assert best["ci"][0] <= best["iqm"] <= best["ci"][1]
    rows = (tmp_path / "t" / "trials.csv").read_text().splitlines()
    assert len(rows) == 4 and rows[0].startswith("number,state,score")
    trained = mentor.train(build(file=result.best_yaml, overrides=[f"output_dir={tmp_path}/r"]))
    assert trained.stop_reason.startswith("budget")
    assert trained.agent.policy is not None


def test_a_trials_configuration_rerun_with_its_seeds_gives_bitwise_the_same_scores(
    tmp_path,
) -> None:
    path = study_file(tmp_path, pruner="none", trials=1)
    result = quiet_tune(path, tmp_path, recheck=False)
    trial = optuna.load_study(study_name="t", storage=result.storage).trials[0]
    base, config, experiment = load_study_file(path)
    runner = Study(base, config, experiment, tmp_path / "again", str(path), lambda line: None)
    scores, *_ = runner.train_seeds(trial.user_attrs["values"], config.seeds, tmp_path / "again")
    assert scores == trial.user_attrs["scores"]  # exact float equality


def test_a_failing_trial_is_recorded_with_its_reason_and_the_study_goes_on(tmp_path) -> None:
    """FAULT-37: 16 minibatches do not divide a rollout of 4 envs x 30 steps (a ConfigError
    when the trial's experiment is made, though each value alone is valid); the other
    combinations train. The random sampler's seed 0 draws the bad one among 6 trials."""
    space = {"method.num_minibatches": {"choice": [3, 2]}}
    path = study_file(tmp_path, space=space, trials=4, pruner="none", sampler="random")
    with pytest.raises(ConfigError):  # the bad value is refused before trial 0...
        load_study_file(path)
    # ... so make it reachable only at run time: a combination (num_steps x num_minibatches).
    space = {
        "method.num_minibatches": {"choice": [2, 16]},
        "method.num_steps": {"choice": [32, 30]},
    }
    path = study_file(tmp_path, space=space, trials=6, pruner="none", sampler="random")
    quiet_tune(path, tmp_path, recheck=False)
    study = optuna.load_study(study_name="t", storage=f"sqlite:///{tmp_path / 't' / 'study.db'}")
    failed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert failed and complete and len(study.trials) == 6
    for trial in failed:
        bad = (trial.params["method.num_steps"], trial.params["method.num_minibatches"])
        assert bad == (30, 16)
        assert "does not split into method.num_minibatches = 16" in trial.user_attrs["error"]


def test_a_study_made_with_another_space_is_refused_naming_the_way_out(tmp_path) -> None:
    path = study_file(tmp_path, trials=1, pruner="none")
    quiet_tune(path, tmp_path, recheck=False)
    other = study_file(tmp_path, space={"method.learning_rate": {"log_uniform": [1e-3, 1e-2]}})
    with pytest.raises(ConfigError, match=r"another experiment, search space.*--name NEW"):
        quiet_tune(other, tmp_path, recheck=False)


def _trials(db: Path) -> list[tuple[int, str]]:
    """The trials' numbers and states, read from the database as another process writes it."""
    try:
        with sqlite3.connect(db) as connection:
            query = "SELECT number, state FROM trials ORDER BY number"
            return connection.execute(query).fetchall()
    except sqlite3.OperationalError:  # the tables are not made yet
        return []


def _drew(db: Path, number: int) -> bool:
    """Whether trial ``number`` has drawn its values (a trial killed before that is retried with
    new ones: the test below kills one after)."""
    query = ("SELECT COUNT(*) FROM trial_params JOIN trials USING (trial_id) "
             "WHERE trials.number = ?")  # fmt: skip
    try:
        with sqlite3.connect(db) as connection:
            return connection.execute(query, (number,)).fetchone()[0] > 0
    except sqlite3.OperationalError:
        return False


def test_fault_18_a_study_killed_mid_trial_resumes_with_its_trials_intact(tmp_path) -> None:
    """SIGKILL during trial 1, after it drew its values: trial 0 stays complete; the killed
    trial stops beating, is failed and re-queued with its values when the study resumes, which
    finishes all trials."""
    space = {"method.learning_rate": {"log_uniform": [1.0e-4, 1.0e-2]}}
    path = study_file(tmp_path, trials=3, pruner="none", heartbeat_seconds=1, space=space)
    data = yaml.safe_load(path.read_text())
    data["stopping"]["total_steps"] = 4096  # trials long enough to be killed in
    path.write_text(yaml.safe_dump(data))
    command = [sys.executable, "-m", "mentor.cli", "tune", str(path), "--folder",
               str(tmp_path / "t"), "--name", "t", "--no-recheck"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    db = tmp_path / "t" / "study.db"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        time.sleep(0.5)
        rows = _trials(db) if db.exists() else []
        if any(number == 1 and state == "RUNNING" for number, state in rows) and _drew(db, 1):
            break
    else:
        process.kill()
        pytest.fail(f"trial 1 never ran: {process.stderr.read().decode()[-2000:]}")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = dict(_trials(db))
    assert before[0] == "COMPLETE" and before[1] == "RUNNING"
    time.sleep(4)  # three missed heartbeats
    quiet_tune(path, tmp_path, recheck=False)
    study = optuna.load_study(study_name="t", storage=f"sqlite:///{db}")
    states = {t.number: t.state.name for t in study.trials}
    assert states[0] == "COMPLETE" and states[1] == "FAIL"
    retried = [t for t in study.trials if t.system_attrs.get("retry_history") == [1]]
    assert len(retried) == 1 and retried[0].state.name == "COMPLETE"
    assert retried[0].params == study.trials[1].params  # re-queued with its values
    assert sum(s == "COMPLETE" for s in states.values()) == 3


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_fault_18_a_trial_killed_before_its_first_heartbeat_is_retried(tmp_path) -> None:
    """A process killed between creating trial 0 and its first heartbeat leaves a RUNNING trial
    that never beat (Optuna's stale check skips those: it stayed RUNNING forever). Within the
    grace period it is left alone (its process may be about to beat); after it, the resumed
    study fails it and re-queues it with its values."""
    space = {"method.learning_rate": {"log_uniform": [1.0e-4, 1.0e-2]}}
    path = study_file(tmp_path, trials=2, pruner="none", heartbeat_seconds=1, space=space)
    storage = open_storage(default_storage(tmp_path / "t"), heartbeat_seconds=1)
    study = optuna.create_study(storage=storage, study_name="t", direction="maximize")
    dead = study.ask()  # no heartbeat thread: as if its process died right here
    dead.suggest_float("method.learning_rate", 1.0e-4, 1.0e-2, log=True)
    optuna.storages.fail_stale_trials(study)
    assert study.trials[0].state.name == "RUNNING"  # within the grace period (3 s)
    time.sleep(3.5)
    quiet_tune(path, tmp_path, recheck=False)
    study = optuna.load_study(study_name="t", storage=storage)
    assert study.trials[0].state.name == "FAIL"
    retried = [t for t in study.trials if t.system_attrs.get("retry_history") == [0]]
    assert len(retried) == 1 and retried[0].state.name == "COMPLETE"
    assert retried[0].params == study.trials[0].params
    assert [t.state.name for t in study.trials].count("COMPLETE") == 2


def test_two_processes_share_one_sqlite_study_without_corrupting_it(tmp_path) -> None:
    path = study_file(tmp_path, trials=6, pruner="none", sampler="random")
    quiet_tune(path, tmp_path, trials=1, recheck=False)  # the study and its WAL journal exist
    command = [sys.executable, "-m", "mentor.cli", "tune", str(path), "--folder",
               str(tmp_path / "t"), "--name", "t", "--no-recheck"]  # fmt: skip
    processes = [subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for _ in range(2)]  # fmt: skip
    for process in processes:
        assert process.wait(timeout=600) == 0, process.stderr.read().decode()[-2000:]
    db = tmp_path / "t" / "study.db"
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    states = [state for _, state in _trials(db)]
    assert states.count("COMPLETE") >= 6 and "RUNNING" not in states


def test_trials_run_in_parallel_as_ray_tasks_on_one_study(tmp_path) -> None:
    """mentor tune --workers 2: two Ray tasks share the SQLite study (Optuna's storage
    coordinates them); all trials finish, each task ran some, the database is intact."""
    pytest.importorskip("ray")
    import ray

    path = study_file(tmp_path, trials=4, pruner="none", sampler="random")
    lines: list[str] = []
    try:
        tune(path, folder=tmp_path / "t", name="t", workers=2, recheck=False, say=lines.append)
    finally:
        ray.shutdown()
    counts = next(line for line in lines if line.startswith("the Ray tasks ran"))
    ran = [int(n) for n in counts.split("(")[1].rstrip(")").split(", ")]
    assert len(ran) == 2 and all(n > 0 for n in ran), counts
    db = tmp_path / "t" / "study.db"
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    states = [state for _, state in _trials(db)]
    assert states.count("COMPLETE") >= 4 and "RUNNING" not in states


def test_a_cluster_cannot_share_a_sqlite_file(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"SQLite file .* give --storage a database URL"):
        quiet_tune(study_file(tmp_path), tmp_path, workers=2, address="127.0.0.1:6379")
