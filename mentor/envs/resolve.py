"""Turn the env id of an experiment into a Gymnasium environment.

An id is either registered with Gymnasium (``CartPole-v1``, ``ale_py:ALE/Pong-v5``) or an entry
point ``package.module:ClassName`` that mentor imports and instantiates with the kwargs.
"""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium as gym

from mentor.errors import UnknownEnvError, did_you_mean


def is_entry_point(env_id: str) -> bool:
    """True for ``package.module:ClassName`` ids that are not registered with Gymnasium."""
    return ":" in env_id and env_id not in gym.registry and not _registered_with_module(env_id)


def _registered_with_module(env_id: str) -> bool:
    # Gymnasium's own "module:EnvId" form imports a module that registers EnvId.
    module, _, name = env_id.partition(":")
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return name in gym.registry


def env_class(env_id: str) -> type:
    """Import the class named by a ``package.module:ClassName`` entry point."""
    module_name, _, class_name = env_id.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UnknownEnvError(
            f"env '{env_id}': cannot import module '{module_name}' ({exc})"
        ) from None
    cls = getattr(module, class_name, None)
    if cls is None:
        names = [n for n in dir(module) if not n.startswith("_")]
        raise UnknownEnvError(
            f"env '{env_id}': module '{module_name}' has no attribute '{class_name}'"
            + did_you_mean(class_name, names)
        )
    return cls


def spec(env_id: str) -> gym.envs.registration.EnvSpec | None:
    """The Gymnasium spec of a registered id, None for an entry point; raise for an unknown id."""
    if is_entry_point(env_id):
        env_class(env_id)  # fail early with a clear message if it does not import
        return None
    if ":" in env_id:
        _registered_with_module(env_id)
        env_id = env_id.partition(":")[2]
    if env_id not in gym.registry:
        raise UnknownEnvError(
            f"unknown env id '{env_id}'"
            + did_you_mean(env_id, gym.registry.keys(), n=5)
            + "; give a registered Gymnasium id or an entry point 'package.module:ClassName'"
        )
    return gym.spec(env_id)


def make_env(env_id: str, kwargs: dict[str, Any] | None = None, **extra: Any) -> gym.Env:
    """Make one environment from an id or entry point (``extra`` is e.g. ``render_mode``)."""
    kwargs = {**(kwargs or {}), **extra}
    env_spec = spec(env_id)
    if env_spec is None:
        env = env_class(env_id)(**kwargs)
        if not isinstance(env, gym.Env):
            raise UnknownEnvError(f"env '{env_id}' is a {type(env).__name__}, not a gymnasium.Env")
        return env
    return gym.make(env_spec, **kwargs)
