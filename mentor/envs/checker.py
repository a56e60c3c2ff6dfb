"""Check that an environment is one mentor can train on, and say plainly what is wrong if not.

``mentor check-env ID`` runs Gymnasium's own checker and then mentor's checks on a short seeded
rollout. Gymnasium's checker stops at the first failed assertion and looks at a step or two;
mentor's checks each judge every value the env returned, one check per fault case the project
knows (the FAULT-n numbers in the docstrings), and name what was expected and what was found,
so a broken env gets one readable line per problem instead of a traceback from inside training.

The checks, by name: ``gymnasium``, ``observation space``, ``action space``, ``rollout``,
``reset API`` (FAULT-1), ``step API`` (FAULT-2), ``obs shape`` (FAULT-3), ``obs dtype``
(FAULT-4), ``obs bounds`` (FAULT-5), ``finite values`` (FAULT-6), ``step types`` (FAULT-7),
``dict keys`` (FAULT-8) and ``determinism`` (FAULT-13). ``make`` appears only when the env
cannot even be constructed.

Steps are counted from 0 across the whole rollout, episodes too, so "step 7" is the eighth call
to ``step`` since ``reset(seed=...)``.
"""

from __future__ import annotations

import contextlib
import re
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from rich.console import Console
from rich.table import Table
from rich.text import Text

from mentor.envs.resolve import at_the_edge, make_env
from mentor.envs.spaces import MASK_KEY, check_action_space, obs_encoder
from mentor.errors import EnvError, MissingPackageError, UnknownEnvError, UnsupportedSpaceError

Severity = Literal["error", "warning"]

RESET_SIGNATURE = "reset(*, seed=None, options=None) -> (obs, info)"
STEP_SIGNATURE = "step(action) -> (obs, reward, terminated, truncated, info)"

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class CheckResult:
    """The verdict of one check: a failed ``error`` stops training, a ``warning`` does not."""

    name: str
    passed: bool
    message: str
    severity: Severity = "error"
    unsupported: bool = False  # failed for a valid space mentor does not support yet


