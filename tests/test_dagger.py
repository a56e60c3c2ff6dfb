"""DAgger: it reaches the expert on CartPole, its dataset grows by exactly the states it visits,
each labelled by the expert, it mixes expert and learner as beta says, starts from
demonstrations when given, resumes exactly, and refuses an expert that leaves the action space."""

from __future__ import annotations

import csv
import itertools
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from gymnasium import spaces
from safetensors.torch import load_file

import mentor
from mentor.agent import policy_from
from mentor.data.load import save_dataset
from mentor.data.record import record
from mentor.errors import ConfigError, DatasetError
from mentor.experiment import build
from mentor.methods import dagger

pytestmark = pytest.mark.learning

QUIET = ["logging.progress=false", "logging.tensorboard=false"]
RANDOM_CARTPOLE = 22.0  # mean return of uniformly random actions (measured: 22.7 over 200)


def expert(obs: np.ndarray) -> np.ndarray:
    """CartPole: push toward where the pole is falling; returns 500 on every seed tried."""
    obs = np.asarray(obs)
    return (obs[:, 2] + 0.5 * obs[:, 3] > 0).astype(np.int64)


def pushes_three(obs: np.ndarray) -> np.ndarray:
    """An expert that answers action 3, which CartPole's Discrete(2) does not have."""
    return np.full(len(obs), 3, dtype=np.int64)


def dagger_experiment(tmp_path: Path, *overrides: str):
    return build(
        method="dagger",
        env_id="CartPole-v1",
        overrides=[
            "method.expert=test_dagger:expert", "method.rounds=3",
            "method.episodes_per_round=2", "method.max_epochs=30", f"output_dir={tmp_path}",
            "validation.episodes=10", "evaluation.episodes=20", "stopping.target_return=null",
            *QUIET, *overrides,
        ],
    )  # fmt: skip


def metric_rows(run_dir: Path) -> list[dict[str, float]]:
    with open(run_dir / "metrics.csv") as f:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def dagger_run(tmp_path_factory: pytest.TempPathFactory) -> mentor.Result:
    return mentor.train(dagger_experiment(tmp_path_factory.mktemp("runs")))


def test_dagger_reaches_the_expert_on_cartpole(dagger_run) -> None:
    score = (dagger_run.evaluation.return_mean - RANDOM_CARTPOLE) / (500.0 - RANDOM_CARTPOLE)
    # benchmarks/seed_distributions.py dagger_rounds, 2026-12-02, mentor at 6687122, seeds 0-39:
    # 39 seeds scored 1.000 and seed 11 0.934 (its best checkpoint validated at 500 on 10
    # episodes, then returned 468.5 on the evaluation's 20): margin 0.034. Round 0's learner (BC
    # on the 2 expert episodes, where DAgger starts) validated at 46-420 (median 104), a score of
    # at most 0.83: a DAgger whose rounds taught nothing fails on every seed measured.
    assert score >= 0.9, dagger_run.evaluation.return_mean
    assert dagger_run.stop_reason == "rounds: completed 3 DAgger rounds"
    assert len(dagger_run.validations) == 4  # every round's learner, round 0 included
    assert (dagger_run.run_dir / "checkpoints" / "best").is_dir()


def target_run(tmp_path: Path, seed: int, *overrides: str) -> mentor.Result:
    """The run of the test below (benchmarks/seed_distributions.py runs it for many seeds)."""
    options = ["stopping.target_return=env", "method.rounds=5", f"seed={seed}", *overrides]
    return mentor.train(dagger_experiment(tmp_path, *options))


def test_the_target_stops_dagger_between_rounds(tmp_path) -> None:
    """Issue 10: DAgger ran all its rounds after a round's learner had reached the target. With
    its preset's target (the env's threshold, 475) it stops after the first round whose learner
    validates there, before the last of its five rounds.

    benchmarks/seed_distributions.py dagger_target --set method.rounds=5, 2026-12-02, mentor at
    6687122, seeds 0-39: the learner of round 1 reached 475 on 28 seeds, of round 2 on 11, of
    round 3 on seed 6: every run stopped two rounds or more before the last. With 3 rounds, as
    before, seed 27 reached 475 only at the last round, where stopping is no test."""
    result = target_run(tmp_path, seed=0)
    assert result.stop_reason.startswith("target: validation return")
    rounds = [row["dagger/round"] for row in metric_rows(result.run_dir)]
    assert len(rounds) < 6 and len(result.validations) == len(rounds)
    assert [v["return_mean"] >= 475 for v in result.validations] == [False] * (len(rounds) - 1) + [
        True
    ]
    preset = build(method="dagger", env_id="CartPole-v1", overrides=["method.expert=x:y"])
    assert preset.stopping.target_return == "env"


def test_the_dataset_grows_by_the_states_visited_each_round(dagger_run) -> None:
    rows = metric_rows(dagger_run.run_dir)
    assert [r["dagger/round"] for r in rows] == [0, 1, 2, 3]
    initial = rows[0]["dagger/dataset_size"]
    assert initial == rows[0]["step"] == 2 * rows[0]["rollout/ep_length_mean"]  # expert episodes
    for i, row in enumerate(rows[1:], start=1):
        visited = 2 * row["rollout/ep_length_mean"]  # two episodes of the mixture policy
        assert row["dagger/new_samples"] == visited
        assert row["dagger/dataset_size"] == initial + sum(
            r["dagger/new_samples"] for r in rows[1 : i + 1]
        )
        assert row["step"] - rows[i - 1]["step"] == visited  # steps are env steps
    assert [r["dagger/beta"] for r in rows] == pytest.approx([1.0, 1.0, 0.1, 0.01])
    # beta 0.1 at round 2; seeds 0-39 (as above): the expert's share 0.058-0.129 (seed 21).
    assert rows[2]["dagger/expert_action_fraction"] < 0.3
    # The checkpoint holds the aggregated dataset, labelled by the expert everywhere.
    data = load_file(str(dagger_run.run_dir / "final" / "dataset.safetensors"))
    assert len(data["actions"]) == rows[-1]["dagger/dataset_size"]
    assert np.array_equal(data["actions"].numpy(), expert(data["observations"].numpy()))


