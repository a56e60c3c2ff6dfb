"""PettingZoo envs: how an env id names one, how mentor makes it, and what it must satisfy.

An ``env.id`` names a PettingZoo env in one of two forms:

    mpe2.simple_spread_v3            a module with ``parallel_env(**kwargs)`` (PettingZoo's own
                                     layout: mpe2, pettingzoo.butterfly.cooperative_pong_v5, ...)
    my_envs.teams:make_team_env      a function or class returning a ``ParallelEnv`` (or an AEC
                                     env whose agents all act every cycle), given ``env.kwargs``

A dotted module name that Gymnasium does not register is a PettingZoo module; an entry point is
made once to tell (``env_kind``). mentor trains on the parallel API. An AEC env is converted with
PettingZoo's ``aec_to_parallel`` when its metadata says ``is_parallelizable``, else with its
``turn_based_aec_to_parallel``: at each step the agent whose turn it is acts and the others wait
(``turn_of``; ``core/ma_env.py`` makes their rows wait, ``core/returns.py: gae_over_turns``
credits what happens while they wait to their last move).

Agents become rows of one batch (``core/ma_env.py``); agents with different spaces are grouped
by space, their rows padded to one width (``core/agent_rows.py``).
"""

from __future__ import annotations

import re
from typing import Any

import gymnasium as gym
from gymnasium import spaces

from mentor.envs.resolve import (
    import_module,
    installed,
    missing_package,
    resolve_entry_point,
    spec,
)
from mentor.envs.spaces import describe, obs_encoder
from mentor.errors import (
    ConfigError,
    EnvError,
    MissingPackageError,
    UnknownEnvError,
    UnsupportedSpaceError,
)

_MODULE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")
_KINDS: dict[str, str] = {}  # entry point -> "gymnasium" | "pettingzoo", once made


def is_module_id(env_id: str) -> bool:
    """``mpe2.simple_spread_v3``: a dotted module name, not a registered Gymnasium id."""
    return bool(_MODULE.match(env_id)) and env_id not in gym.registry


def env_kind(env_id: str, kwargs: dict[str, Any] | None = None) -> str:
    """ "pettingzoo" for an id that names a PettingZoo env, else "gymnasium" (the id is then
    resolved as one, with its own errors). An entry point is made once, with ``kwargs``, to tell
    which it returns."""
    if is_module_id(env_id):
        return "pettingzoo"
    if ":" not in env_id or env_id in gym.registry or not installed("pettingzoo"):
        return "gymnasium"
    if env_id not in _KINDS:
        from mentor.envs.resolve import is_entry_point

        if not is_entry_point(env_id):
            return "gymnasium"
        target = resolve_entry_point(env_id, "env")
        if isinstance(target, type):
            _KINDS[env_id] = "pettingzoo" if _is_pettingzoo_class(target) else "gymnasium"
        else:
            env = _call(env_id, target, kwargs or {})
            _KINDS[env_id] = "pettingzoo" if _is_pettingzoo_env(env) else "gymnasium"
            env.close()
    return _KINDS[env_id]


def check_id(env_id: str) -> None:
    """Fail early, before anything is made, on an env id that names nothing: a Gymnasium id
    that is not registered (with close matches), or a PettingZoo module that does not import
    (naming it, or the package it needs)."""
    if not is_module_id(env_id):
        spec(env_id)
        return
    try:
        module = import_module(env_id, f"env '{env_id}'")
    except UnknownEnvError as exc:
        raise UnknownEnvError(f"{exc}{_close_modules(env_id)}") from None
    if not hasattr(module, "parallel_env") and not hasattr(module, "env"):
        raise ConfigError(
            f"env '{env_id}': module '{env_id}' has neither parallel_env() nor env(); a PettingZoo "
            "env module has them, or give 'package.module:function' returning a ParallelEnv"
        )


def _close_modules(env_id: str) -> str:
    """' (did you mean: mpe2.simple_spread_v3?)' for a misspelled module of a package that
    imports; '' otherwise."""
    import difflib
    import importlib
    import pkgutil

    parent, _, name = env_id.rpartition(".")
    try:
        package = importlib.import_module(parent)
    except ImportError:
        return ""
    names = [info.name for info in pkgutil.iter_modules(getattr(package, "__path__", []))]
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    return f" (did you mean: {', '.join(f'{parent}.{c}' for c in close)}?)" if close else ""


def is_multiagent(env_id: str, kwargs: dict[str, Any] | None = None) -> bool:
    return env_kind(env_id, kwargs) == "pettingzoo"


def _pettingzoo() -> Any:
    try:
        import pettingzoo
    except ImportError as exc:
        raise missing_package("PettingZoo envs", exc) from None
    return pettingzoo