@dataclass
class CheckReport:
    """Every check run on one env, in the order they ran."""

    env_id: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no error-severity check failed: warnings alone do not make an env unusable."""
        return not self.failures

    @property
    def failures(self) -> list[CheckResult]:
        """The failed error-severity results, the ones to fix before training."""
        return [r for r in self.results if not r.passed and r.severity == "error"]

    @property
    def warnings(self) -> list[CheckResult]:
        """The failed warning-severity results, worth a look but not blocking."""
        return [r for r in self.results if not r.passed and r.severity == "warning"]


# ---------------------------------------------------------------------------------------------
# The rollout: record what the env returned, untouched, so each check can judge it on its own.


@dataclass
class _Record:
    """One value returned by ``reset`` or ``step``, with where in the rollout it came from."""

    kind: Literal["reset", "step"]
    step: int  # for a step, its index; for a reset, the index of the step that follows it
    episode: int
    value: Any

    @property
    def where(self) -> str:
        return (
            f"step {self.step}" if self.kind == "step" else f"the reset of episode {self.episode}"
        )

    def parts(self) -> dict[str, Any]:
        """Name the items of the value as the API defines them; {} when it cannot be read.

        A bare (non-tuple) reset value is taken as the observation, and a 4-item step as the old
        Gym ``(obs, reward, done, info)``, so the other checks still see the observations of an
        env that gets the signature wrong.
        """
        value = self.value
        if self.kind == "reset":
            if isinstance(value, tuple):
                return dict(zip(("obs", "info"), value, strict=True)) if len(value) == 2 else {}
            return {"obs": value}
        if isinstance(value, tuple) and len(value) == 5:
            return dict(
                zip(("obs", "reward", "terminated", "truncated", "info"), value, strict=True)
            )
        if isinstance(value, tuple) and len(value) == 4:
            return dict(zip(("obs", "reward", "done", "info"), value, strict=True))
        return {}


@dataclass
class _Rollout:
    """The records of one rollout and, if the env raised, which call raised what."""

    seed: int
    records: list[_Record] = field(default_factory=list)
    failed_call: str | None = None
    error: Exception | None = None

    @property
    def num_steps(self) -> int:
        return sum(r.kind == "step" for r in self.records)

    @property
    def num_episodes(self) -> int:
        return sum(r.kind == "reset" for r in self.records)

    def observations(self) -> Iterator[tuple[_Record, Any]]:
        for record in self.records:
            parts = record.parts()
            if "obs" in parts:
                yield record, parts["obs"]

    def steps(self) -> Iterator[tuple[_Record, dict[str, Any]]]:
        for record in self.records:
            if record.kind == "step":
                yield record, record.parts()


def _episode_over(parts: dict[str, Any]) -> bool:
    """Whether a step ended its episode; False when the flags cannot be read as truth values."""
    try:
        return any(bool(parts[k]) for k in ("terminated", "truncated", "done") if k in parts)
    except Exception:
        return False


def _rollout(env: gym.Env, num_steps: int, seed: int, max_episode_steps: int | None) -> _Rollout:
    """Step ``env`` with seeded random actions, resetting whenever an episode ends; among the
    allowed ones where the env gives action masks (``envs/masks.py``), so that an env that
    raises on a masked action passes.

    The env is the unwrapped one, so nothing converts or checks its values on the way, and the
    time limit the registered spec would add is applied here instead.
    """
    rollout = _Rollout(seed=seed)
    call = f"reset(seed={seed})"
    try:
        env.action_space.seed(seed)
        value = env.reset(seed=seed)
        rollout.records.append(_Record("reset", 0, 0, value))
        episode, t = 0, 0
        for step in range(num_steps):
            call = f"step {step}"
            value = env.step(_sample(env.action_space, _mask_of(value)))
            record = _Record("step", step, episode, value)
            rollout.records.append(record)
            t += 1
            time_up = max_episode_steps is not None and t >= max_episode_steps
            if (_episode_over(record.parts()) or time_up) and step + 1 < num_steps:
                episode, t = episode + 1, 0
                call = f"the reset of episode {episode}"
                value = env.reset()
                rollout.records.append(_Record("reset", step + 1, episode, value))
    except Exception as exc:
        rollout.failed_call, rollout.error = call, exc
    return rollout


def _mask_of(value: Any) -> np.ndarray | None:
    """The action mask a reset's or step's result holds (its observation's entry, or its info's),
    as int8; None without one, or for a result too broken to hold one (the checks name that)."""
    try:
        obs, info = value[0], value[-1]
        for holder in (obs, info):
            if isinstance(holder, Mapping) and MASK_KEY in holder:
                return np.asarray(holder[MASK_KEY]).astype(np.int8).reshape(-1)
    except Exception:
        return None
    return None


def _sample(space: spaces.Space, mask: np.ndarray | None) -> Any:
    """A random action from the space's own seeded generator, among the allowed ones."""
    try:
        discrete = isinstance(space, spaces.Discrete)
        if mask is not None and discrete and mask.size == space.n and mask.any():
            return space.sample(mask=mask)
        if mask is not None and isinstance(space, spaces.MultiDiscrete):
            nvec = np.asarray(space.nvec).reshape(-1)
            parts = tuple(np.split(mask, np.cumsum(nvec)[:-1]))
            if mask.size == nvec.sum() and all(part.any() for part in parts):
                return space.sample(mask=parts)
    except Exception:  # a mask the space cannot take: the checks report the env's own problem
        pass
    return space.sample()


# ---------------------------------------------------------------------------------------------
# Small helpers for messages.


def _describe(exc: BaseException) -> str:
    text = _ANSI.sub("", str(exc)).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _fmt(value: Any) -> str:
    """A short, numpy-free rendering of a value: ``0.5`` rather than ``np.float32(0.5)``."""
    if (isinstance(value, np.ndarray) and value.ndim == 0) or isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, np.ndarray):
        return np.array2string(value, precision=4, threshold=8)
    return repr(value)


def _index(idx: tuple[int, ...]) -> str:
    """``[2]`` or ``[1, 3]`` for an element index, nothing for a scalar."""
    return f"[{', '.join(str(int(i)) for i in idx)}]" if idx else ""


def _type_name(value: Any) -> str:
    return type(value).__name__


def _leaves(space: gym.Space, obs: Any, path: str = "obs") -> Iterator[tuple[str, gym.Space, Any]]:
    """Pair each non-Dict sub-space with its part of ``obs``, named by key path.

    Keys missing from the observation are skipped: the ``dict keys`` check reports them.
    """
    if isinstance(space, spaces.Dict):
        if isinstance(obs, Mapping):
            for key, sub in space.spaces.items():
                if key in obs:
                    yield from _leaves(sub, obs[key], f"{path}[{key!r}]")
        return
    yield path, space, obs


