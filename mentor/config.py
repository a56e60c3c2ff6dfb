"""The building blocks of every configuration: strict sections and schedules.

Kept free of torch, so reading and validating an experiment (and ``mentor --help``) stays fast.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Section(BaseModel):
    """A part of the experiment: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Schedule(Section):
    """A value that moves from ``start`` to ``end`` over the first ``fraction`` of the budget."""

    kind: Literal["linear", "exponential", "cosine"] = Field(
        "linear", description="Shape of the decay from start to end."
    )
    start: float = Field(description="Value at the first step.")
    end: float = Field(0.0, description="Value once `fraction` of the step budget is spent.")
    fraction: float = Field(
        1.0, gt=0, le=1, description="Fraction of the step budget over which the value moves."
    )

    @model_validator(mode="after")
    def _positive_for_exponential(self) -> Schedule:
        if self.kind == "exponential" and (self.start <= 0 or self.end <= 0):
            raise ValueError(
                "an exponential schedule needs start > 0 and end > 0, "
                f"got start={self.start}, end={self.end}"
            )
        return self


ScheduleOrValue = float | Schedule


def schedule_start(value: ScheduleOrValue) -> float:
    """The first value of a schedule or constant."""
    return value.start if isinstance(value, Schedule) else float(value)
