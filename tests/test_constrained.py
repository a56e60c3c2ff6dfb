"""Training under a cost limit (mentor/core/constraint.py, PPO-Lagrangian in methods/ppo.py)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import mentor
from mentor.errors import ConfigError, EnvError
from mentor.experiment import parse

MENTOR = Path(sys.executable).with_name("mentor")
POINT_GOAL = "mentor.envs.constrained:PointGoal"


def experiment(tmp_path: Path, name: str, steps: int = 2048, **constraint) -> dict:
    return {
        "name": name,
        "output_dir": str(tmp_path),
        "env": {"id": POINT_GOAL, "num_envs": 4},
        "validation": {"every_steps": 1024, "episodes": 2},
        "method": {"name": "ppo", "num_steps": 128, "num_epochs": 2, "num_minibatches": 2},
        "stopping": {"total_steps": steps},
        "evaluation": {"episodes": 4},
        "checkpoints": {"every_steps": 512, "keep_last": 10},
        "logging": {"tensorboard": False, "progress": False},
        "constraint": {"limit": 2.0, **constraint},
    }


def test_a_constrained_run_logs_its_multiplier_and_costs_and_resumes_bitwise(tmp_path) -> None:
    """The PID multiplier's memory, the cost critic and its optimizer are in every checkpoint,
    and the point-goal env and its cost in the env snapshot: stopped and resumed, the run is
    the one that never stopped."""
    from test_resume import assert_resumes_bitwise

    def run(name: str) -> dict:
        return experiment(tmp_path, name, multiplier="pid", kp=0.5, ki=0.2)

    reference = assert_resumes_bitwise(run, tmp_path, keep=2)
    rows = list(csv.DictReader((reference / "metrics.csv").open()))
    logged = {"constraint/multiplier", "constraint/episode_cost", "constraint/violations",
              "train/loss_cost", "train/loss_cost_value", "rollout/cost_mean"}  # fmt: skip
    assert logged <= set(rows[0])
    assert any(float(r["constraint/multiplier"]) > 0 for r in rows)  # the cost went over 2
    evaluation = json.loads((reference / "evaluation.json").read_text())
    assert "cost" in evaluation["info"]
    from mentor.report.report import write_report

    report = write_report(reference)
    markdown = (report / "report.md").read_text()
    assert "## Constraint" in markdown and "| Cost limit (per episode) | 2 |" in markdown
    assert (report / "constraint.png").is_file()


def test_a_cost_limit_below_zero_is_refused_in_one_line(tmp_path) -> None:
    """FAULT-20: a bad value is refused before anything starts; CLI exit 2, one line."""
    with pytest.raises(ConfigError, match=r"cost limit -1\.0 is below zero"):
        parse(experiment(tmp_path, "x", limit=-1.0))
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(experiment(tmp_path, "x", limit=-1.0)))
    done = subprocess.run([str(MENTOR), "train", str(path)], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "cost limit -1.0 is below zero" in done.stderr and not (tmp_path / "x").exists()


def test_a_cost_key_the_env_never_reports_stops_the_run_naming_it(tmp_path) -> None:
    config = experiment(tmp_path, "never", cost="hazard")
    with pytest.raises(EnvError, match="hazard"):
        mentor.train(config)


def test_only_methods_that_train_under_a_limit_take_one(tmp_path) -> None:
    config = {**experiment(tmp_path, "dqn"), "env": {"id": "CartPole-v1"},
              "method": {"name": "dqn"}}  # fmt: skip
    with pytest.raises(ConfigError, match="method dqn does not train under a cost limit"):
        parse(config)
    rehearsed = {**config, "method": {"name": "sac"}, "env": {"id": "Pendulum-v1"},
                 "continual": {"tasks": [{}, {"kwargs": {"g": 5.0}}], "steps_per_task": 1000,
                               "rehearsal": {"kind": "replay"}}}  # fmt: skip
    with pytest.raises(ConfigError, match="kept transitions hold no costs"):
        parse(rehearsed)
    declared = experiment(tmp_path, "last")
    declared["env"]["info_keys"] = ["cost"]
    with pytest.raises(ConfigError, match=r"declared in env\.info_keys as last"):
        parse(declared)


def test_ppos_cost_critic_discounts_by_constraint_gamma(tmp_path, monkeypatch) -> None:
    """constraint.gamma reaches the cost advantages (the method's gamma when unset), and only
    PPO takes it: Lagrangian SAC's cost Q discounts as its critics."""
    from mentor.core.constraint import CostValues

    seen: list[float] = []
    advantages = CostValues.advantages

    def spy(self, storage, next_obs, gamma, gae_lambda):
        seen.append(gamma)
        return advantages(self, storage, next_obs, gamma, gae_lambda)

    monkeypatch.setattr(CostValues, "advantages", spy)
    for name, extra, expected in (("own", {"gamma": 0.97}, 0.97), ("method", {}, 0.9)):
        config = experiment(tmp_path, name, steps=1024, **extra)
        config["method"]["gamma"] = 0.9
        seen.clear()
        mentor.train(config)
        assert seen and set(seen) == {expected}
    config = experiment(tmp_path, "sac", gamma=0.97)
    config["method"] = {"name": "sac"}
    with pytest.raises(ConfigError, match=r"constraint\.gamma discounts PPO's cost critic"):
        parse(config)


def test_a_margin_reaches_both_methods_multipliers_and_the_report(tmp_path) -> None:
    """constraint.margin: PPO's and SAC's multipliers aim at the limit less its share (logged
    as constraint/target), and the report names the training target beside the limit."""
    from mentor.report.report import write_report

    sac = {"name": "sac", "learning_starts": 256, "buffer_size": 5000, "batch_size": 64}
    for name, method in (("ppo", None), ("sac", sac)):
        config = experiment(tmp_path, name, steps=1024, margin=0.25)
        if method is not None:
            config["method"] = method
        run = mentor.train(config).run_dir
        rows = list(csv.DictReader((run / "metrics.csv").open()))
        assert rows and {float(r["constraint/target"]) for r in rows} == {1.5}
        assert {float(r["constraint/limit"]) for r in rows} == {2.0}
    markdown = (write_report(run) / "report.md").read_text()
    assert "| Training target (the limit less its margin) | 1.5 |" in markdown


def test_lagrangian_sac_logs_its_multiplier_and_resumes_bitwise(tmp_path) -> None:
    """The cost critic, its target and optimizer, the multiplier and the replay buffer's costs
    are in every checkpoint."""
    from test_resume import assert_resumes_bitwise

    def run(name: str) -> dict:
        config = experiment(tmp_path, name, multiplier="pid", kp=0.5, ki=0.2)
        config["method"] = {"name": "sac", "learning_starts": 256, "buffer_size": 5000,
                            "batch_size": 64}  # fmt: skip
        config["logging"]["every_steps"] = 256
        return config

    reference = assert_resumes_bitwise(run, tmp_path, keep=2)
    rows = list(csv.DictReader((reference / "metrics.csv").open()))
    assert float(rows[-1]["constraint/multiplier"]) > 0
    assert {"train/loss_cost", "train/loss_cost_critic"} <= set(rows[-1])


def test_ppo_lagrangian_keeps_the_cost_down_where_ppo_does_not(tmp_path) -> None:
    """PointGoal, 60k steps, limit 2: the sampled policy's evaluation cost over seeds 0-9 was
    0.0 in nine and 3.7 in one (median 0.0) with the constraint, 6.40 to 6.64 (median 6.45)
    without (2026-12-05, the code of this commit). The bound, 5.0, is 1.3 above the worst
    constrained seed and 1.4 below the best unconstrained one. (Returns are not asserted: one
    constrained seed of ten, 4.5 against 20-23 for the others, stopped short of the goal.)"""
    config = experiment(tmp_path, "learn", steps=60_000)
    config["env"]["num_envs"] = 8
    config["method"] = {"name": "ppo", "num_steps": 256, "num_epochs": 10, "num_minibatches": 8,
                        "learning_rate": 3.0e-4}  # fmt: skip
    config["validation"] = {"every_steps": 60_000, "episodes": 5}
    config["evaluation"] = {"episodes": 50, "deterministic": False}
    config["checkpoints"] = {"every_steps": 60_000}
    run = mentor.train(config).run_dir
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert evaluation["info"]["cost"] <= 5.0


def test_the_best_checkpoint_of_a_constrained_run_kept_the_limit() -> None:
    """Highest return among validations within the limit; before any, the lowest cost."""
    from types import SimpleNamespace

    from mentor.runs.session import TrainingSession

    stub = SimpleNamespace(experiment=parse({"constraint": {"limit": 2.0}}), validations=[],
                           best_return=float("-inf"))  # fmt: skip
    picked = []
    for ret, cost in [(10, 5.0), (12, 4.0), (20, 6.0), (8, 1.5), (15, 2.5), (9, 2.0), (7, 0.5)]:
        row = {"return_mean": ret, "info": {"cost": cost}}
        stub.validations.append(row)
        if TrainingSession._new_best(stub, row):
            picked.append(ret)
    assert picked == [10, 12, 8, 9]


def test_a_trader_trains_under_a_drawdown_budget(tmp_path) -> None:
    """The market env's drawdown_increase as the cost: the multiplier follows the episodes'
    summed deepening of the drawdown, which is at least each episode's maximum drawdown."""
    config = experiment(tmp_path, "trader", steps=1024, cost="drawdown_increase", limit=0.01)
    config["env"] = {"id": "mentor.envs.trading:TradingEnv", "num_envs": 2,
                     "kwargs": {"synthetic_bars": 300, "window": 10, "episode_bars": 50},
                     "info_keys": ["max_drawdown"]}  # fmt: skip
    run = mentor.train(config).run_dir
    rows = [r for r in csv.DictReader((run / "metrics.csv").open())
            if r.get("constraint/episode_cost")]  # fmt: skip
    assert rows and float(rows[-1]["constraint/multiplier"]) > 0
    for row in rows:  # summed deepening >= the deepest drawdown, episode by episode on average
        assert (
            float(row["constraint/episode_cost"]) >= float(row["rollout/max_drawdown_mean"]) - 1e-9
        )


@pytest.mark.parametrize("scale", ["joint", "separate"])
def test_the_policy_gradient_weighs_reward_and_cost_as_the_scale_says(scale: str) -> None:
    """At ratio 1 (the first minibatch) the two surrogates' gradient with respect to each
    action's log-probability is -(A_r - lambda A_c) / n up to one positive scale for ``joint``
    (std of A_r - lambda A_c: lambda is reward per unit of cost, whatever the units), and
    -(std. A_r - lambda std. A_c) / (1 + lambda) / n for ``separate`` (OmniSafe's), each
    advantage centered."""
    import torch

    from mentor.experiment import build
    from mentor.methods.ppo import Batch, ppo_loss

    n, lam = 64, 2.5
    generator = torch.Generator().manual_seed(0)
    a_r = torch.randn(n, generator=generator) * 5 + 3  # a reward 50 times the cost's scale
    a_c = torch.randn(n, generator=generator) * 0.1 + 0.2
    old = torch.randn(n, generator=generator)
    log_probs = old.clone().requires_grad_(True)
    batch = Batch(torch.zeros(n, 1), torch.zeros(n), old, torch.zeros(n), a_r, torch.zeros(n),
                  cost_advantages=a_c)  # fmt: skip
    cfg = build(method="ppo", env_id="CartPole-v1").method

    class Policy:
        value_stats = None

    scored = (log_probs, torch.zeros(n), torch.zeros(n))
    terms, _ = ppo_loss(Policy(), batch, cfg, 0.2, 0.0, lam, scored, joint=scale == "joint")
    (terms["loss/policy"] + terms["loss/cost"]).backward()
    r, c = a_r - a_r.mean(), a_c - a_c.mean()
    if scale == "joint":
        expected = -(r - lam * c) / ((a_r - lam * a_c).std() + 1e-8) / n
    else:
        expected = -(r / (a_r.std() + 1e-8) - lam * c / (a_c.std() + 1e-8)) / (1 + lam) / n
    assert torch.allclose(log_probs.grad, expected, atol=1e-6)