def _bounds(space: gym.Space) -> tuple[np.ndarray, np.ndarray] | None:
    """The lowest and highest value a space allows, element-wise; None for other spaces."""
    if isinstance(space, spaces.Box):
        return space.low, space.high
    if isinstance(space, spaces.Discrete):
        return np.asarray(space.start), np.asarray(space.start + space.n - 1)
    if isinstance(space, spaces.MultiDiscrete):
        return space.start, space.start + space.nvec - 1
    if isinstance(space, spaces.MultiBinary):
        return np.zeros(space.shape, np.int8), np.ones(space.shape, np.int8)
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) or (
        isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "biuf"
    )


def _first_difference(a: Any, b: Any, path: str) -> str | None:
    """Describe where two returned values first differ, or None when they are equal.

    NaN equals NaN here: an env that returns NaN the same way twice is broken but deterministic.
    """
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        if set(a) != set(b):
            return f"{path or 'the returned value'} has keys {sorted(a)} vs {sorted(b)}"
        for key in a:
            found = _first_difference(a[key], b[key], f"{path}[{key!r}]")
            if found:
                return found
        return None
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        if len(a) != len(b):
            return f"{path} has {len(a)} vs {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = _first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    x, y = np.asarray(a), np.asarray(b)
    if x.shape != y.shape:
        return f"{path} has shape {x.shape} vs {y.shape}"
    if x.dtype.kind in "biufc" and y.dtype.kind in "biufc":
        differs = np.asarray(x != y)
        if x.dtype.kind in "fc" and y.dtype.kind in "fc":
            differs &= ~(np.isnan(x) & np.isnan(y))
    else:
        differs = np.asarray(a != b) if x.ndim == 0 else np.asarray(x != y)
    if not differs.any():
        return None
    idx = tuple(np.argwhere(differs)[0]) if differs.ndim else ()
    return f"{path}{_index(idx)} was {_fmt(x[idx])} vs {_fmt(y[idx])}"


# ---------------------------------------------------------------------------------------------
# The checks. Each returns one result (the gymnasium check a list); check_env guards them all.


def _check_gymnasium(make: Callable[[], gym.Env]) -> list[CheckResult]:
    """Gymnasium's ``check_env`` on a fresh, unwrapped instance; its warnings become warnings.

    A fresh instance because the checker resets and steps the env in ways the rollout should
    not inherit; unwrapped because Gymnasium's checker expects the raw env.
    """
    name = "gymnasium"
    env = make()
    error: Exception | None = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            gymnasium_check_env(env.unwrapped, skip_render_check=True)
        except Exception as exc:
            error = exc
        finally:
            _close(env)
    results = []
    if error is not None:
        results.append(CheckResult(name, False, f"Gymnasium's checker raised {_describe(error)}"))
    seen: set[str] = set()
    for warning in caught:
        text = _ANSI.sub("", str(warning.message)).strip().removeprefix("WARN: ")
        if text not in seen:
            seen.add(text)
            results.append(CheckResult(name, False, text, severity="warning"))
    if not results:
        results.append(CheckResult(name, True, "Gymnasium's env checker passed with no warnings"))
    return results


def _check_observation_space(env: gym.Env) -> CheckResult:
    """The observation space is one mentor's networks can read."""
    name = "observation space"
    try:
        obs_encoder(env.observation_space)  # the encoder training uses decides what is supported
    except UnsupportedSpaceError as exc:
        return CheckResult(name, False, str(exc), unsupported=True)
    except EnvError as exc:
        return CheckResult(name, False, str(exc))
    return CheckResult(name, True, str(env.observation_space))


def _check_action_space(env: gym.Env) -> CheckResult:
    """The action space is one mentor's policies can produce."""
    name = "action space"
    try:
        check_action_space(env.action_space)
    except UnsupportedSpaceError as exc:
        return CheckResult(name, False, str(exc), unsupported=True)
    except EnvError as exc:
        return CheckResult(name, False, str(exc))
    return CheckResult(name, True, str(env.action_space))


