"""Constrained control tasks shipped with mentor (issue 18): each reports a per-step ``cost``
in ``info`` (0 or 1), for training under ``experiment.constraint`` (safety-gymnasium, which has
such tasks, pins gymnasium 0.28 and cannot be installed beside Gymnasium 1.x).

- ``CartPoleSlow``: CartPole-v1; the cost of a step is the cart's speed (m/s): a balance that
  moves the cart less. (A cost for leaving a central region was tried first: whether PPO's
  balancer drifts out of it is a lottery of the seed, 0 or 420 steps of 500.)
- ``PendulumGentle``: Pendulum-v1; cost 1 for each step the angular speed is above
  ``max_speed`` rad/s (a swing-up wants speed; the constraint asks for a gentler one).
- ``PointGoal``: a point on a plane pushed by a force in [-1, 1]^2 towards a goal, a round hazard
  on the straight path; reward the progress towards the goal (and 1 on reaching it), cost 1 for
  each step inside the hazard. The goal's and the hazard's places are drawn at each reset.

Use them as entry points: ``env.id: mentor.envs.constrained:PointGoal``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from mentor.envs.snapshot import SnapshotAttributes


class CartPoleSlow(SnapshotAttributes, gym.Wrapper):
    spec = None  # made by mentor from its entry point: nothing for Gymnasium to remake

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(gym.make("CartPole-v1", **kwargs))

    def step(self, action: Any) -> tuple:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, {**info, "cost": float(abs(obs[1]))}

    def reset(self, **kwargs: Any) -> tuple:
        obs, info = self.env.reset(**kwargs)
        return obs, {**info, "cost": 0.0}


class PendulumGentle(SnapshotAttributes, gym.Wrapper):
    spec = None

    def __init__(self, max_speed: float = 5.0, **kwargs: Any) -> None:
        super().__init__(gym.make("Pendulum-v1", **kwargs))
        self.max_speed = max_speed

    def step(self, action: Any) -> tuple:
        obs, reward, terminated, truncated, info = self.env.step(action)
        cost = float(abs(obs[2]) > self.max_speed)
        return obs, reward, terminated, truncated, {**info, "cost": cost}

    def reset(self, **kwargs: Any) -> tuple:
        obs, info = self.env.reset(**kwargs)
        return obs, {**info, "cost": 0.0}


class PointGoal(SnapshotAttributes, gym.Env):
    """A point mass (position, velocity; damping 0.9, force scale 0.01 a step: a speed of at
    most 0.1 a step) in the square [-1, 1]^2, starting near a corner, with a goal near the
    opposite corner and a hazard of radius ``hazard_radius`` half-way between. Observation:
    position, velocity, the goal's and the hazard's offsets from the point. ``max_steps`` an
    episode; reaching the goal (within 0.1) ends it."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}
    state_attributes = (
        "position",
        "velocity",
        "goal",
        "hazard",
        "steps",
        "_np_random",
        "_np_random_seed",
    )

    def __init__(self, hazard_radius: float = 0.35, max_steps: int = 150) -> None:
        self.hazard_radius, self.max_steps = hazard_radius, max_steps
        self.observation_space = spaces.Box(-4.0, 4.0, (8,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.position = np.zeros(2)
        self.velocity = np.zeros(2)
        self.goal = np.zeros(2)
        self.hazard = np.zeros(2)
        self.steps = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple:
        super().reset(seed=seed)
        rng = self.np_random
        self.position = np.array([-0.8, -0.8]) + rng.uniform(-0.1, 0.1, 2)
        self.goal = np.array([0.8, 0.8]) + rng.uniform(-0.1, 0.1, 2)
        middle = (self.position + self.goal) / 2
        self.hazard = middle + rng.uniform(-0.1, 0.1, 2)
        self.velocity = np.zeros(2)
        self.steps = 0
        return self._obs(), {"cost": 0.0}

    def step(self, action: Any) -> tuple:
        force = np.clip(np.asarray(action, dtype=np.float64).reshape(2), -1.0, 1.0)
        before = np.linalg.norm(self.goal - self.position)
        self.velocity = 0.9 * self.velocity + 0.01 * force
        self.position = np.clip(self.position + self.velocity, -1.0, 1.0)
        self.steps += 1
        distance = np.linalg.norm(self.goal - self.position)
        reached = distance < 0.1
        reward = 10.0 * (before - distance) + (1.0 if reached else 0.0)
        cost = float(np.linalg.norm(self.hazard - self.position) < self.hazard_radius)
        truncated = self.steps >= self.max_steps and not reached
        return self._obs(), float(reward), bool(reached), truncated, {"cost": cost}

    def _obs(self) -> np.ndarray:
        return np.concatenate([self.position, self.velocity * 10, self.goal - self.position,
                               self.hazard - self.position]).astype(np.float32)  # fmt: skip
