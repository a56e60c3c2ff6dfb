"""When a run stops: typed records of where it is, and stop rules that read them.

After every update the session builds a ``Progress`` (its step, its time, the validation made at
this step if one was) and asks each stop rule in turn; the first to answer with a reason stops
the run, and the reason goes into the manifest. The experiment's ``stopping`` section gives four
rules, each testable alone; a method or a caller adds its own (BC's early stopping, DAgger's
rounds, an Optuna pruner) with ``TrainingSession(..., stop_rules=[...])``:

    target        the validation mean return reaches stopping.target_return
    success       the validation success rate reaches stopping.target_success
    plateau       no upward trend in the last validations (one-sided Mann-Kendall test)
    budget        the step counter reaches stopping.total_steps
    max_seconds   the wall-clock time since the start (of the first run) reaches max_seconds

Listeners hear of each update and each validation through the same frozen records, never the
loop's locals. A rule that returns anything but a string or None, and a listener that raises,
stop the run with an error naming them (``HookError``); the checkpoints already written stay.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from mentor.evaluation.convergence import PlateauDetector, trend_pvalue
from mentor.evaluation.statistics import EvalSummary


@dataclass(frozen=True)
class Validation:
    """One validation: its step, its summary, the best mean return so far (this one included)
    and every validation mean return so far, oldest first."""

    step: int
    summary: EvalSummary
    best_return: float
    history: tuple[float, ...]


@dataclass(frozen=True)
class Update:
    """One update of the loop: its step and the metrics logged with it ({} when none were)."""

    step: int
    metrics: Mapping[str, float]


@dataclass(frozen=True)
class Progress:
    """Where a run is after an update: what a stop rule reads. ``validation`` is the one made
    at this step, None between validations."""

    step: int
    train_seconds: float
    elapsed_seconds: float
    validation: Validation | None


StopRule = Callable[[Progress], str | None]


class StatefulRule(Protocol):
    """A stop rule that remembers (the plateau test's history): saved in checkpoints."""

    def __call__(self, progress: Progress) -> str | None: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def budget_rule(total_steps: int) -> StopRule:
    def budget(progress: Progress) -> str | None:
        if progress.step >= total_steps:
            return f"budget: reached total_steps={total_steps}"
        return None

    return budget


def time_rule(max_seconds: float) -> StopRule:
    def max_time(progress: Progress) -> str | None:
        if progress.elapsed_seconds >= max_seconds:
            return f"budget: reached max_seconds={max_seconds}"
        return None

    return max_time


def target_rule(target: float) -> StopRule:
    def target_return(progress: Progress) -> str | None:
        validation = progress.validation
        if validation is not None and validation.summary.return_mean >= target:
            return f"target: validation return {validation.summary.return_mean:.2f} >= {target:g}"
        return None

    return target_return


def success_rule(target: float) -> StopRule:
    """Stop at a validation succeeding in at least ``target`` of its episodes. A validation that
    cannot say what a success is (no info['is_success'], no success_threshold) is named once on
    stderr, so a run does not wait for a rule that cannot fire."""
    warned = False

    def target_success(progress: Progress) -> str | None:
        nonlocal warned
        validation = progress.validation
        if validation is None:
            return None
        rate = validation.summary.success_rate
        if rate is None:
            if not warned:
                print(
                    "warning: stopping.target_success is set, but the validation env reports "
                    "no info['is_success'] and evaluation.success_threshold is unset: "
                    "set evaluation.success_threshold to count a success",
                    file=sys.stderr,
                )
                warned = True
            return None
        if rate >= target:
            return f"target: validation success rate {rate:.2f} >= {target:g}"
        return None

    return target_success


class PlateauRule:
    """Stop when the validation returns show no upward trend (``PlateauDetector``). It sees each
    validation once, when it is asked at the step of that validation."""

    def __init__(self, window: int, alpha: float) -> None:
        self.detector = PlateauDetector(window, alpha, window)

    def __call__(self, progress: Progress) -> str | None:
        validation = progress.validation
        if validation is None or not self.detector.update(validation.summary.return_mean):
            return None
        window = self.detector.window
        p = trend_pvalue(self.detector.history[-window:])
        return (
            f"plateau: no upward trend in the last {window} validations "
            f"(one-sided Mann-Kendall test, p={p:.3f})"
        )

    def state_dict(self) -> dict[str, Any]:
        return self.detector.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.detector.load_state_dict(state)


def stopping_rules(
    total_steps: int,
    max_seconds: float | None,
    target: float | None,
    plateau: PlateauRule | None,
    target_success: float | None = None,
) -> list[StopRule]:
    """The experiment's rules, in the order they are asked: the targets and plateau (at a
    validation), then the step budget and the time budget."""
    rules: list[StopRule] = []
    if target is not None and math.isfinite(target):
        rules.append(target_rule(target))
    if target_success is not None:
        rules.append(success_rule(target_success))
    if plateau is not None:
        rules.append(plateau)
    rules.append(budget_rule(total_steps))
    if max_seconds is not None:
        rules.append(time_rule(max_seconds))
    return rules


def name_of(hook: Any) -> str:
    """How a rule or listener is named in messages: its function's or its class's name."""
    return getattr(hook, "__qualname__", None) or type(hook).__qualname__