def _check_rollout(rollout: _Rollout) -> CheckResult:
    """The env survives ``num_steps`` seeded random steps without raising."""
    name = "rollout"
    if rollout.error is not None:
        return CheckResult(
            name,
            False,
            f"{rollout.failed_call} raised {_describe(rollout.error)} "
            f"(after {rollout.num_steps} steps)",
        )
    return CheckResult(
        name,
        True,
        f"{rollout.num_steps} random steps over {rollout.num_episodes} "
        f"episode{'s' if rollout.num_episodes != 1 else ''} from reset(seed={rollout.seed})",
    )


def _check_reset_api(rollout: _Rollout) -> CheckResult:
    """FAULT-1: ``reset`` takes ``seed``/``options`` keywords and returns ``(obs, info)``."""
    name = "reset API"
    if isinstance(rollout.error, TypeError) and (rollout.failed_call or "").startswith("reset"):
        return CheckResult(
            name,
            False,
            f"{rollout.failed_call} raised {_describe(rollout.error)}; expected {RESET_SIGNATURE}",
        )
    for record in rollout.records:
        if record.kind != "reset":
            continue
        value = record.value
        if not isinstance(value, tuple):
            found = f"a bare {_type_name(value)} (the observation alone?)"
        elif len(value) != 2:
            found = f"a tuple of {len(value)} items"
        elif not isinstance(value[1], dict):
            found = f"(obs, {_type_name(value[1])}): info must be a dict"
        else:
            continue
        return CheckResult(
            name, False, f"expected {RESET_SIGNATURE}; {record.where} returned {found}"
        )
    return CheckResult(name, True, f"all {rollout.num_episodes} resets returned (obs, info)")


def _check_step_api(rollout: _Rollout) -> CheckResult:
    """FAULT-2: ``step`` returns the 5-tuple ``(obs, reward, terminated, truncated, info)``."""
    name = "step API"
    for record, _ in rollout.steps():
        value = record.value
        if isinstance(value, tuple) and len(value) == 5:
            continue
        if isinstance(value, tuple):
            found = f"{len(value)} items"
            if len(value) == 4:
                found += " (the old Gym API's (obs, reward, done, info)?)"
        else:
            found = f"a {_type_name(value)}, not a tuple"
        return CheckResult(
            name, False, f"expected 5 items, {STEP_SIGNATURE}; {record.where} returned {found}"
        )
    return CheckResult(name, True, f"all {rollout.num_steps} steps returned 5 items")


def _check_obs_shape(rollout: _Rollout, space: gym.Space) -> CheckResult:
    """FAULT-3: every observation (every Dict entry) has the shape its space declares."""
    name = "obs shape"
    count = 0
    for record, obs in rollout.observations():
        count += 1
        for path, leaf, value in _leaves(space, obs):
            found = np.shape(value)
            if leaf.shape is not None and found != leaf.shape:
                return CheckResult(
                    name,
                    False,
                    f"{path} at {record.where}: expected shape {leaf.shape} "
                    f"(the observation space's), found {found}",
                )
    return CheckResult(name, True, f"all {count} observations have the space's shape")


def _check_obs_dtype(rollout: _Rollout, space: gym.Space) -> CheckResult:
    """FAULT-4: observations have the space's dtype (any integer type for a Discrete entry)."""
    name = "obs dtype"
    for record, obs in rollout.observations():
        for path, leaf, value in _leaves(space, obs):
            found = np.asarray(value).dtype
            if isinstance(leaf, spaces.Discrete):
                if not np.issubdtype(found, np.integer):
                    return CheckResult(
                        name,
                        False,
                        f"{path} at {record.where}: expected an integer (Discrete space), "
                        f"found dtype {found}",
                        severity="warning",
                    )
            elif leaf.dtype is not None and found != leaf.dtype:
                return CheckResult(
                    name,
                    False,
                    f"{path} at {record.where}: expected dtype {leaf.dtype} "
                    f"(the observation space's), found {found}",
                    severity="warning",
                )
    return CheckResult(name, True, "observations have the space's dtype")


