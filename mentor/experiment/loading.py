"""Experiments from files, presets and ``--set`` overrides, and back to text.

load_yaml(path)            a file as a dict (safe YAML; 3e-4 is a number)
parse(data, source)        a dict as an Experiment; pydantic's errors as one ConfigError line
apply_overrides(data, ...) ``section.key=value`` overrides, each starting from its default
build(file | method+env)   a file, or a method's preset for an env, then the overrides
describe_defaults(method)  the whole tree as commented YAML (``mentor show-defaults``)
"""

from __future__ import annotations

import copy
import fnmatch
import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from mentor.errors import ConfigError, did_you_mean
from mentor.experiment.methods import METHOD_CONFIGS, method_config
from mentor.experiment.schema import Experiment
from mentor.sections import Schedule


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
    """Validate a plain dict into an Experiment, turning pydantic's errors into a ConfigError.
    A ``tune:`` section is ``mentor tune``'s (``mentor/tune/space.py``): one run leaves it out."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of sections, got {type(data).__name__}")
    data = {key: value for key, value in data.items() if key != "tune"}
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


# mentor's env variants (``mentor/envs/variants.py``) take the preset of the env they vary.
VARIANT_PRESETS = {"mentor/CartPole-": "CartPole-v1", "mentor/Pendulum-": "Pendulum-v1",
                   "mentor/LunarLander-": "LunarLander-v3"}  # fmt: skip


def preset(method: str, env_id: str) -> dict[str, Any]:
    """The tuned settings shipped for (method, env), or {} when there are none."""
    method_config(method)  # an unknown method: close matches
    presets = available_presets().get(method, {})
    if env_id not in presets:
        env_id = next((v for k, v in VARIANT_PRESETS.items() if env_id.startswith(k)), env_id)
    if env_id not in presets:  # a family's preset: ALE/*-v5 for every Atari game
        env_id = next((k for k in presets if "*" in k and fnmatch.fnmatchcase(env_id, k)), env_id)
    return copy.deepcopy(presets.get(env_id, {}))


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
