"""Behaviour cloning: it clones experts (CartPole, Pendulum) to their level, gives agents
PPO and SAC start from, cross-validates by episodes, stops early keeping the best weights,
resumes exactly, learns every action space, and refuses data that does not fit the env."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import mentor
from mentor.agent import policy_from
from mentor.data.dataset import Dataset, split
from mentor.data.load import save_dataset
from mentor.data.record import record
from mentor.errors import ConfigError, DatasetError
from mentor.experiment import build
from mentor.methods import supervised

pytestmark = pytest.mark.learning

QUIET = ["logging.progress=false", "logging.tensorboard=false"]
# Mean return of uniformly random actions (200 episodes each, measured here: 22.7 and -1256).
RANDOM_RETURN = {"CartPole-v1": 22.0, "Pendulum-v1": -1250.0}


# --- scripted experts (the runs import them as test_bc:NAME; tests/ is on sys.path) -----------


def expert(obs: np.ndarray) -> np.ndarray:
    """CartPole: push toward where the pole is falling (angle + 0.5 angular velocity); returns
    500 on every seed tried."""
    obs = np.asarray(obs)
    return (obs[:, 2] + 0.5 * obs[:, 3] > 0).astype(np.int64)


def multi_discrete_expert(obs: np.ndarray) -> np.ndarray:
    return np.stack([obs[:, :3].argmax(1), obs[:, 3:].argmax(1)], 1)


def multi_binary_expert(obs: np.ndarray) -> np.ndarray:
    return np.asarray(obs, dtype=np.int8)


def dict_expert(obs: dict) -> np.ndarray:
    return np.asarray(obs["target"], dtype=np.int64)


def image_expert(obs: np.ndarray) -> np.ndarray:
    return (np.asarray(obs).reshape(len(obs), -1).mean(1) > 100).astype(np.int64)


def continuous_expert(obs: np.ndarray) -> np.ndarray:
    return np.asarray(obs, dtype=np.float32)


# --- helpers and fixtures ----------------------------------------------------------------------


def normalized(returned: float, env_id: str, expert_return: float) -> float:
    """(return - random) / (expert - random): 0 is random, 1 the expert."""
    random = RANDOM_RETURN[env_id]
    return (returned - random) / (expert_return - random)


def bc_experiment(tmp_path: Path, data: Path, env_id: str = "CartPole-v1", *overrides: str):
    return build(
        method="bc",
        env_id=env_id,
        overrides=[
            f"data.path={data}", f"output_dir={tmp_path}", "validation.episodes=10",
            "evaluation.episodes=20", *QUIET, *overrides,
        ],
    )  # fmt: skip


# The learning runs of the tests below (benchmarks/seed_distributions.py runs them for many seeds).


def expert_demos(folder: Path) -> tuple[Dataset, Path]:
    """10 episodes of the scripted CartPole expert (5,000 transitions), in memory and on disk."""
    dataset = record(policy_from("test_bc:expert"), "CartPole-v1", {}, 10, seed=100)
    return dataset, save_dataset(dataset, folder / "cartpole-expert", env_id="CartPole-v1")


def clone_cartpole(tmp_path: Path, data: Path, seed: int) -> mentor.Result:
    """BC with the defaults on the 10 expert episodes."""
    return mentor.train(bc_experiment(tmp_path, data, "CartPole-v1", f"seed={seed}"))


def ppo_from(bc_run: mentor.Result, tmp_path: Path, seed: int) -> tuple[mentor.Result, ...]:
    """PPO's CartPole preset for 1024 steps, from the BC agent and from scratch."""
    common = [
        f"output_dir={tmp_path}", "validation.every_steps=256", "validation.episodes=10",
        "stopping.total_steps=1024", "stopping.target_return=null", "evaluation.episodes=0",
        f"seed={seed}", "validation.at_start=false", *QUIET,  # the first validation: at 256
    ]  # fmt: skip
    init = str(bc_run.run_dir / "final")
    ppo = mentor.train(
        build(method="ppo", env_id="CartPole-v1", overrides=[f"agent.init={init}", *common])
    )
    scratch = mentor.train(
        build(method="ppo", env_id="CartPole-v1", overrides=["name=scratch", *common])
    )
    return ppo, scratch