def _check_obs_bounds(rollout: _Rollout, space: gym.Space) -> CheckResult:
    """FAULT-5: every observation, on every step, lies within the space's bounds.

    A warning rather than an error: many envs declare loose or wrong bounds and train fine, but
    normalisation that trusts the bounds will not.
    """
    name = "obs bounds"
    first: str | None = None
    outside_count = 0
    for record, obs in rollout.observations():
        for path, leaf, value in _leaves(space, obs):
            bounds = _bounds(leaf)
            array = np.asarray(value)
            if bounds is None or array.shape != leaf.shape or array.dtype.kind not in "biuf":
                continue
            low, high = (np.broadcast_to(b, array.shape) for b in bounds)
            outside = (array < low) | (array > high)
            if outside.any():
                outside_count += 1
                if first is None:
                    idx = tuple(np.argwhere(outside)[0]) if outside.ndim else ()
                    first = (
                        f"first at {record.where}: {path}{_index(idx)} = {_fmt(array[idx])}, "
                        f"outside [{_fmt(low[idx])}, {_fmt(high[idx])}]"
                    )
                break
    if first is not None:
        return CheckResult(
            name,
            False,
            f"{outside_count} observations were outside the space's bounds; {first}",
            severity="warning",
        )
    return CheckResult(name, True, "every observation lies within the space's bounds")


def _check_finite(rollout: _Rollout, space: gym.Space) -> CheckResult:
    """FAULT-6: no NaN or infinity in any observation or reward; one NaN poisons the network."""
    name = "finite values"
    for record in rollout.records:
        parts = record.parts()
        if "obs" in parts:
            for path, _, value in _leaves(space, parts["obs"]):
                array = np.asarray(value)
                if array.dtype.kind not in "fc":
                    continue
                bad = ~np.isfinite(array)
                if bad.any():
                    idx = tuple(np.argwhere(bad)[0]) if bad.ndim else ()
                    return CheckResult(
                        name,
                        False,
                        f"{path}{_index(idx)} at {record.where} is {_fmt(array[idx])}; "
                        "expected finite numbers",
                    )
        reward = parts.get("reward")
        if _is_number(reward) and not np.isfinite(float(reward)):
            return CheckResult(
                name, False, f"reward at {record.where} is {_fmt(reward)}; expected a finite number"
            )
    return CheckResult(name, True, "observations and rewards are all finite")


def _check_step_types(rollout: _Rollout) -> CheckResult:
    """FAULT-7: reward is a number, terminated/truncated are bools, info is a dict.

    A numpy bool counts as a bool. An int flag is refused: ``terminated | truncated`` then stops
    meaning "the episode ended" and vectorised code that masks with it silently goes wrong.
    """
    name = "step types"
    for record, parts in rollout.steps():
        for flag in ("terminated", "truncated"):
            if flag in parts and not isinstance(parts[flag], bool | np.bool_):
                value = parts[flag]
                return CheckResult(
                    name,
                    False,
                    f"{flag} at {record.where}: expected a bool (a numpy bool is fine), "
                    f"found {_type_name(value)} {_fmt(value)}",
                )
        if "reward" in parts and not _is_number(parts["reward"]):
            return CheckResult(
                name,
                False,
                f"reward at {record.where}: expected a number, found {_type_name(parts['reward'])}",
            )
        if "info" in parts and not isinstance(parts["info"], dict):
            return CheckResult(
                name,
                False,
                f"info at {record.where}: expected a dict, found {_type_name(parts['info'])}",
            )
    return CheckResult(name, True, "rewards are numbers, flags are bools, infos are dicts")


def _dict_key_problem(space: spaces.Dict, obs: Any, path: str, where: str) -> str | None:
    """Describe the first missing or extra key in ``obs`` (nested Dicts too), or None."""
    keys = list(space.spaces)
    if not isinstance(obs, Mapping):
        return f"{path} at {where} is a {_type_name(obs)}; expected a dict with keys {keys}"
    missing = [f"is missing key {k!r}" for k in keys if k not in obs]
    extra = [f"has extra key {k!r}" for k in obs if k not in space.spaces]
    if missing or extra:
        return f"{path} at {where} {' and '.join(missing + extra)}; the space's keys are {keys}"
    for key, sub in space.spaces.items():
        if isinstance(sub, spaces.Dict):
            problem = _dict_key_problem(sub, obs[key], f"{path}[{key!r}]", where)
            if problem:
                return problem
    return None