def test_dagger_starts_from_demonstrations_when_given(tmp_path: Path) -> None:
    demos = record(policy_from("test_dagger:expert"), "CartPole-v1", {}, 3, seed=7)
    path = save_dataset(demos, tmp_path / "demos", env_id="CartPole-v1")
    result = mentor.train(dagger_experiment(tmp_path, f"data.path={path}", "method.rounds=1",
                                            "method.episodes_per_round=1"))  # fmt: skip
    rows = metric_rows(result.run_dir)
    assert rows[0]["step"] == 0 and rows[0]["dagger/dataset_size"] == len(demos)
    assert rows[1]["dagger/dataset_size"] == len(demos) + rows[1]["step"]


def test_mixture_acts_with_the_expert_with_probability_beta() -> None:
    class Learner:
        def act(self, obs: np.ndarray) -> np.ndarray:
            return np.zeros(len(obs), dtype=np.int64)

    calls = []

    def ones(obs: np.ndarray) -> np.ndarray:
        calls.append(len(obs))
        return np.ones(len(obs), dtype=np.int64)

    space = spaces.Discrete(2)
    obs = np.zeros((1000, 4), np.float32)
    never = dagger.Mixture(ones, Learner(), 0.0, np.random.default_rng(0), space)
    assert never(obs).sum() == 0 and calls == []  # beta 0: the expert is not even asked
    always = dagger.Mixture(ones, Learner(), 1.0, np.random.default_rng(0), space)
    assert always(obs).sum() == 1000
    some = dagger.Mixture(ones, Learner(), 0.3, np.random.default_rng(0), space)
    share = some(obs).mean()
    assert 0.25 < share < 0.35
    assert some.expert_steps == round(share * 1000) and some.steps == 1000


def test_beta_follows_its_schedule_over_the_rounds() -> None:
    experiment = build(method="dagger", env_id="CartPole-v1",
                       overrides=["method.expert=x:y", "method.rounds=5"])  # fmt: skip
    cfg = experiment.method
    betas = [dagger.beta_at(cfg, i) for i in range(1, 6)]
    assert betas[0] == 1.0 and betas[-1] == pytest.approx(0.01)
    assert all(a > b for a, b in itertools.pairwise(betas))
    constant = build(method="dagger", env_id="CartPole-v1",
                     overrides=["method.expert=x:y", "method.beta=0.5"]).method  # fmt: skip
    assert dagger.beta_at(constant, 3) == 0.5
    bad = build(method="dagger", env_id="CartPole-v1",
                overrides=["method.expert=x:y", "method.beta=1.5"]).method  # fmt: skip
    with pytest.raises(ConfigError, match="probability"):
        dagger.check_beta(bad)


def test_an_expert_outside_the_action_space_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"outside the action space Discrete\(2\)"):
        mentor.train(dagger_experiment(tmp_path, "method.expert=test_dagger:pushes_three"))
    # Labelling only (beta 0: the expert never acts, it is asked for labels): the same error.
    demos = record(policy_from("test_dagger:expert"), "CartPole-v1", {}, 2, seed=0)
    path = save_dataset(demos, tmp_path / "demos", env_id="CartPole-v1")
    with pytest.raises(DatasetError, match=r"gave the action 3 .* Discrete\(2\)"):
        mentor.train(dagger_experiment(tmp_path, f"data.path={path}", "method.beta=0.0",
                                       "method.expert=test_dagger:pushes_three"))  # fmt: skip
    with pytest.raises(DatasetError, match=r"shape \(\) for 3 observations"):
        dagger.checked_actions(np.int64(1), spaces.Discrete(2), 3, "the expert")
    box = spaces.Box(-1.0, 1.0, (2,), np.float32)
    with pytest.raises(DatasetError, match="row 1"):
        dagger.checked_actions(np.array([[0, 0], [0, 2.0]]), box, 2, "the expert")


def test_resume_continues_at_the_next_round_bitwise(tmp_path: Path) -> None:
    whole = mentor.train(dagger_experiment(
        tmp_path, "name=whole", "checkpoints.every_steps=1", "checkpoints.keep_last=10",
        "method.rounds=2", "method.max_epochs=10", "validation.episodes=2",
        "evaluation.episodes=0",
    ))  # fmt: skip
    broken = tmp_path / "broken"
    shutil.copytree(whole.run_dir, broken)
    shutil.rmtree(broken / "final")
    checkpoints = sorted((broken / "checkpoints").glob("step_*"))
    assert len(checkpoints) == 3  # one after each round
    shutil.rmtree(checkpoints[-1])  # as if killed during the last round
    mentor.resume(broken)
    for part in ("model", "dataset"):
        a = load_file(str(whole.run_dir / "final" / f"{part}.safetensors"))
        b = load_file(str(broken / "final" / f"{part}.safetensors"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), part
