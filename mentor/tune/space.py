"""The ``tune:`` section of an experiment file: the search space and how trials are scored.

Each key of ``space`` is a dotted path as ``--set`` takes it, and its value says how Optuna
samples it (one kind per parameter):

    method.learning_rate:     {log_uniform: [1.0e-5, 1.0e-2]}
    method.gae_lambda:        {uniform: [0.8, 1.0]}
    method.num_steps:         {int: [64, 1024], log: true}        # or step: 64
    agent.network.activation: {choice: [tanh, relu]}
    agent.network.hidden_sizes: {depth: [1, 3], width: [64, 128, 256]}   # depth x width
    method.clip_coef:         {choice: [0.1, 0.2, 0.3], when: {agent.network.shared: false}}

``depth`` x ``width`` is the architecture search: a number of layers, each of the same width;
``choice`` also takes lists (``[[64, 64], [256, 128]]``). ``when`` makes a parameter conditional:
it is sampled only in trials where each named path has the given value, among the parameters
sampled before it (in file order) or the experiment's own values. Every path and every bound is
checked against the experiment before trial 0 (``check_space``), with the errors and did-you-mean
of ``--set``: a space that cannot be tried fails at once, not at trial 17.
"""

from __future__ import annotations

import builtins
import json
import math
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from mentor.errors import ConfigError
from mentor.experiment import Experiment, apply_overrides, parse
from mentor.sections import Section

KINDS = ("log_uniform", "uniform", "int", "choice", "depth")