def _check_dict_keys(rollout: _Rollout, space: gym.Space) -> CheckResult:
    """FAULT-8: a Dict observation has exactly the space's keys, no more and no fewer."""
    name = "dict keys"
    if not isinstance(space, spaces.Dict):
        return CheckResult(
            name, True, f"not a Dict space ({type(space).__name__}): nothing to check"
        )
    for record, obs in rollout.observations():
        problem = _dict_key_problem(space, obs, "obs", record.where)
        if problem:
            return CheckResult(name, False, problem)
    return CheckResult(name, True, f"every observation has keys {list(space.spaces)}")


def _comparable(record: _Record) -> dict[str, Any]:
    """What two deterministic runs must agree on: everything returned except ``info``."""
    parts = record.parts()
    if not parts:
        return {"return value": record.value}
    return {k: v for k, v in parts.items() if k != "info"}


def _check_determinism(
    first: _Rollout, make: Callable[[], gym.Env], num_steps: int, max_episode_steps: int | None
) -> CheckResult:
    """FAULT-13: a second fresh instance, same seed and actions, replays the rollout exactly.

    An env that draws from a global or unseeded RNG cannot be reproduced from a run's seed, so
    its results cannot be either.
    """
    name = "determinism"
    env = make()
    try:
        second = _rollout(at_the_edge(env.unwrapped), num_steps, first.seed, max_episode_steps)
    finally:
        _close(env)
    same_seed = f"two instances reset with seed={first.seed} and given the same actions"
    for a, b in zip(first.records, second.records, strict=False):
        if a.kind != b.kind or a.step != b.step:
            return CheckResult(
                name, False, f"{same_seed} diverged: one had {a.where}, the other {b.where}"
            )
        difference = _first_difference(_comparable(a), _comparable(b), "")
        if difference:
            # The path starts with the part's key, e.g. "['obs'][2]"; show it as obs[2].
            part = re.sub(r"^\['([^']*)'\]", r"\1", difference)
            return CheckResult(name, False, f"{same_seed} diverged at {a.where}: {part}")
    if len(first.records) != len(second.records):
        return CheckResult(
            name,
            False,
            f"{same_seed} diverged: one ran {first.num_steps} steps, the other "
            f"{second.num_steps} (one raised where the other did not)",
        )
    return CheckResult(
        name, True, f"{same_seed} agreed on every obs, reward and flag ({first.num_steps} steps)"
    )


# ---------------------------------------------------------------------------------------------
# Running them.


def _close(env: gym.Env) -> None:
    """Close an env, ignoring a broken ``close``: the checker reports on the env, not on cleanup."""
    with contextlib.suppress(Exception):
        env.close()


def _guarded(name: str, check: Callable[..., Any], *args: Any) -> list[CheckResult]:
    """Run one check; an exception (a value it could not read) becomes a failed result."""
    try:
        result = check(*args)
    except Exception as exc:
        return [CheckResult(name, False, f"could not check: {_describe(exc)}")]
    return result if isinstance(result, list) else [result]


def check_env(
    env_id: str,
    kwargs: dict[str, Any] | None = None,
    num_steps: int = 200,
    seed: int = 0,
    full: bool = True,
) -> CheckReport:
    """Run Gymnasium's checker and mentor's own checks on an env and report every result.

    ``env_id`` is a registered id or a ``package.module:ClassName`` entry point, made with
    ``kwargs``. An unknown id raises ``UnknownEnvError``, an env that needs a package not
    installed here ``MissingPackageError``; anything else a broken env does becomes a failed check
    in the report, never an exception. ``full=False`` skips Gymnasium's checker
    and the determinism rerun: the quick API checks ``preflight`` runs before training.
    """
    report = CheckReport(env_id)
    make = partial(make_env, env_id, kwargs)
    try:
        env = make()
    except (UnknownEnvError, MissingPackageError):
        raise
    except Exception as exc:
        report.results.append(CheckResult("make", False, f"making the env raised {_describe(exc)}"))
        return report
    add = report.results.extend
    try:
        max_episode_steps = env.spec.max_episode_steps if env.spec is not None else None
        raw = at_the_edge(env.unwrapped)  # as mentor's encoders see it (MiniGrid's view)
        if full:
            add(_guarded("gymnasium", _check_gymnasium, make))
        add(_guarded("observation space", _check_observation_space, raw))
        add(_guarded("action space", _check_action_space, raw))
        rollout = _rollout(raw, num_steps, seed, max_episode_steps)
        add(_guarded("rollout", _check_rollout, rollout))
        add(_guarded("reset API", _check_reset_api, rollout))
        if rollout.records:
            obs_space = getattr(raw, "observation_space", None)
            add(_guarded("step API", _check_step_api, rollout))
            add(_guarded("obs shape", _check_obs_shape, rollout, obs_space))
            add(_guarded("obs dtype", _check_obs_dtype, rollout, obs_space))
            add(_guarded("obs bounds", _check_obs_bounds, rollout, obs_space))
            add(_guarded("finite values", _check_finite, rollout, obs_space))
            add(_guarded("step types", _check_step_types, rollout))
            add(_guarded("dict keys", _check_dict_keys, rollout, obs_space))
            if full:
                add(_guarded("determinism", _check_determinism, rollout, make, num_steps,
                             max_episode_steps))  # fmt: skip
    finally:
        _close(env)
    return report


