"""The experiment file: every section of the training workflow as a typed, validated model.

An experiment is YAML on disk and an ``Experiment`` in Python. Every field has a default and a
description; unknown keys are errors with a did-you-mean hint, and a bad value names the field,
the value and what is allowed. ``mentor show-defaults ppo`` prints the whole tree.
"""

from __future__ import annotations

import copy
import re
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mentor.errors import ConfigError, did_you_mean


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


class EnvConfig(Section):
    """Step 1: the environment the agent trains in."""

    id: str = Field(
        "CartPole-v1",
        description="A registered Gymnasium id, or an entry point 'package.module:ClassName'.",
    )
    kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Keyword arguments given to the env's constructor."
    )
    num_envs: int = Field(8, ge=1, le=4096, description="Copies of the env stepped together.")
    vectorization: Literal["auto", "native", "sync", "async"] = Field(
        "auto",
        description=(
            "auto: the env's own vectorized implementation when it has one, else sync. "
            "native: require it. sync: one process. async: one process per copy, shared memory."
        ),
    )
    max_episode_steps: int | None = Field(
        None, ge=1, description="Truncate episodes after this many steps (default: the env's)."
    )
    normalize_obs: bool = Field(
        False, description="Normalize observations with running mean and variance (saved)."
    )
    normalize_reward: bool = Field(
        False, description="Scale rewards by the running std of the discounted return (saved)."
    )
    clip_obs: float = Field(10.0, gt=0, description="Clip normalized observations to ±clip_obs.")
    check_finite: bool = Field(
        True, description="Stop with an error when an observation or reward is NaN or infinite."
    )


class ValidationEnvConfig(Section):
    """The env validation runs in, when it differs from the training env."""

    id: str | None = Field(None, description="Env id; default: the training env's id.")
    kwargs: dict[str, Any] | None = Field(None, description="Kwargs; default: the training env's.")


