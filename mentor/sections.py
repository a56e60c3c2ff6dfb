"""The building blocks of every configuration: strict sections, schedules, the network section.

Kept free of torch, so reading and validating an experiment (and ``mentor --help``) stays fast.
The layer below everything that reads a configuration: ``mentor.core`` builds networks from
``NetworkConfig`` and follows ``Schedule``s without importing the experiment.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator


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


def positive_start(value: ScheduleOrValue, info: ValidationInfo) -> ScheduleOrValue:
    """A field validator (so the error's path names the field) for positive rates."""
    if schedule_start(value) <= 0:
        raise ValueError(f"{info.field_name} must be > 0, got {schedule_start(value)}")
    return value


class MemoryConfig(Section):
    """A recurrent core: its state carried from step to step, reset at each episode's start."""

    cell: Literal["lstm", "gru"] = Field("lstm", description="The recurrent cell.")
    hidden_size: int = Field(64, ge=1, description="Width of the cell's state.")
    critic: bool = Field(
        False,
        description=(
            "A cell of its own for the critic (True), so that the value loss cannot reshape the "
            "policy's memory; else (False) one cell serves both."
        ),
    )


class NetworkConfig(Section):
    """Step 2: the agent's networks."""

    kind: Literal["auto", "mlp", "cnn"] = Field(
        "auto", description="auto: a CNN for image observations (H, W, C uint8), else an MLP."
    )
    hidden_sizes: list[int] = Field([64, 64], description="Widths of the MLP's hidden layers.")
    activation: Literal["tanh", "relu", "elu", "gelu", "silu"] = Field(
        "tanh", description="Activation between hidden layers."
    )
    shared: bool = Field(
        False, description="Actor and critic share the hidden layers (True) or not (False)."
    )
    ortho_init: bool = Field(True, description="Orthogonal initialisation (PPO's usual choice).")
    log_std_init: float = Field(0.0, description="Initial log std of Gaussian (Box) actions.")
    convolutions: list[list[int]] | None = Field(
        None,
        description=(
            "The CNN's convolutions, each [channels, kernel, stride] or [channels, kernel, "
            "stride, padding], ReLU after each: for images (default the Nature CNN's "
            "[[32, 8, 4], [64, 4, 2], [64, 3, 1]], then 512 features) and boards of planes "
            "(default [[64, 3, 1, 1], [64, 3, 1, 1]]; MinAtar's network: [[16, 3, 1]]). "
            "null: the default."
        ),
    )
    memory: MemoryConfig | None = Field(
        None,
        description="A recurrent core (LSTM or GRU) between the observation's features and the "
        "hidden layers: a policy that remembers (ppo). null: none.",
    )

    @model_validator(mode="after")
    def _sizes_positive(self) -> NetworkConfig:
        if any(size < 1 for size in self.hidden_sizes):
            raise ValueError(f"hidden_sizes must all be >= 1, got {self.hidden_sizes}")
        for layer in self.convolutions or []:
            if len(layer) not in (3, 4) or min(layer[:3]) < 1 or min(layer) < 0:
                raise ValueError(
                    f"convolutions: {layer} is not [channels, kernel, stride] or [channels, "
                    "kernel, stride, padding] (channels, kernel, stride >= 1, padding >= 0)"
                )
        if self.convolutions == []:
            raise ValueError("convolutions: give at least one, or null for the default")
        return self
