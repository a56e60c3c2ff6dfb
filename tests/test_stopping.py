"""The session's seams (issue 11, item 3): stopping is a list of typed stop rules, each testable
alone, to which a caller adds its own; listeners hear of every update and validation through
frozen records; a rule or listener that misbehaves stops the run naming it, checkpoints intact."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

import mentor
from mentor.errors import HookError
from mentor.evaluation.statistics import summarize
from mentor.experiment import build
from mentor.runs import checkpoint
from mentor.runs.stopping import (
    PlateauRule,
    Progress,
    Update,
    Validation,
    budget_rule,
    stopping_rules,
    success_rule,
    target_rule,
    time_rule,
)

QUIET = ["logging.progress=false", "logging.tensorboard=false"]


def validation(step: int, mean: float, history: tuple[float, ...] = ()) -> Validation:
    summary = summarize([mean - 1.0, mean + 1.0], [10, 10])
    return Validation(step, summary, max((*history, mean)), (*history, mean))


def progress(step: int = 0, seconds: float = 0.0, at: Validation | None = None) -> Progress:
    return Progress(step, seconds, seconds, at)


# --- each rule alone ------------------------------------------------------------------------


def test_budget_rule_stops_at_the_step_budget() -> None:
    rule = budget_rule(1000)
    assert rule(progress(999)) is None
    assert rule(progress(1000)) == "budget: reached total_steps=1000"


def test_time_rule_reads_the_elapsed_time() -> None:
    rule = time_rule(2.5)
    assert rule(progress(seconds=2.4)) is None
    assert rule(progress(seconds=2.5)) == "budget: reached max_seconds=2.5"


def test_target_rule_reads_only_the_validation_at_this_step() -> None:
    rule = target_rule(475.0)
    assert rule(progress(10)) is None  # no validation at this step
    assert rule(progress(10, at=validation(10, 474.0))) is None
    assert rule(progress(20, at=validation(20, 480.0))) == (
        "target: validation return 480.00 >= 475"
    )


def test_success_rule_reads_the_validation_success_rate(capsys) -> None:
    rule = success_rule(0.9)
    assert rule(progress(10)) is None
    failing = summarize([0.0, 0.5, 0.8, 0.9], [10] * 4, success_threshold=0.6)  # 2 of 4
    passing = summarize([0.7, 0.8, 0.9, 0.9], [10] * 4, success_threshold=0.6)  # 4 of 4
    assert rule(progress(10, at=Validation(10, failing, 0.9, (0.55,)))) is None
    assert rule(progress(20, at=Validation(20, passing, 0.9, (0.55, 0.825)))) == (
        "target: validation success rate 1.00 >= 0.9"
    )
    # Nothing says what a success is: named once on stderr, never fires.
    unknown = success_rule(0.5)
    assert unknown(progress(10, at=validation(10, 100.0))) is None
    assert unknown(progress(20, at=validation(20, 100.0))) is None
    assert capsys.readouterr().err.count("warning: stopping.target_success") == 1


def test_plateau_rule_counts_each_validation_and_keeps_its_history() -> None:
    rule = PlateauRule(window=4, alpha=0.05)
    for step, mean in enumerate([10.0, 20.0, 30.0, 40.0]):  # rising: no plateau
        assert rule(progress(step, at=validation(step, mean))) is None
        assert rule(progress(step)) is None  # between validations: nothing counted
    assert rule.state_dict() == {"history": [10.0, 20.0, 30.0, 40.0]}
    restored = PlateauRule(window=4, alpha=0.05)
    restored.load_state_dict(rule.state_dict())
    # 20, 30, 40, 50 still rises (p = 0.045 < 0.05); 30, 40, 50, 45 does not (p = 0.154).
    assert restored(progress(9, at=validation(9, 50.0))) is None
    assert restored(progress(10, at=validation(10, 45.0))) == (
        "plateau: no upward trend in the last 4 validations (one-sided Mann-Kendall test, p=0.154)"
    )


def test_the_experiments_rules_come_in_order_target_plateau_budget_time() -> None:
    plateau = PlateauRule(4, 0.05)
    rules = stopping_rules(100, 5.0, 475.0, plateau)
    assert [r.__qualname__.split(".")[0] for r in rules if r is not plateau] == [
        "target_rule",
        "budget_rule",
        "time_rule",
    ]
    assert rules[1] is plateau
    assert len(stopping_rules(100, None, None, None)) == 1  # the budget always
    with_success = stopping_rules(100, None, 475.0, None, target_success=0.9)
    assert [r.__qualname__.split(".")[0] for r in with_success] == [
        "target_rule",
        "success_rule",
        "budget_rule",
    ]


# --- a caller's rules and listeners, in a real run ----------------------------------------


def tiny(tmp_path: Path, *extra: str):
    return build(
        method="ppo",
        env_id="CartPole-v1",
        overrides=[
            f"output_dir={tmp_path}",
            "stopping.total_steps=4096",
            "stopping.target_return=null",
            "validation.every_steps=1024",
            "validation.episodes=2",
            "validation.num_envs=2",
            "evaluation.episodes=0",
            "checkpoints.every_steps=1024",
            *QUIET,
            *extra,
        ],
    )


def test_a_callers_stop_rule_and_listeners(tmp_path: Path) -> None:
    updates: list[Update] = []
    validations: list[Validation] = []

    def pruned(p: Progress) -> str | None:
        return "pruned: trial 3 below the median" if p.step >= 2048 else None

    result = mentor.train(
        tiny(tmp_path),
        stop_rules=[pruned],
        on_update=[updates.append],
        on_validation=[validations.append],
    )
    assert result.stop_reason == "pruned: trial 3 below the median"
    assert result.total_steps == 2048
    # The preset: 8 envs x 32 steps = 256 steps an update; a validation every 1,024 steps.
    assert [u.step for u in updates] == list(range(256, 2049, 256))
    assert all("train/loss_policy" in u.metrics for u in updates)
    assert [v.step for v in validations] == [1024, 2048]
    assert validations[1].history == (
        validations[0].summary.return_mean,
        validations[1].summary.return_mean,
    )
    assert validations[1].best_return == max(validations[1].history)
    with pytest.raises(dataclasses.FrozenInstanceError):
        validations[0].step = 0  # type: ignore[misc]


def test_a_listener_that_raises_stops_the_run_naming_it(tmp_path: Path) -> None:
    def fails_at_the_second(v: Validation) -> None:
        if v.step >= 2048:
            raise RuntimeError("the tuner's database is gone")

    with pytest.raises(
        HookError,
        match=r"validation listener .*fails_at_the_second raised "
        r"RuntimeError: the tuner's database is gone",
    ):
        mentor.train(tiny(tmp_path), on_validation=[fails_at_the_second])
    run = tmp_path / "ppo-CartPole-v1"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["stop_reason"].startswith("error: validation listener")
    kept = checkpoint.latest(run)
    assert kept and checkpoint.newest_intact(run).step == 1024  # the one before, intact
    assert not (run / "final").exists()


def test_a_stop_rule_that_returns_a_non_string_is_named(tmp_path: Path) -> None:
    def says_yes(_: Progress) -> bool:
        return True

    with pytest.raises(
        HookError,
        match=r"stop rule .*says_yes returned True \(bool\); a stop "
        r"rule returns a reason to stop \(a str\) or None",
    ):
        mentor.train(tiny(tmp_path), stop_rules=[says_yes])