def preflight(
    env_id: str,
    kwargs: dict[str, Any] | None = None,
    num_steps: int = 64,
    finite: bool = True,
    restartable: bool = False,
) -> None:
    """Before training: raise an ``EnvError`` that says what is wrong, so a broken env is reported
    as such instead of as a traceback from inside the vector env. ``finite=False`` (the
    experiment's ``env.check_finite: false``) lets NaN and infinity through. ``restartable``
    (async workers that restart a failing env) turns an env that merely raises during the
    rollout into a warning: training restarts it, as it would any later failure.

    An env that needs a package not installed here raises ``MissingPackageError``; one with a
    valid space mentor does not support yet ``UnsupportedSpaceError``; one that cannot be made
    ``EnvError`` with what making it raised; one that breaks the API ``EnvError`` naming each
    failed check.
    """
    report = check_env(env_id, kwargs, num_steps=num_steps, full=False)
    failures = [r for r in report.failures if finite or r.name != "finite values"]
    if restartable and [r.name for r in failures] == ["rollout"]:
        print(
            f"warning: env '{env_id}': {failures[0].message}; its async workers restart it "
            "when it fails in training (env.max_restarts)",
            file=sys.stderr,
        )
        return
    unsupported = [r for r in failures if r.unsupported]
    broken = [r for r in failures if not r.unsupported]
    details = f"'mentor check-env {env_id}' shows the full report"
    api = "; ".join(f"{r.name}: {r.message}" for r in broken)
    if unsupported:
        also = f"; it also breaks the Gymnasium API ({api})" if broken else ""
        raise UnsupportedSpaceError(
            f"env '{env_id}': {'; '.join(r.message for r in unsupported)}{also}; {details}"
        )
    if [r.name for r in broken] == ["make"]:
        raise EnvError(f"env '{env_id}' cannot be made: {broken[0].message}; {details}")
    if broken:
        raise EnvError(f"env '{env_id}' breaks the Gymnasium API ({api}); {details}")


def render_report(report: CheckReport, console: Console) -> None:
    """Print the report as a table (check, ✓/✗/!, message) and a one-line verdict."""
    table = Table(title=f"mentor check-env {report.env_id}", title_justify="left")
    table.add_column("check", style="bold", no_wrap=True)
    table.add_column("result", justify="center")
    table.add_column("message", overflow="fold")
    for result in report.results:
        if result.passed:
            mark = Text("✓", style="green")
        elif result.severity == "warning":
            mark = Text("!", style="yellow")
        else:
            mark = Text("✗", style="bold red")
        # Text, not a markup string: messages hold brackets such as obs['position'].
        table.add_row(Text(result.name), mark, Text(result.message))
    console.print(table)

    errors, warns = len(report.failures), len(report.warnings)
    warned = f", with {warns} warning{'s' if warns != 1 else ''}" if warns else ""
    if report.ok:
        verdict = Text(f"✓ {report.env_id} passed{warned}: mentor can train on it.", "green")
    elif all(r.unsupported for r in report.failures):
        verdict = Text(
            f"✗ {report.env_id} uses a space mentor does not support yet{warned}: mentor cannot "
            "train on it.",
            "bold red",
        )
    else:
        verdict = Text(
            f"✗ {report.env_id} failed {errors} check{'s' if errors != 1 else ''}{warned}: "
            "fix the errors above before training on it.",
            "bold red",
        )
    console.print(verdict)
