"""``mentor/PointNav-v0``: 2-D point navigation, meta-learning's task family of goals (issue 20;
the 2D navigation of MAML, Finn et al. 2017, section 5.3).

A point starts at the origin and moves by its action times ``max_step``: a Box(2) in [-1, 1],
clipped there, so a step moves at most ``max_step`` on each axis (MAML's 0.1), for ``steps``
steps (then the episode is truncated: no terminal state). The reward
is minus its distance to the goal after the move. The observation is the point's position only:
the goal is the task, which a policy learns from the rewards (RL²'s memory) or by adapting its
weights on a few episodes (Reptile, first-order MAML: ``mentor/methods/reptile.py``).

The goal is ``goal_x``, ``goal_y``: attributes, so a task family sets it as it sets any env
parameter (``mentor/Trials-v0``'s ``params``, Reptile's ``method.params``, a curriculum's
randomize: ``{goal_x: [-0.5, 0.5], goal_y: [-0.5, 0.5]}`` is MAML's unit square of goals). With
``region`` the env draws a new goal itself at every reset instead, from its own generator:

    None          the goal stays where it is set (the default, (goal_x, goal_y))
    square        uniform in [-size, size]^2
    half_circle   uniform on the upper half circle of radius ``size`` (angle in [0, pi])

so one env is the multi-task distribution itself (a non-adaptive agent trained across goals).
``info["distance"]`` is the distance to the goal after each step. The whole state (position,
goal, step count, generator) is in mentor's snapshot protocol, so runs resume exactly.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from mentor.envs.snapshot import SnapshotAttributes
from mentor.errors import ConfigError

REGIONS = (None, "square", "half_circle")


class PointNav(SnapshotAttributes, gym.Env):
    """A point moving toward a goal it does not see (module docstring)."""

    state_attributes = ("position", "goal_x", "goal_y", "t", "_np_random", "_np_random_seed")

    def __init__(
        self,
        goal_x: float = 0.3,
        goal_y: float = 0.3,
        region: str | None = None,
        size: float = 0.5,
        steps: int = 20,
        max_step: float = 0.1,
    ) -> None:
        if region not in REGIONS:
            raise ConfigError(f"PointNav: region {region!r} is not one of {list(REGIONS)}")
        if int(steps) < 1 or not max_step > 0 or not size >= 0:
            raise ConfigError(f"PointNav: give steps >= 1, max_step > 0 and size >= 0, got "
                              f"{steps}, {max_step} and {size}")  # fmt: skip
        self.goal_x, self.goal_y = float(goal_x), float(goal_y)
        self.region, self.size = region, float(size)
        self.steps, self.max_step = int(steps), float(max_step)
        bound = self.max_step * self.steps  # the farthest the point can go
        self.observation_space = spaces.Box(-bound, bound, (2,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.position = np.zeros(2)
        self.t = 0

    @property
    def goal(self) -> np.ndarray:
        return np.array([self.goal_x, self.goal_y])

    def _draw_goal(self) -> None:
        if self.region == "square":
            self.goal_x, self.goal_y = (
                float(v) for v in self.np_random.uniform(-1, 1, 2) * self.size
            )
        elif self.region == "half_circle":
            angle = float(self.np_random.uniform(0.0, np.pi))
            self.goal_x, self.goal_y = self.size * np.cos(angle), self.size * np.sin(angle)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        self._draw_goal()
        self.position = np.zeros(2)
        self.t = 0
        return self.position.astype(np.float32), {"distance": float(np.linalg.norm(self.goal))}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        move = np.clip(np.asarray(action, np.float64).reshape(2), -1.0, 1.0) * self.max_step
        self.position = self.position + move
        self.t += 1
        distance = float(np.linalg.norm(self.position - self.goal))
        obs = self.position.astype(np.float32)
        return obs, -distance, False, self.t >= self.steps, {"distance": distance}