class ValidationConfig(Section):
    """Step 8: periodic evaluation on separate env copies with other seeds."""

    every_steps: int = Field(10_000, ge=1, description="Validate every this many env steps.")
    episodes: int = Field(20, ge=1, description="Episodes per validation.")
    num_envs: int = Field(
        10, ge=1, description="Validation env copies (the episodes are split evenly among them)."
    )
    deterministic: bool = Field(True, description="Act with the mode of the policy, not a sample.")
    env: ValidationEnvConfig = Field(default_factory=ValidationEnvConfig)
    seed_offset: int = Field(
        1_000_000,
        description=(
            "Validation envs are seeded with seed + seed_offset, the same seeds at every "
            "validation, so successive scores differ by the policy, not by the episodes drawn."
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

    @model_validator(mode="after")
    def _sizes_positive(self) -> NetworkConfig:
        if any(size < 1 for size in self.hidden_sizes):
            raise ValueError(f"hidden_sizes must all be >= 1, got {self.hidden_sizes}")
        return self


class AgentConfig(Section):
    """Steps 2 and 3: the architecture and the initial policy."""

    network: NetworkConfig = Field(default_factory=NetworkConfig)
    init: str = Field(
        "random",
        description=("'random' (seeded), or a run folder or checkpoint folder to start from."),
    )
    init_layers: list[str] = Field(
        default_factory=list,
        description="Load only parameters whose names start with these prefixes (all if empty).",
    )
    freeze: list[str] = Field(
        default_factory=list,
        description="Parameters whose names start with these prefixes are not trained.",
    )


class PPOConfig(Section):
    """Step 6: Proximal Policy Optimization (Schulman et al. 2017) with GAE."""

    name: Literal["ppo"] = Field("ppo", description="The method.")
    learning_rate: ScheduleOrValue = Field(
        3e-4, description="Adam step size, a number or a schedule."
    )
    num_steps: int = Field(128, ge=1, description="Steps per env per rollout.")
    num_epochs: int = Field(4, ge=1, description="Passes over each rollout.")
    num_minibatches: int = Field(4, ge=1, description="Minibatches per pass.")
    gamma: float = Field(0.99, ge=0, le=1, description="Discount factor.")
    gae_lambda: float = Field(0.95, ge=0, le=1, description="GAE's bias-variance trade-off.")
    clip_coef: ScheduleOrValue = Field(0.2, description="PPO's ratio clip, a number or schedule.")
    value_clip_coef: float | None = Field(
        None, gt=0, description="Clip the value update like the policy's (None: off)."
    )
    vf_coef: float = Field(0.5, ge=0, description="Weight of the value loss.")
    max_grad_norm: float | None = Field(
        0.5, gt=0, description="Clip the global gradient norm (None: off)."
    )
    target_kl: float | None = Field(
        None, gt=0, description="Stop the epochs early when the approximate KL exceeds this."
    )
    normalize_advantages: bool = Field(True, description="Standardize advantages per minibatch.")
    adam_eps: float = Field(1e-5, gt=0, description="Adam's epsilon.")

    @field_validator("learning_rate", "clip_coef")
    @classmethod
    def _positive_start(cls, value: ScheduleOrValue, info: ValidationInfo) -> ScheduleOrValue:
        # A field validator, so the error's path is 'method.learning_rate', not 'method'.
        start = value.start if isinstance(value, Schedule) else value
        if start <= 0:
            raise ValueError(f"{info.field_name} must be > 0, got {start}")
        return value


class ExplorationConfig(Section):
    """Step 7: how the agent explores (PPO: the entropy bonus)."""

    entropy_coef: ScheduleOrValue = Field(
        0.0, description="Weight of the entropy bonus, a number or a schedule."
    )


class EvaluationConfig(Section):
    """Step 5: the final evaluation written to evaluation.json when training ends."""

    episodes: int = Field(100, ge=0, description="Episodes (0: no final evaluation).")
    deterministic: bool = Field(True, description="Act with the mode of the policy.")
    success_threshold: float | None = Field(
        None, description="Return counted as a success (default: the env's reward threshold)."
    )


class PlateauConfig(Section):
    """Stop when validation return shows no upward trend (one-sided Mann-Kendall test)."""

    window: int = Field(10, ge=4, description="Latest validations the trend test looks at.")
    alpha: float = Field(
        0.05, gt=0, lt=1, description="Plateau when the trend's p-value is above this."
    )


class StoppingConfig(Section):
    """Step 10: when training stops. The first rule met stops it; the reason is recorded."""

    total_steps: int = Field(100_000, ge=1, description="Budget of env steps.")
    target_return: float | Literal["env"] | None = Field(
        None,
        description=(
            "Stop when the validation mean return reaches this; 'env' uses the env's "
            "reward_threshold."
        ),
    )
    plateau: PlateauConfig | None = Field(None, description="Stop on a validation plateau.")
    max_seconds: float | None = Field(None, gt=0, description="Budget of wall-clock seconds.")


class CheckpointConfig(Section):
    """Checkpoints: safetensors + JSON, written atomically."""

    every_steps: int | None = Field(
        None, ge=1, description="Save every this many env steps (None: only best/ and final/)."
    )
    keep_last: int = Field(3, ge=1, description="Periodic checkpoints kept on disk.")
    keep_best: bool = Field(True, description="Keep the best checkpoint on validation return.")


class LoggingConfig(Section):
    """Where metrics go."""

    csv: bool = Field(True, description="metrics.csv in the run folder.")
    tensorboard: bool = Field(True, description="TensorBoard events in the run folder.")
    progress: bool = Field(True, description="A live progress bar on the console.")


class Experiment(Section):
    """One training run, all ten steps of the workflow."""

    name: str | None = Field(None, description="Run name (default: '<method>-<env id>').")
    seed: int = Field(0, ge=0, description="Seeds Python, NumPy, torch and the envs.")
    output_dir: str = Field("runs", description="Run folders are created under this folder.")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="auto: CUDA when present, else CPU."
    )
    num_threads: int | None = Field(
        1,
        ge=1,
        description=(
            "torch CPU threads. 1 is fastest for small networks and bitwise reproducible; "
            "None leaves torch's default."
        ),
    )
    env: EnvConfig = Field(default_factory=EnvConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    agent: AgentConfig = Field(default_factory=AgentConfig)
    method: PPOConfig = Field(default_factory=PPOConfig)
    exploration: ExplorationConfig = Field(default_factory=ExplorationConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    stopping: StoppingConfig = Field(default_factory=StoppingConfig)
    checkpoints: CheckpointConfig = Field(default_factory=CheckpointConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)

    @model_validator(mode="after")
    def _consistent(self) -> Experiment:
        batch = self.env.num_envs * self.method.num_steps
        if batch % self.method.num_minibatches:
            raise ValueError(
                f"the rollout of env.num_envs * method.num_steps = {self.env.num_envs} * "
                f"{self.method.num_steps} = {batch} steps does not split into "
                f"method.num_minibatches = {self.method.num_minibatches} equal minibatches"
            )
        if self.agent.init == "random" and (self.agent.init_layers or self.agent.freeze):
            raise ValueError(
                "agent.init_layers and agent.freeze need agent.init to name a checkpoint"
            )
        return self

    @property
    def run_name(self) -> str:
        return self.name or f"{self.method.name}-{self.env.id.replace('/', '_').replace(':', '_')}"

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


# --- building experiments from files, presets and overrides -------------------------------------


class _Loader(yaml.SafeLoader):
    """Safe YAML (no Python objects) that reads ``3e-4`` and ``1e5`` as numbers, as YAML 1.2
    does: PyYAML follows YAML 1.1, where a float needs a dot, and returns them as strings."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def _load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader


def parse(data: dict[str, Any], source: str = "experiment") -> Experiment:
    """Validate a plain dict into an Experiment, turning pydantic's errors into a ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of sections, got {type(data).__name__}")
    try:
        return Experiment.model_validate(data)
    except ValidationError as exc:
        errors = [e for e in exc.errors() if not _number_for_schedule(e)] or exc.errors()
        raise ConfigError(f"{source}: " + "; ".join(_describe(e) for e in errors)) from None


def _number_for_schedule(error: dict[str, Any]) -> bool:
    """A mapping given to a number-or-schedule field was meant as a schedule: the number branch's
    'Input should be a valid number' is noise beside the schedule's own error."""
    return "float" in error["loc"] and isinstance(error.get("input"), dict)


def _describe(error: dict[str, Any]) -> str:
    """One readable clause per validation error: the key path, the problem, what is allowed."""
    loc = [str(part) for part in error["loc"] if not str(part).startswith("function-after")]
    path = ".".join(p for p in loc if p not in {"float", "Schedule"}) or "(top level)"
    if error["type"] == "extra_forbidden":
        fields = _fields_at(loc[:-1])
        return (
            f"unknown key '{path}'"
            + did_you_mean(loc[-1], fields)
            + (f"; valid keys here: {', '.join(fields)}" if fields else "")
        )
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] in {"missing"}:
        return f"'{path}' is required"
    if error["type"] == "value_error" and isinstance(error.get("input"), dict):
        # A check across a section's fields: its message names the values, the input is the
        # whole section (the whole experiment at the top level), too long to repeat.
        return message if not loc else f"'{path}': {message}"
    return f"'{path}' = {error.get('input')!r}: {message}"


def _fields_at(loc: list[str]) -> list[str]:
    model: type[BaseModel] = Experiment
    for part in loc:
        field = model.model_fields.get(part)
        annotation = getattr(field, "annotation", None)
        nested = next(
            (t for t in (annotation, *getattr(annotation, "__args__", ())) if _is_model(t)), None
        )
        if nested is None:
            return []
        model = nested
    return list(model.model_fields)


def _is_model(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, BaseModel)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read an experiment file into a dict (safe YAML: no Python objects)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"experiment file '{path}' does not exist")
    try:
        data = _load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` overrides (values parsed as YAML) to a copy of ``data``."""
    data = copy.deepcopy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override '{item}' is not of the form section.key=value")
        try:
            value = _load(raw)
        except yaml.YAMLError:
            value = raw
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override '{item}': '{part}' is a value, not a section")
            node = child
        node[parts[-1]] = value
    return data


def preset(method: str, env_id: str) -> dict[str, Any]:
    """The tuned settings shipped for (method, env), or {} when there are none."""
    presets = available_presets()
    if method not in presets:
        raise ConfigError(f"unknown method '{method}'" + did_you_mean(method, presets))
    return copy.deepcopy(presets[method].get(env_id, {}))


def available_presets() -> dict[str, dict[str, dict[str, Any]]]:
    """Every shipped preset: method -> env id -> partial experiment."""
    folder = resources.files("mentor") / "presets"
    out = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".yaml"):
            out[entry.name.removesuffix(".yaml")] = _load(entry.read_text()) or {}
    return out


def build(
    file: str | Path | None = None,
    method: str | None = None,
    env_id: str | None = None,
    overrides: list[str] | None = None,
) -> Experiment:
    """An experiment from a file, or from a method + env (their preset), then overrides."""
    if file is not None:
        data = load_yaml(file)
        source = str(file)
    else:
        method, env_id = method or "ppo", env_id or "CartPole-v1"
        data = preset(method, env_id)
        data = merge(data, {"method": {"name": method}, "env": {"id": env_id}})
        source = f"{method} {env_id}"
    return parse(apply_overrides(data, overrides or []), source)


def merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge two nested dicts; ``top`` wins."""
    out = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def describe_defaults(model: type[BaseModel] = Experiment, indent: int = 0) -> str:
    """The experiment tree as commented YAML: each field, its default and its description."""
    lines = []
    for name, field in model.model_fields.items():
        pad = "  " * indent
        nested = field.annotation if _is_model(field.annotation) else None
        if nested is not None and nested is not Schedule:
            doc = (nested.__doc__ or "").strip().splitlines()[0]
            lines.append(f"{pad}{name}:  # {doc}")
            lines.append(describe_defaults(nested, indent + 1))
            continue
        default = field.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            default = default.model_dump(mode="json")
        value = yaml.safe_dump(default, default_flow_style=True).strip().removesuffix("...")
        value = value.strip() or "null"
        lines.append(f"{pad}{name}: {value}  # {field.description or ''}")
    return "\n".join(lines)
