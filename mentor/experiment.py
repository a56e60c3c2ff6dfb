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
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from mentor.config import Schedule, ScheduleOrValue, Section
from mentor.errors import ConfigError, did_you_mean
from mentor.methods.configs import METHOD_CONFIGS, MethodConfig, OffPolicyConfig, PPOConfig

__all__ = ["Experiment", "PPOConfig", "Schedule", "ScheduleOrValue", "Section"]


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
            "auto: the env's own vectorized implementation when it has one and num_envs >= 8 "
            "(below that a plain loop is faster), else sync. "
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
    preflight: bool = Field(
        True,
        description="Check the env's API on a short random rollout before the run folder is "
        "made (an env that only raises is a warning with async's restartable workers).",
    )
    max_restarts: int = Field(
        3,
        ge=0,
        description=(
            "async: env workers that raise, hang or die are restarted (their episode is "
            "truncated) up to this many times in a run; one more stops it with a checkpoint."
        ),
    )
    step_timeout: float | None = Field(
        60.0, gt=0, description="async: seconds an env may take for a step or reset (None: wait)."
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


class DataConfig(Section):
    """Step 4 from data: the dataset a method learns from (bc, dagger, gail)."""

    path: str | None = Field(
        None,
        description="A dataset folder (mentor record writes them; Minari's format), an "
        "installed Minari dataset id, or a .csv/.parquet table of decisions.",
    )
    observation_columns: list[str] = Field(
        default_factory=list, description="Table: the feature columns, in order."
    )
    action_column: str | None = Field(None, description="Table: the action (label) column.")
    reward_column: str | None = Field(None, description="Table: a reward column (optional).")
    episode_column: str | None = Field(
        None, description="Table: rows with the same value form one episode (default: each row)."
    )
    max_episodes: int | None = Field(None, ge=1, description="Use the first N episodes only.")
    validation_fraction: float = Field(
        0.2, gt=0, lt=1, description="Episodes held out for validation loss / early stopping."
    )
    folds: int | None = Field(
        None, ge=2, description="k-fold cross-validation over episodes: score per fold, spread."
    )


class ActionNoiseConfig(Section):
    """Noise added to a deterministic policy's actions (in [-1, 1] units of the action range)."""

    kind: Literal["gaussian", "ornstein_uhlenbeck"] = Field(
        "gaussian", description="Independent Gaussian, or temporally correlated OU noise."
    )
    sigma: ScheduleOrValue = Field(0.1, description="Noise scale, a number or a schedule.")
    theta: float = Field(
        0.15,
        gt=0,
        description="OU noise: pull back toward zero per env step (dt = 1; from a library "
        "using dt, theta * dt and sigma * sqrt(dt) are the equivalents).",
    )


class ExplorationConfig(Section):
    """Step 7: how the agent explores. Each method reads its own fields: ppo entropy_coef;
    dqn epsilon; sac alpha, alpha_init, target_entropy; td3 action_noise."""

    entropy_coef: ScheduleOrValue = Field(
        0.0, description="ppo: weight of the entropy bonus, a number or a schedule."
    )
    epsilon: ScheduleOrValue = Field(
        default_factory=lambda: Schedule(kind="linear", start=1.0, end=0.05, fraction=0.1),
        description="dqn: probability of a random action, a number or a schedule.",
    )
    alpha: Annotated[float, Field(ge=0)] | Literal["auto"] = Field(
        "auto",
        description="sac: entropy weight; 'auto' tunes it toward target_entropy.",
    )
    alpha_init: float = Field(1.0, gt=0, description="sac: the tuned alpha's first value.")
    target_entropy: float | Literal["auto"] = Field(
        "auto",
        description="sac: entropy the tuning aims at; auto: -dim(A) for Box, 0.98 log|A| for "
        "Discrete.",
    )
    action_noise: ActionNoiseConfig = Field(
        default_factory=ActionNoiseConfig, description="td3: exploration noise on actions."
    )


class EvaluationConfig(Section):
    """Step 5: the final evaluation written to evaluation.json when training ends."""

    episodes: int = Field(100, ge=0, description="Episodes (0: no final evaluation).")
    num_envs: int = Field(
        25, ge=1, description="Env copies (the episodes are split evenly among them)."
    )
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
    every_steps: int = Field(
        1000,
        ge=1,
        description="Off-policy methods: env steps between metric rows (on-policy methods log "
        "once per update).",
    )


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
    data: DataConfig = Field(default_factory=DataConfig)
    method: MethodConfig = Field(default_factory=PPOConfig)
    exploration: ExplorationConfig = Field(default_factory=ExplorationConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    stopping: StoppingConfig = Field(default_factory=StoppingConfig)
    checkpoints: CheckpointConfig = Field(default_factory=CheckpointConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)

    @model_validator(mode="before")
    @classmethod
    def _method_defaults_to_ppo(cls, data: Any) -> Any:
        method = data.get("method") if isinstance(data, dict) else None
        if isinstance(method, dict) and "name" not in method:
            data = {**data, "method": {"name": "ppo", **method}}
        elif isinstance(method, dict) and method["name"] not in METHOD_CONFIGS:
            raise ValueError(
                f"method.name '{method['name']}' is not a method"
                + did_you_mean(str(method["name"]), METHOD_CONFIGS)
                + f"; methods: {', '.join(METHOD_CONFIGS)}"
            )
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Experiment:
        method = self.method
        if isinstance(method, PPOConfig):
            batch = self.env.num_envs * method.num_steps
            if batch % method.num_minibatches:
                raise ValueError(
                    f"the rollout of env.num_envs * method.num_steps = {self.env.num_envs} * "
                    f"{method.num_steps} = {batch} steps does not split into "
                    f"method.num_minibatches = {method.num_minibatches} equal minibatches"
                )
        elif isinstance(method, OffPolicyConfig):
            if method.batch_size > method.buffer_size:
                raise ValueError(
                    f"method.batch_size {method.batch_size} is larger than method.buffer_size "
                    f"{method.buffer_size}"
                )
            if method.learning_starts >= self.stopping.total_steps:
                raise ValueError(
                    f"method.learning_starts {method.learning_starts} is not below "
                    f"stopping.total_steps {self.stopping.total_steps}: training would never "
                    "update"
                )
        defaults = ExplorationConfig()
        unused = sorted(
            name
            for name in self.exploration.model_fields_set - set(type(method).exploration)
            if getattr(self.exploration, name) != getattr(defaults, name)
        )
        if unused:
            raise ValueError(
                f"exploration.{unused[0]} is not used by method {method.name}, which reads "
                f"exploration.{', exploration.'.join(type(method).exploration)}"
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
    if loc[:1] == ["method"] and len(loc) > 1 and loc[1] in METHOD_CONFIGS:
        loc = ["method", *loc[2:]]  # the union's tag: 'method.dqn.gamma' -> 'method.gamma'
        tag = error["loc"][1]
    else:
        tag = None
    path = ".".join(p for p in loc if p not in {"float", "Schedule"}) or "(top level)"
    if error["type"] == "extra_forbidden":
        fields = _fields_at(loc[:-1], tag)
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


def _fields_at(loc: list[str], method: str | None = None) -> list[str]:
    """The keys valid at a path of the experiment (for did-you-mean)."""
    model: type[BaseModel] = Experiment
    for part in loc:
        if model is Experiment and part == "method":
            model = METHOD_CONFIGS[method or "ppo"]
            continue
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
        data = _load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: {_yaml_problem(exc)}") from None
    if data is None:
        raise ConfigError(
            f"{path}: the file is empty; an experiment file is a mapping of sections (env, "
            "method, ...): see `mentor show-defaults` or examples/cartpole.yaml"
        )
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    return data


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line: where in the file YAML stopped reading (1-based line and column), and why."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is None:
        return f"not valid YAML: {problem}"
    where = f"line {mark.line + 1}, column {mark.column + 1}: not valid YAML: {problem}"
    context, start = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and start is not None and start.line != mark.line:
        where += f" ({context} at line {start.line + 1}, column {start.column + 1})"
    return where


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
        for depth, part in enumerate(parts[:-1]):
            if node.get(part) is None:  # start from the field's default: one key can change
                node[part] = _default_section(data, parts[: depth + 1])
            child = node[part]
            if not isinstance(child, dict):
                raise ConfigError(f"override '{item}': '{part}' is a value, not a section")
            node = child
        node[parts[-1]] = value
    return data


def _default_section(data: dict[str, Any], path: list[str]) -> dict[str, Any]:
    """The default of the section at ``path`` as a dict, where the section's own defaults would
    differ from it (exploration.epsilon's schedule); else {} (validation fills the defaults in,
    and names a path that is not a field)."""
    model: Any = Experiment
    default: Any = None
    for part in path:
        if model is Experiment and part == "method":
            method = data.get("method", {}).get("name", "ppo")
            model, default = METHOD_CONFIGS.get(method), None
            continue
        field = model.model_fields.get(part) if _is_model(model) else None
        if field is None:
            return {}
        default = field.get_default(call_default_factory=True)
        model = type(default) if isinstance(default, BaseModel) else None
    if not isinstance(default, BaseModel):
        return {}
    try:
        if type(default)() == default:
            return {}
    except ValidationError:  # the type has required fields (a Schedule's start)
        pass
    return default.model_dump(mode="json")


def preset(method: str, env_id: str) -> dict[str, Any]:
    """The tuned settings shipped for (method, env), or {} when there are none."""
    if method not in METHOD_CONFIGS:
        raise ConfigError(
            f"unknown method '{method}'"
            + did_you_mean(method, METHOD_CONFIGS)
            + f"; methods: {', '.join(METHOD_CONFIGS)}"
        )
    return copy.deepcopy(available_presets().get(method, {}).get(env_id, {}))


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
    """An experiment from a file, or from a method + env (their preset), then overrides. Without
    a file, ``--set method.name=...`` and ``--set env.id=...`` also choose the preset."""
    if file is not None:
        data = load_yaml(file)
        source = str(file)
    else:
        named = apply_overrides(
            {}, [o for o in overrides or [] if o.startswith(("method.name=", "env.id="))]
        )
        method = method or named.get("method", {}).get("name") or "ppo"
        env_id = env_id or named.get("env", {}).get("id") or "CartPole-v1"
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


# What `mentor show-defaults` prints for a field that has no default (DAgger's method.expert).
REQUIRED = "<required>"


def required_fields(method: str) -> list[str]:
    """The method's fields that have no default, as ``method.<name>`` paths."""
    model = METHOD_CONFIGS[method]
    return [f"method.{name}" for name, field in model.model_fields.items() if field.is_required()]


def describe_defaults(
    method: str = "ppo", model: type[BaseModel] = Experiment, indent: int = 0
) -> str:
    """The experiment tree for a method as commented YAML: each field, default and description."""
    lines = []
    for name, field in model.model_fields.items():
        pad = "  " * indent
        nested = field.annotation if _is_model(field.annotation) else None
        if model is Experiment and name == "method":
            nested = METHOD_CONFIGS[method]
        if nested is not None and nested is not Schedule:
            doc = (nested.__doc__ or "").strip().splitlines()[0]
            lines.append(f"{pad}{name}:  # {doc}")
            lines.append(describe_defaults(method, nested, indent + 1))
            continue
        if field.is_required():
            lines.append(f"{pad}{name}: {REQUIRED}  # (required) {field.description or ''}")
            continue
        default = field.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            default = default.model_dump(mode="json")
        value = yaml.safe_dump(default, default_flow_style=True).strip().removesuffix("...")
        value = value.strip() or "null"
        lines.append(f"{pad}{name}: {value}  # {field.description or ''}")
    return "\n".join(lines)
