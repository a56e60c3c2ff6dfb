"""Schedules: a value as a function of training progress (the fraction of the step budget spent)."""

from __future__ import annotations

import math

from mentor.sections import Schedule, ScheduleOrValue


def value_at(schedule: ScheduleOrValue, progress: float) -> float:
    """The value of a schedule (or constant) once ``progress`` ∈ [0, 1] of the budget is spent."""
    if not isinstance(schedule, Schedule):
        return float(schedule)
    t = min(max(progress / schedule.fraction, 0.0), 1.0)
    start, end = schedule.start, schedule.end
    if schedule.kind == "linear":
        return start + (end - start) * t
    if schedule.kind == "cosine":
        return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * t))
    return start * (end / start) ** t  # exponential: validated start, end > 0
