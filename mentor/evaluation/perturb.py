"""Evaluation under perturbations: how much of its return an agent keeps when the world differs
from the one it trained in (``mentor eval --perturb``, ``mentor.evaluate(..., perturb=...)``).

Each perturbation is ``name=value``, repeatable:

    obs_noise=S      Gaussian noise on every observation dimension, standard deviation S times
                     the dimension's half-range (1 where unbounded): the units of RARL's budget
    action_noise=S   Box actions: Gaussian noise of S times each dimension's half-range, clipped
                     to the bounds; Discrete: a uniformly random action with probability S
    param.NAME=V     the env's parameter NAME set to V on every copy (``env.unwrapped.NAME``, as
                     curriculum.randomize sets them: Pendulum's m, l, g; CartPole's length)
    action_delay=K   the env gets each action K steps after the agent chose it (a slow actuator, a
                     network's lag); an episode's first K steps repeat its first action

The noise is drawn from a generator seeded with the evaluation's seed, so an evaluation repeats
exactly. Values below 0 are refused, as are noise on observations that are not vectors and
names that are none of these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gymnasium import spaces

from mentor.envs.tasks import apply_params
from mentor.errors import ConfigError, did_you_mean

KINDS = ("obs_noise", "action_noise", "action_delay", "param.NAME")


@dataclass(frozen=True)
class Perturbation:
    obs_noise: float = 0.0
    action_noise: float = 0.0
    params: dict[str, float] = field(default_factory=dict)
    action_delay: int = 0

    @classmethod
    def parse(cls, specs: list[str] | None) -> Perturbation | None:
        """The perturbation ``specs`` name (module docstring); None for none."""
        if not specs:
            return None
        values: dict[str, Any] = {"params": {}}
        for spec in specs:
            name, equals, text = spec.partition("=")
            name = name.strip()
            try:
                value = float(text)
            except ValueError:
                value = float("nan")
            if not equals or not np.isfinite(value):
                raise ConfigError(
                    f"--perturb '{spec}': give name=number, the name one of {', '.join(KINDS)}"
                )
            if name.startswith("param.") and len(name) > len("param."):
                values["params"][name.removeprefix("param.")] = value
                continue
            if name not in ("obs_noise", "action_noise", "action_delay"):
                raise ConfigError(
                    f"--perturb '{spec}': unknown perturbation '{name}'"
                    + did_you_mean(name, KINDS)
                    + f"; perturbations: {', '.join(KINDS)}"
                )
            if name == "action_delay" and (value != int(value) or value < 0):
                raise ConfigError(
                    f"--perturb '{spec}': action_delay counts steps; give a whole number >= 0"
                )
            if value < 0:
                raise ConfigError(
                    f"--perturb '{spec}': a perturbation budget below 0; give {name} >= 0 (0: none)"
                )
            values[name] = int(value) if name == "action_delay" else value
        return cls(**values)

    def describe(self) -> str:
        parts = [f"{k}={getattr(self, k):g}" for k in ("obs_noise", "action_noise", "action_delay")
                 if getattr(self, k)]  # fmt: skip
        parts += [f"param.{k}={v:g}" for k, v in self.params.items()]
        return ", ".join(parts) or "none"

    def to_dict(self) -> dict[str, Any]:
        return {"obs_noise": self.obs_noise, "action_noise": self.action_noise,
                "action_delay": self.action_delay, "params": dict(self.params)}  # fmt: skip


def half_range(space: spaces.Box) -> np.ndarray:
    """Each dimension's half-range (1 where unbounded), flat."""
    low, high = space.low.reshape(-1), space.high.reshape(-1)
    finite = np.isfinite(low) & np.isfinite(high)
    return np.where(finite, (high - low) / 2, 1.0).astype(np.float32)


class PerturbedVecEnv:
    """A ``VecEnv`` (single-agent) whose observations, actions or parameters are perturbed;
    everything else is the wrapped env's."""

    def __init__(self, venv: Any, perturbation: Perturbation) -> None:
        self.venv = venv
        self.perturbation = perturbation
        self.rng = np.random.default_rng(0)
        p = perturbation
        if p.obs_noise and not (
            isinstance(venv.observation_space, spaces.Box) and len(venv.obs_shape) == 1
        ):
            raise ConfigError(
                f"--perturb obs_noise: env '{venv.env_id}' has observations "
                f"{venv.observation_space}; observation noise is added to vectors (a Box)"
            )
        if p.action_noise and not isinstance(venv.action_space, spaces.Box | spaces.Discrete):
            raise ConfigError(
                f"--perturb action_noise: env '{venv.env_id}' has actions {venv.action_space}; "
                "action noise perturbs Box or Discrete actions"
            )
        if p.action_noise > 1 and isinstance(venv.action_space, spaces.Discrete):
            raise ConfigError(
                f"--perturb action_noise={p.action_noise:g}: for Discrete actions it is a "
                "probability, at most 1"
            )
        self.obs_scale = (
            half_range(venv.observation_space) if isinstance(venv.observation_space, spaces.Box)
            else None
        )  # fmt: skip
        if p.params:
            for env in getattr(venv.env, "envs", []):
                apply_params(env, p.params, venv.env_id)
        self.pending: np.ndarray | None = None  # action_delay: (K, copies, ...) chosen, not sent
        self.fresh = np.ones(venv.num_envs, dtype=bool)  # copies whose episode has no action yet

    def __getattr__(self, name: str) -> Any:
        return getattr(self.venv, name)

    def _observe(self, obs: np.ndarray) -> np.ndarray:
        if not self.perturbation.obs_noise:
            return obs
        noise = self.rng.normal(0.0, self.perturbation.obs_noise, obs.shape) * self.obs_scale
        return (obs + noise).astype(obs.dtype, copy=False)

    def reset(self, seed: int | None = None) -> np.ndarray:
        if seed is not None:
            self.rng = np.random.default_rng([seed, 4242])
        self.fresh[:] = True
        return self._observe(self.venv.reset(seed=seed))

    def _delayed(self, actions: np.ndarray) -> np.ndarray:
        """The actions chosen ``action_delay`` steps ago; a copy's first decision of an episode
        fills its queue (its next ones join the queue's end)."""
        delay = self.perturbation.action_delay
        if self.pending is None:
            self.pending = np.repeat(actions[None], delay, axis=0)
        first = self.fresh & ~self.venv.needs_reset  # a reset step's action is ignored
        self.pending[:, first] = actions[first]
        self.fresh[first] = False
        sent = self.pending[0].copy()
        self.pending[:-1] = self.pending[1:]
        self.pending[-1] = actions
        return sent

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        level, space = self.perturbation.action_noise, self.venv.action_space
        if level and isinstance(space, spaces.Box):
            flat = actions.reshape(len(actions), -1)
            noisy = flat + self.rng.normal(0.0, level, flat.shape) * half_range(space)
            actions = noisy.astype(actions.dtype, copy=False).reshape(actions.shape)
        elif level and isinstance(space, spaces.Discrete):
            swap = self.rng.random(len(actions)) < level
            random = self.rng.integers(0, int(space.n), len(actions))
            actions = np.where(swap, random, actions)
        if self.perturbation.action_delay:
            actions = self._delayed(actions)
        obs, rewards, terminated, truncated = self.venv.step(actions)
        self.fresh |= terminated | truncated
        return self._observe(obs), rewards, terminated, truncated