def clone_in_every_space(tmp_path: Path, env_id: str, expert_name: str, seed: int) -> float:
    """BC on 20 episodes of a scripted expert of a test env: its final evaluation's return."""
    dataset = record(policy_from(f"test_bc:{expert_name}"), env_id, {}, 20, seed=0)
    path = save_dataset(dataset, tmp_path / "data", env_id=env_id)
    result = mentor.train(bc_experiment(
        tmp_path, path, env_id, "method.max_epochs=40", "validation.episodes=4",
        "evaluation.episodes=4", f"seed={seed}",
    ))  # fmt: skip
    return result.evaluation.return_mean


def clone_on_the_command_line(tmp_path: Path, data: Path, seed: int) -> dict:
    """`mentor train bc CartPole-v1` on the expert's episodes: its evaluation.json."""
    out = subprocess.run(
        [sys.executable, "-m", "mentor", "train", "bc", "CartPole-v1", "--set",
         f"data.path={data}", "--set", "evaluation.episodes=5", "--set", "validation.episodes=5",
         "--seed", str(seed), "--output-dir", str(tmp_path), "--quiet"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return json.loads((tmp_path / "bc-CartPole-v1" / "evaluation.json").read_text())


@pytest.fixture(scope="module")
def demos(tmp_path_factory: pytest.TempPathFactory) -> tuple[Dataset, Path]:
    return expert_demos(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def bc_run(demos, tmp_path_factory: pytest.TempPathFactory) -> mentor.Result:
    return clone_cartpole(tmp_path_factory.mktemp("runs"), demos[1], seed=0)


# --- it learns ----------------------------------------------------------------------------------


def test_bc_clones_the_cartpole_expert_fast_into_a_normal_run(demos, bc_run) -> None:
    dataset, _ = demos
    expert_return = float(dataset.episode_returns().mean())
    assert len(dataset) == 5000 and expert_return == 500.0
    score = normalized(bc_run.evaluation.return_mean, "CartPole-v1", expert_return)
    # benchmarks/seed_distributions.py bc_cartpole, 2026-12-02, mentor at 6687122, seeds 0-39:
    # every seed scored 1.000 (20 episodes of 500); the margin is 0.05 (24 of return).
    assert score >= 0.95, (bc_run.evaluation.return_mean, bc_run.stop_reason)
    # Fast: early stopping ends it well within the 200 epochs (same seeds: 31 to 153 epochs, seed
    # 21 the most, median 84, 992 to 4896 gradient steps). Seconds are not asserted: a timed
    # test fails on a busy machine (these seeds took 1.1-8.6 s of training here, with the
    # machine's load); benchmarks/imitation.py measures the time (target: training < 5 s).
    assert bc_run.stop_reason.startswith("early stop"), bc_run.stop_reason

    run = bc_run.run_dir
    for part in ("final/model.safetensors", "checkpoints/best/meta.json", "evaluation.json",
                 "metrics.csv", "validation.csv", "experiment.yaml"):  # fmt: skip
        assert (run / part).exists(), part
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["stop_reason"] == bc_run.stop_reason
    assert manifest["stop_reason"].startswith(("early stop", "max_epochs"))
    assert manifest["dataset"]["episodes"] == 10 and manifest["dataset"]["validation_episodes"] == 2
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert {"train/loss", "train/val_loss", "train/accuracy", "train/val_accuracy"} <= set(rows[0])
    assert [int(r["train/epoch"]) for r in rows] == list(range(1, len(rows) + 1))
    # Steps are gradient steps: 4,000 training transitions in batches of 128 are 32 a epoch.
    assert [int(r["step"]) for r in rows[:2]] == [32, 64]
    # Last epoch's accuracy on the 2 held-out episodes, seeds 0-39: min 0.946 (seed 28; 0.947
    # seed 25, 0.952 seed 2), median 0.982, max 0.996; random actions are right half the time.
    assert float(rows[-1]["train/val_accuracy"]) > 0.9

    agent = mentor.load(run)  # a normal agent: acts on raw observations
    obs = dataset.observations[:500]
    # Agreement with the expert, seeds 0-39: min 0.984 (seed 11), median 0.995, max 1.000.
    assert np.mean(agent.act(obs) == expert(obs)) > 0.9
    assert agent.act(obs[0]) in (0, 1)
    from mentor.report.report import write_report

    report = write_report(run)
    assert (report / "learning_curve.png").is_file()
    assert "Final evaluation" in (report / "report.md").read_text()


def test_ppo_starts_from_the_bc_agent_at_its_level_and_trains(bc_run, tmp_path: Path) -> None:
    ppo, scratch = ppo_from(bc_run, tmp_path, seed=0)
    first = ppo.validations[0]["return_mean"]
    # benchmarks/seed_distributions.py bc_then_ppo, 2026-12-02, mentor at 6687122, seeds 0-19 (BC
    # and both PPO runs): first validation from BC min 499.0 (seed 15), median and max 500;
    # from scratch 9.2-112.6 (seed 10), median 39.6, so the gap is min 387 (seed 10), median 460.
    assert first >= 450, [v["return_mean"] for v in ppo.validations]
    assert first > scratch.validations[0]["return_mean"] + 200
    assert ppo.total_steps == 1024 and len(ppo.validations) == 4  # it trained on
    with open(ppo.run_dir / "metrics.csv") as f:
        losses = [float(r["train/loss_policy"]) for r in csv.DictReader(f)]
    assert len(losses) == 4 and all(np.isfinite(losses))


def pendulum_demos(folder: Path) -> tuple[float, Path]:
    """10 episodes of the scripted Pendulum expert (mentor.envs.experts:pendulum, which no
    learner produced: deterministic, nothing to train first) on disk, and their mean return."""
    expert = policy_from("mentor.envs.experts:pendulum")
    dataset = record(expert, "Pendulum-v1", {}, 10, seed=100)
    path = save_dataset(dataset, folder / "scripted", env_id="Pendulum-v1")
    return float(dataset.episode_returns().mean()), path


@pytest.fixture(scope="module")
def pendulum(tmp_path_factory: pytest.TempPathFactory) -> tuple[float, Path]:
    return pendulum_demos(tmp_path_factory.mktemp("pendulum"))


# The Pendulum-v1 preset (presets/bc.yaml: observations normalized, every episode trains, 200
# epochs, the model chosen on the env every 512 gradient steps) on the fixture's data with this
# test's settings, over BC seeds 0-19 (issue 11): score min 0.986, median 1.012 (policy_of ppo),
# min 0.996, median 1.011 (sac). The former settings (2 episodes held out, early stopping,
# patience 10) on the same data, seeds 0-9: min 0.40, median 0.95 (ppo); min -0.12, median 1.01
# (sac). Scores pass 1 as the expert's return is its 10 recorded episodes' mean (-175).
# Re-measured after tanh's one-kernel rule (benchmarks/seed_distributions.py bc_pendulum_ppo
# bc_pendulum_sac --seeds 10): ppo min 0.986, median 1.009; sac min 0.996, median 1.009.
PENDULUM_THRESHOLD = 0.9
# SAC's first validation (5 episodes) from the sac result, SAC seeds 0-19: min 0.615, median
# 1.005; from scratch, seeds 0-2: 0.27, 0.06, -0.05. It falls below BC's own level on some seeds
# because SAC's 100 warm-up steps of uniform random actions update the loaded observation
# normalizer (with the normalizer frozen, seed 0 validates at BC's -146 instead of -525).
SAC_START_THRESHOLD = 0.5


def clone_pendulum(folder: Path, data: Path, policy_of: str, seed: int = 0) -> mentor.Result:
    """BC with the Pendulum-v1 preset; SAC's preset network for policy_of sac, so that SAC can
    start from the result (the weights must fit and mean the same: a tanh network's weights do
    not act alike in a ReLU one)."""
    network = ["agent.network.activation=relu", "agent.network.ortho_init=false"]
    return mentor.train(bc_experiment(
        folder, data, "Pendulum-v1", f"method.policy_of={policy_of}", f"seed={seed}",
        *(network if policy_of == "sac" else []),
    ))  # fmt: skip


@pytest.mark.parametrize("policy_of", ["ppo", "sac"])
def test_pendulum_bc_clones_the_scripted_expert(pendulum, policy_of: str, tmp_path: Path) -> None:
    expert_return, path = pendulum
    assert expert_return > -200
    result = clone_pendulum(tmp_path, path, policy_of)
    score = normalized(result.evaluation.return_mean, "Pendulum-v1", expert_return)
    assert score >= PENDULUM_THRESHOLD, (result.evaluation.return_mean, expert_return)
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["dataset"]["train_episodes"] == 10  # the preset holds no episode out
    assert result.stop_reason.startswith("max_epochs"), result.stop_reason
    assert len(result.validations) == 7  # steps 512, ..., 3072 and the end (3200)
    with open(result.run_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert "train/val_loss" not in rows[0]  # no validation episodes: no validation loss
    assert float(rows[-1]["train/mse"]) < float(rows[0]["train/mse"]) / 2  # 1/4.6 at most
    if policy_of == "sac":  # SAC starts from BC's actor: its first validation is at BC's level
        sac = mentor.train(build(method="sac", env_id="Pendulum-v1", overrides=[
            f"output_dir={tmp_path}", f"agent.init={result.run_dir / 'final'}",
            "env.normalize_obs=true", "method.learning_starts=100", "stopping.total_steps=200",
            "validation.every_steps=100", "validation.episodes=5", "evaluation.episodes=0",
            "stopping.target_return=null", *QUIET,
        ]))  # fmt: skip
        first = sac.validations[0]["return_mean"]
        assert normalized(first, "Pendulum-v1", expert_return) >= SAC_START_THRESHOLD, first


@pytest.mark.parametrize(
    ("env_id", "expert_name"),
    [
        ("mentor.envs.testing:MultiDiscreteEnv", "multi_discrete_expert"),
        ("mentor.envs.testing:MultiBinaryEnv", "multi_binary_expert"),
        ("mentor.envs.testing:DictObsEnv", "dict_expert"),
        ("mentor.envs.testing:ImageEnv", "image_expert"),
        ("mentor.envs.testing:ContinuousEnv", "continuous_expert"),
    ],
)
def test_bc_learns_every_action_and_observation_kind(env_id, expert_name, tmp_path) -> None:
    returned = clone_in_every_space(tmp_path, env_id, expert_name, seed=0)
    # benchmarks/seed_distributions.py bc_every_space, 2026-12-02, mentor at 6687122, seeds 0-19:
    # every discrete env returned 16.0 on every seed; ContinuousEnv min 15.78 (seed 17), median
    # 15.81, max 15.84. Threshold 13.6: margin 2.2.
    assert returned >= 0.85 * 16, (env_id, returned)


# --- model selection ----------------------------------------------------------------------------


def test_kfold_partitions_the_episodes_and_reports_each_fold(demos, tmp_path, capsys) -> None:
    dataset, path = demos
    result = mentor.train(bc_experiment(
        tmp_path, path, "CartPole-v1", "data.folds=3", "method.max_epochs=15",
        "validation.episodes=3",
    ))  # fmt: skip
    report = json.loads((result.run_dir / "cross_validation.json").read_text())
    folds = report["per_fold"]
    assert report["folds"] == 3 and len(folds) == 3
    held_out = [set(f["held_out_episodes"]) for f in folds]
    assert sorted(e for part in held_out for e in part) == list(range(10))  # a partition
    for fold in folds:
        lengths = dataset.episode_lengths()
        assert fold["validation_samples"] == lengths[fold["held_out_episodes"]].sum()
        assert fold["train_samples"] + fold["validation_samples"] == len(dataset)
        assert fold["epochs"] <= 15 and np.isfinite(fold["env_return_mean"])
    losses = [f["val_loss"] for f in folds]
    assert report["mean"]["val_loss"] == pytest.approx(np.mean(losses))
    assert report["std"]["val_loss"] == pytest.approx(np.std(losses)) and np.std(losses) > 0
    assert {"val_accuracy", "env_return_mean"} <= set(report["mean"])
    assert "3-fold cross-validation" in capsys.readouterr().out
    assert (result.run_dir / "final" / "meta.json").is_file()  # then the usual model


def test_early_stopping_on_a_tiny_dataset_keeps_the_best_weights(demos, tmp_path) -> None:
    dataset, path = demos
    result = mentor.train(bc_experiment(tmp_path, path, "CartPole-v1", "data.max_episodes=2",
                                        "method.patience=3", "method.max_epochs=1000",
                                        "method.batch_size=32"))  # fmt: skip
    assert result.stop_reason.startswith("early stop"), result.stop_reason
    with open(result.run_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) < 1000
    val = [float(r["train/val_loss"]) for r in rows]
    best = int(np.argmin(val))
    assert len(rows) - 1 - best == 3  # three epochs without a lower validation loss
    # final/ holds the weights of the best epoch: recompute its validation loss.
    agent = mentor.load(result.run_dir / "final")
    two = dataset.episodes([0, 1])
    _, valid_eps = split(2, 0.2, np.random.default_rng(0))
    learner = supervised.Learner(agent.policy, agent.action_space)
    data = supervised.samples(two, learner, torch.device("cpu"))
    valid = data.rows(supervised.episode_rows(two, valid_eps))
    loss, _ = supervised.evaluate_loss(learner, valid, agent.experiment.method)
    assert loss == pytest.approx(min(val), rel=1e-4)


def test_resume_after_a_stop_ends_bitwise_equal(demos, tmp_path: Path) -> None:
    """A run resumed from a mid-training checkpoint ends with the weights of the unbroken run."""
    _, path = demos
    whole = mentor.train(bc_experiment(
        tmp_path, path, "CartPole-v1", "name=whole", "checkpoints.every_steps=64",
        "checkpoints.keep_last=100", "method.max_epochs=12", "validation.every_steps=96",
        "validation.episodes=2", "evaluation.episodes=0",
    ))  # fmt: skip
    broken = tmp_path / "broken"
    shutil.copytree(whole.run_dir, broken)
    shutil.rmtree(broken / "final")
    for folder in (broken / "checkpoints").glob("step_*"):
        if int(folder.name.removeprefix("step_")) > 192:  # as if killed after epoch 6
            shutil.rmtree(folder)
    resumed = mentor.resume(broken)
    assert resumed.stop_reason == whole.stop_reason
    a = load_file(str(whole.run_dir / "final" / "model.safetensors"))
    b = load_file(str(broken / "final" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with open(whole.run_dir / "metrics.csv") as f, open(broken / "metrics.csv") as g:
        losses = [[r["train/loss"] for r in csv.DictReader(x)] for x in (f, g)]
    assert losses[0] == losses[1]


# --- bad input ----------------------------------------------------------------------------------


def test_data_that_does_not_fit_the_env_is_refused_naming_both_shapes(demos, tmp_path) -> None:
    _, path = demos
    with pytest.raises(DatasetError, match=r"\(4,\).*\(6,\)"):
        mentor.train(bc_experiment(tmp_path, path, "Acrobot-v1"))


def test_bad_configurations_are_refused(demos, tmp_path: Path) -> None:
    _, path = demos
    with pytest.raises(ConfigError, match="mse"):
        mentor.train(bc_experiment(tmp_path, path, "CartPole-v1", "method.loss=mse"))
    with pytest.raises(ConfigError, match=r"data\.path"):  # before a run folder is made
        mentor.train(
            build(method="bc", env_id="CartPole-v1", overrides=[f"output_dir={tmp_path / 'x'}"])
        )
    assert not (tmp_path / "x").exists()
    with pytest.raises(ConfigError, match=r"method\.patience 10 .*validation_fraction 0"):
        mentor.train(bc_experiment(tmp_path, path, "CartPole-v1", "data.validation_fraction=0"))
    with pytest.raises(ConfigError, match="policy_of sac"):
        mentor.train(bc_experiment(tmp_path, path, "mentor.envs.testing:MultiBinaryEnv",
                                   "method.policy_of=sac"))  # fmt: skip


def test_cli_trains_bc_end_to_end(demos, tmp_path: Path) -> None:
    _, path = demos
    evaluation = clone_on_the_command_line(tmp_path, path, seed=0)
    # benchmarks/seed_distributions.py bc_cli, 2026-12-02, mentor at 6687122: seeds 0-9 all 500.
    assert evaluation["return_mean"] > 400
