"""Safety around any env (issue 18): a shield between the agent and the env, and a per-step cost
of your own.

``Safe`` wraps the env ``env`` (an id or entry point, with ``env_kwargs``) and, as asked:

- ``shield``: ``package.module:function`` called as ``function(obs, action, env, **shield_kwargs)``
  before each step, with the observation the agent acted on, its action and the wrapped env
  (``env.unwrapped`` for its state); it returns the action to take: the same one, or a safe
  one. Every step where the action taken differs from the agent's is an intervention:
  ``info["shield_interventions"]`` is 1 there, else 0 (declare ``{shield_interventions: sum}``
  in ``env.info_keys`` for the count per episode in the run's metrics), and ``interventions``
  counts them over the wrapper's life. A returned action outside the action space is an
  ``EnvError`` naming it and the step.
- ``mask``: ``function(obs, env, **mask_kwargs)`` returns which of a discrete env's actions are
  allowed (booleans, one per action): given in ``info["action_mask"]``, so the agent samples
  among them (mentor's action masks); a step whose action was chosen with any action masked
  counts as an intervention.
- ``cost``: ``function(obs, action, next_obs, reward, info, **cost_kwargs)`` returns the step's
  cost, written to ``info[cost_key]`` (``cost`` by default) for ``experiment.constraint``.

Use it as the env: ``env: {id: mentor.envs.safety:Safe, kwargs: {env: CartPole-v1, cost:
my_costs:off_centre}}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from mentor.envs.resolve import make_env, resolve_entry_point
from mentor.envs.snapshot import SnapshotAttributes
from mentor.errors import ConfigError, EnvError


class Safe(SnapshotAttributes, gym.Wrapper):
    spec = None  # made by mentor from its entry point: nothing for Gymnasium to remake
    state_attributes = ("interventions", "steps", "last_obs", "allowed")

    def __init__(
        self,
        env: str,
        env_kwargs: dict[str, Any] | None = None,
        shield: str | None = None,
        shield_kwargs: dict[str, Any] | None = None,
        mask: str | None = None,
        mask_kwargs: dict[str, Any] | None = None,
        cost: str | None = None,
        cost_kwargs: dict[str, Any] | None = None,
        cost_key: str = "cost",
    ) -> None:
        super().__init__(make_env(env, env_kwargs or {}))
        if shield is None and mask is None and cost is None:
            raise ConfigError("mentor.envs.safety:Safe: give a shield, a mask or a cost function")
        if mask is not None and not isinstance(self.action_space, spaces.Discrete):
            raise ConfigError(
                "mentor.envs.safety:Safe: a mask allows or forbids each of a discrete env's "
                f"actions; '{env}' has {self.action_space}"
            )
        self.names = {"shield": shield, "mask": mask, "cost": cost}
        self.shield = _function(shield, "shield", shield_kwargs)
        self.mask = _function(mask, "mask", mask_kwargs)
        self.cost = _function(cost, "cost", cost_kwargs)
        self.cost_key = cost_key
        self.interventions = 0  # over the wrapper's life
        self.steps = 0
        self.last_obs: Any = None
        self.allowed: np.ndarray | None = None  # the mask the next action is chosen under

    def reset(self, **kwargs: Any) -> tuple:
        obs, info = self.env.reset(**kwargs)
        self.last_obs = obs
        return obs, self._extra(obs, info)

    def step(self, action: Any) -> tuple:
        self.steps += 1
        taken = action
        if self.shield is not None:
            taken = self.shield(self.last_obs, action, self.env)
            if not self.action_space.contains(_as_space(taken, self.action_space)):
                raise EnvError(
                    f"shield {self.names['shield']} returned action {taken!r} at step "
                    f"{self.steps}, outside the action space {self.action_space}"
                )
        intervened = not np.array_equal(np.asarray(taken), np.asarray(action))
        if self.allowed is not None and not self.allowed.all():
            intervened = True
        if self.shield is not None or self.mask is not None:
            self.interventions += int(intervened)
        obs, reward, terminated, truncated, info = self.env.step(taken)
        info = dict(info)
        if self.cost is not None:
            info[self.cost_key] = float(self.cost(self.last_obs, taken, obs, reward, info))
        self.last_obs = obs
        info = self._extra(obs, info)
        if self.shield is not None or self.mask is not None:
            info["shield_interventions"] = float(intervened)
        return obs, reward, terminated, truncated, info

    def _extra(self, obs: Any, info: dict) -> dict:
        """The mask for the next action (kept in ``allowed``) and a cost of 0 at a reset."""
        info = dict(info)
        if self.mask is not None:
            allowed = np.asarray(self.mask(obs, self.env), dtype=bool)
            if allowed.shape != (self.action_space.n,) or not allowed.any():
                raise EnvError(f"mask {self.names['mask']} returned {allowed.tolist()} at step "
                               f"{self.steps}: expected {self.action_space.n} booleans, at "
                               "least one True")  # fmt: skip
            info["action_mask"] = self.allowed = allowed
        if self.cost is not None and self.cost_key not in info:
            info[self.cost_key] = 0.0  # at reset
        return info


def _function(spec: str | None, what: str, kwargs: dict[str, Any] | None) -> Callable | None:
    if spec is None:
        return None
    function = resolve_entry_point(spec, what, ConfigError)
    if not callable(function):
        raise ConfigError(f"{what} '{spec}' is not a function")
    extra = dict(kwargs or {})
    return (lambda *args: function(*args, **extra)) if extra else function


def _as_space(action: Any, space: spaces.Space) -> Any:
    """The action as the space holds them (a Box's float32 array, a Discrete's integer)."""
    if isinstance(space, spaces.Box):
        array = np.asarray(action, dtype=space.dtype)
        return array.reshape(space.shape) if array.size == int(np.prod(space.shape)) else array
    if isinstance(space, spaces.Discrete):
        return np.int64(action) if np.ndim(action) == 0 else action
    return action