class Param(Section):
    """How one parameter is sampled: exactly one of the kinds, with its options."""

    log_uniform: tuple[float, float] | None = Field(None, description="[low, high], log scale.")
    uniform: tuple[float, float] | None = Field(None, description="[low, high].")
    int: tuple[builtins.int, builtins.int] | None = Field(
        None, description="[low, high], whole numbers."
    )
    step: float | None = Field(None, gt=0, description="int/uniform: the grid between values.")
    log: bool = Field(False, description="int: sample on a log scale.")
    choice: list[Any] | None = Field(None, description="The values to choose among.")
    depth: tuple[builtins.int, builtins.int] | None = Field(
        None, description="A list of equal widths: [low, high] number of entries (layers)."
    )
    width: list[builtins.int] | None = Field(
        None, description="With depth: the widths to choose among."
    )
    when: dict[str, Any] = Field(
        default_factory=dict, description="Sample only where these paths have these values."
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Param:
        kinds = [kind for kind in KINDS if getattr(self, kind) is not None]
        if len(kinds) != 1:
            raise ValueError(
                f"a parameter has exactly one of {', '.join(KINDS)}; got "
                f"{', '.join(kinds) or 'none'}"
            )
        kind = kinds[0]
        if kind in ("log_uniform", "uniform", "int", "depth"):
            low, high = getattr(self, kind)
            if low > high:
                raise ValueError(f"{kind}: low {low} > high {high}")
            if kind == "log_uniform" and low <= 0:
                raise ValueError(f"log_uniform: the range must be above 0, got low {low}")
            if kind == "int" and self.log and low <= 0:
                raise ValueError(f"int with log: the range must be above 0, got low {low}")
            if kind == "depth" and low < 1:
                raise ValueError(f"depth: at least 1 layer, got low {low}")
        if kind == "choice" and not self.choice:
            raise ValueError("choice: give at least one value to choose")
        if (kind == "depth") != (self.width is not None):
            raise ValueError("depth and width go together: depth [low, high], width [choices]")
        if kind == "depth" and not self.width:
            raise ValueError("width: give at least one width to choose")
        if self.step is not None and kind not in ("int", "uniform"):
            raise ValueError(f"step is for int and uniform parameters, not {kind}")
        if self.log and kind != "int":
            raise ValueError(f"log is for int parameters (log_uniform for floats), not {kind}")
        return self

    @property
    def kind(self) -> str:
        return next(kind for kind in KINDS if getattr(self, kind) is not None)

    def extremes(self) -> list[Any]:
        """Values that span the range: each is tried on the experiment before trial 0."""
        kind = self.kind
        if kind == "choice":
            return list(self.choice or [])
        if kind == "depth":
            low, high = self.depth or (1, 1)
            widths = self.width or []
            return [[w] * d for d in (low, high) for w in (min(widths), max(widths))]
        low, high = getattr(self, kind)
        return [low, high]


class PBTConfig(Section):
    """``mentor tune --pbt``: population-based training (``mentor/tune/pbt.py``)."""

    population: builtins.int = Field(8, ge=2, description="Members training side by side.")
    interval_steps: builtins.int = Field(
        20_000, ge=1, description="Env steps between two exploit-and-explore rounds."
    )
    quantile: float = Field(
        0.25, gt=0, le=0.5, description="The bottom share takes over members of the top share."
    )
    perturb: tuple[float, float] = Field(
        (0.8, 1.2), description="A taken-over float is multiplied by one of these."
    )
    resample_probability: float = Field(
        0.25, ge=0, le=1, description="Or drawn afresh from its range, with this probability."
    )


class TuneConfig(Section):
    """Step 9: what ``mentor tune`` searches and how it scores a trial."""

    space: dict[str, Param] = Field(
        default_factory=dict, description="Dotted path (as --set takes it) -> how to sample it."
    )
    seeds: list[int] = Field(
        default_factory=lambda: [0, 1, 2],
        min_length=1,
        description="Each trial trains once per seed; its score is the IQM over them.",
    )
    metric: Literal["auc", "final"] = Field(
        "auc",
        description="auc: the mean validation return over the budget (the last held after an "
        "early stop), which rewards learning early and steadily; final: the final evaluation's "
        "IQM.",
    )
    sampler: Literal["tpe", "random", "cmaes", "gp"] = Field("tpe", description="Optuna sampler.")
    sampler_seed: int = Field(0, ge=0, description="Seeds the sampler: the same trials again.")
    pruner: Literal["median", "halving", "hyperband", "none"] = Field(
        "median", description="Optuna pruner, fed each validation of each seed."
    )
    startup_trials: int = Field(
        5, ge=0, description="Trials before the sampler models and the median pruner prunes."
    )
    trials: int | None = Field(20, ge=1, description="Trials to run (None: until the timeout).")
    timeout: float | None = Field(None, gt=0, description="Seconds of tuning, then stop.")
    top_k: int = Field(3, ge=1, description="The best trials re-run on fresh seeds at the end.")
    recheck_seeds: list[int] = Field(
        default_factory=lambda: [1000, 1001, 1002, 1003, 1004],
        min_length=1,
        description="The fresh seeds of the re-run; best.yaml is the winner there.",
    )
    pbt: PBTConfig = Field(default_factory=PBTConfig, description="Population-based training.")
    heartbeat_seconds: int = Field(
        30, ge=1, description="A trial whose process stops beating this long x 3 is failed "
        "and re-queued (a killed mentor tune).",
    )  # fmt: skip

    @model_validator(mode="after")
    def _fresh_seeds(self) -> TuneConfig:
        shared = sorted(set(self.seeds) & set(self.recheck_seeds))
        if shared:
            raise ValueError(
                f"recheck_seeds must be fresh: {shared} are also in seeds (the re-run checks "
                "the winners on seeds the search never saw)"
            )
        return self


def override(path: str, value: Any) -> str:
    """``path=value`` as ``--set`` takes it (the value in YAML's flow style)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return f"{path}={text.removesuffix('...').strip()}"


def split_tune(data: dict[str, Any], source: str) -> tuple[dict[str, Any], TuneConfig]:
    """An experiment file's data without its ``tune:`` section, and the section validated."""
    if "tune" not in data or not isinstance(data["tune"], dict):
        raise ConfigError(
            f"{source}: no tune section; mentor tune reads the search space from one, e.g. "
            "tune: {space: {method.learning_rate: {log_uniform: [1.0e-5, 1.0e-2]}}}"
        )
    rest = {key: value for key, value in data.items() if key != "tune"}
    try:
        tune = TuneConfig.model_validate(data["tune"])
    except ValidationError as exc:  # one line per problem
        problems = "; ".join(
            f"tune.{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise ConfigError(f"{source}: {problems}") from None
    if not tune.space:
        raise ConfigError(f"{source}: tune.space is empty: name at least one parameter to tune")
    return rest, tune


def check_space(base: dict[str, Any], tune: TuneConfig, source: str) -> Experiment:
    """Fail before trial 0 on a path the experiment does not have (with did-you-mean) or a bound
    it refuses; returns the base experiment."""
    experiment = parse(base, source)
    for path, param in tune.space.items():
        for condition in param.when:
            if condition not in tune.space and _lookup(experiment, condition) is _MISSING:
                parse(apply_overrides(base, [override(condition, None)]), source)  # names it
        for value in param.extremes():
            try:
                parse(apply_overrides(base, [override(path, value)]), source)
            except ConfigError as exc:
                raise ConfigError(f"tune.space.{path} = {value!r}: {exc}") from None
    return experiment


_MISSING = object()


def _lookup(experiment: Experiment, path: str) -> Any:
    node: Any = experiment
    for part in path.split("."):
        if not hasattr(node, part):
            return _MISSING
        node = getattr(node, part)
    return node


def suggest(trial: Any, tune: TuneConfig, base: Experiment) -> dict[str, Any]:
    """One trial's values: each parameter of the space whose conditions hold, sampled by Optuna
    in file order. Lists (choices of lists, depth x width) are sampled through their JSON."""
    values: dict[str, Any] = {}
    for path, param in tune.space.items():
        if not all(_current(values, base, k) == v for k, v in param.when.items()):
            continue
        kind = param.kind
        if kind == "log_uniform":
            low, high = param.log_uniform  # type: ignore[misc]
            values[path] = trial.suggest_float(path, low, high, log=True)
        elif kind == "uniform":
            low, high = param.uniform  # type: ignore[misc]
            values[path] = trial.suggest_float(path, low, high, step=param.step)
        elif kind == "int":
            low, high = param.int  # type: ignore[misc]
            step = 1 if param.step is None else max(1, math.floor(param.step))
            values[path] = trial.suggest_int(path, low, high, step=step, log=param.log)
        elif kind == "choice":
            encoded = [json.dumps(c) if isinstance(c, list | dict) else c for c in param.choice]
            picked = trial.suggest_categorical(path, encoded)
            values[path] = param.choice[encoded.index(picked)]  # type: ignore[index]
        else:
            low, high = param.depth  # type: ignore[misc]
            depth = trial.suggest_int(f"{path}.depth", low, high)
            width = trial.suggest_categorical(f"{path}.width", param.width)
            values[path] = [width] * depth
    return values


def _current(values: dict[str, Any], base: Experiment, path: str) -> Any:
    if path in values:
        return values[path]
    value = _lookup(base, path)
    return None if value is _MISSING else value


def trial_experiment(
    base: dict[str, Any], values: dict[str, Any], source: str, **fixed: Any
) -> Experiment:
    """The experiment of one trial: the base data with the trial's values and ``fixed`` (seed,
    output_dir, name) applied, validated."""
    overrides = [override(path, value) for path, value in values.items()]
    overrides += [override(key, value) for key, value in fixed.items()]
    return parse(apply_overrides(base, overrides), source)