def _is_pettingzoo_class(cls: type) -> bool:
    pz = _pettingzoo()
    return issubclass(cls, pz.ParallelEnv | pz.AECEnv)


def _is_pettingzoo_env(env: Any) -> bool:
    pz = _pettingzoo()
    return isinstance(env, pz.ParallelEnv | pz.AECEnv)


def _call(env_id: str, factory: Any, kwargs: dict[str, Any]) -> Any:
    """``factory(**kwargs)``, its argument errors named as the env's kwargs."""
    try:
        return factory(**kwargs)
    except TypeError as exc:
        if "argument" not in str(exc):
            raise
        raise ConfigError(
            f"env '{env_id}' could not be made with env.kwargs {kwargs}: {exc}"
        ) from None


def make_parallel_env(env_id: str, kwargs: dict[str, Any] | None = None) -> Any:
    """One copy of a PettingZoo env as a ``ParallelEnv`` (see the module docstring)."""
    pz = _pettingzoo()
    kwargs = dict(kwargs or {})
    label = f"env '{env_id}'"
    if is_module_id(env_id):
        try:
            module = import_module(env_id, label)
        except MissingPackageError:
            raise
        factory = getattr(module, "parallel_env", None) or getattr(module, "env", None)
        if factory is None:
            raise ConfigError(
                f"{label}: module '{env_id}' has neither parallel_env() nor env(); a PettingZoo "
                "env module has them, or give 'package.module:function' returning a ParallelEnv"
            )
    else:
        factory = resolve_entry_point(env_id, "env")
    env = _call(env_id, factory, kwargs)
    if isinstance(env, pz.AECEnv):
        from pettingzoo.utils.conversions import aec_to_parallel, turn_based_aec_to_parallel

        if env.metadata.get("is_parallelizable", False):
            env = aec_to_parallel(env)
        else:  # agents take turns: the one whose turn it is acts, the others wait (turn_of)
            env = turn_based_aec_to_parallel(env)
    if not isinstance(env, pz.ParallelEnv):
        raise ConfigError(f"{label} made a {type(env).__name__}, not a PettingZoo ParallelEnv")
    return env


def agent_spaces(env: Any, env_id: str) -> list[tuple[spaces.Space, spaces.Space]]:
    """Each of ``env``'s possible agents' observation and action space, in order. A space mentor
    cannot encode raises ``UnsupportedSpaceError`` naming the agent and space."""
    agents = list(env.possible_agents)
    if not agents:
        raise EnvError(f"env '{env_id}' has no possible_agents")
    out = []
    for agent in agents:
        obs_space, act_space = env.observation_space(agent), env.action_space(agent)
        try:
            obs_encoder(obs_space)
        except (TypeError, ValueError, EnvError) as exc:
            raise UnsupportedSpaceError(
                f"env '{env_id}': agent '{agent}' has observation space {describe(obs_space)}, "
                f"which mentor cannot encode ({exc})"
            ) from None
        out.append((obs_space, act_space))
    return out


def is_turn_based(env: Any) -> bool:
    """Whether ``env`` is a turn-based game (PettingZoo's ``turn_based_aec_to_parallel``)."""
    return type(env).__name__ == "turn_based_aec_to_parallel_wrapper"


def turn_of(env: Any) -> str | None:
    """The agent whose move is next in a turn-based game; None for a parallel env, or when no
    agent is left."""
    if not is_turn_based(env):
        return None
    aec = env.aec_env
    return aec.agent_selection if aec.agents else None


def has_state(env: Any) -> bool:
    """Whether the env gives a global state (``env.state()``, for a centralized critic)."""
    try:
        space = env.state_space
    except (AttributeError, NotImplementedError):
        return False
    return isinstance(space, spaces.Box)


def api_test(env_id: str, kwargs: dict[str, Any] | None = None, cycles: int = 100) -> list[str]:
    """PettingZoo's own ``parallel_api_test`` on a fresh copy: a failed check is an EnvError
    naming it; returns the warnings it gave (what the API allows but PettingZoo frowns on)."""
    import contextlib
    import io
    import warnings

    from pettingzoo.test import parallel_api_test

    env = make_parallel_env(env_id, kwargs)
    try:
        with (
            warnings.catch_warnings(record=True) as caught,
            contextlib.redirect_stdout(io.StringIO()),
        ):
            warnings.simplefilter("always")
            parallel_api_test(env, num_cycles=cycles)
    except AssertionError as exc:
        raise EnvError(
            f"env '{env_id}' fails PettingZoo's parallel API test: {exc or 'an assertion failed'}"
        ) from None
    finally:
        env.close()
    return list(dict.fromkeys(str(warning.message) for warning in caught))
