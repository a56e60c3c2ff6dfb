"""Env variants that ship with mentor: Gymnasium's classic tasks with other physics, for transfer
and continual learning (issue 16). Registered under the ``mentor/`` namespace, so usable
wherever an env id is (``mentor train ppo mentor/CartPole-LongPole-v1``); each also takes its
parameters as env kwargs (``env: {id: mentor/CartPole-v1, kwargs: {length: 0.75}}``).

    mentor/CartPole-v1            CartPole-v1 with kwargs length, masspole, masscart, gravity,
                                  force_mag (Gymnasium's values by default)
    mentor/CartPole-LongPole-v1   a pole twice as long and twice as heavy (length 1.0, 0.2 kg)
    mentor/CartPole-HeavyCart-v1  a cart twice as heavy (2 kg)
    mentor/CartPole-Moon-v1       the Moon's gravity (1.62)
    mentor/Pendulum-v1            Pendulum-v1 with kwargs m, l, g (and max_speed, max_torque)
    mentor/Pendulum-Heavy-v1      a pendulum twice as heavy (m 2.0)
    mentor/Pendulum-Long-v1       a pendulum half again as long (l 1.5)
    mentor/LunarLander-v3         LunarLander-v3 (its kwargs: gravity, enable_wind, ...)
    mentor/LunarLander-Moon-v3    the Moon's gravity (-1.62)
    mentor/LunarLander-Windy-v3   wind (power 15) and turbulence (1.5)
    mentor/CartPole-Reversed-v1   the force reversed (force_mag -10): pushing left moves right,
                                  so CartPole's policy must flip (a task that interferes)
    mentor/CartPole-NoVelocity-v1 CartPole-v1 observing the cart's position and the pole's angle
                                  only: a partially observed task, which a policy must remember
                                  to solve (velocities are differences of what it saw)
    mentor/TaskId-v0              another env with a one-hot of its task's index appended to
                                  its Box observation: kwargs env, kwargs, index, count (what
                                  ``continual.task_id`` makes of each task)
    mentor/Bandit-v0, mentor/Trials-v0   meta-learning's task families (``envs/meta.py``)
    mentor/FourRooms-v0           the four-rooms grid whose goal moves after some episodes
                                  (``envs/rooms.py``: hierarchical RL, option-critic)
    mentor/PointNav-v0            2-D point navigation to a goal (``envs/point.py``)

The CartPole and Pendulum parameters Gymnasium's constructors do not take are set on the env
after it is made, with those computed from them at construction recomputed (CartPole's total
mass and pole mass-length: ``envs.tasks.apply_params``). Time limits and reward thresholds are
the originals'.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from mentor.envs.snapshot import register_adapter
from mentor.envs.tasks import apply_params
from mentor.errors import ConfigError


def cartpole(length: float = 0.5, masspole: float = 0.1, masscart: float = 1.0,
             gravity: float = 9.8, force_mag: float = 10.0, **kwargs: Any) -> gym.Env:  # fmt: skip
    """Gymnasium's CartPole with this physics."""
    from gymnasium.envs.classic_control.cartpole import CartPoleEnv

    env = CartPoleEnv(**kwargs)
    params = {"length": length, "masspole": masspole, "masscart": masscart,
              "gravity": gravity, "force_mag": force_mag}  # fmt: skip
    apply_params(env, params, "mentor/CartPole-v1")
    return env


class TaskIdObservation(gym.ObservationWrapper):
    """A Box observation with a one-hot of the task's ``index`` among ``count`` appended.
    Stateless: its snapshot is the inner env's."""

    def __init__(self, env: gym.Env, index: int, count: int) -> None:
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, spaces.Box) or len(space.shape) != 1:
            raise ConfigError(
                f"continual.task_id appends a one-hot to a vector Box observation; this env's "
                f"is {space}"
            )
        if not 0 <= index < count:
            raise ConfigError(f"mentor/TaskId-v0: index {index} is not among {count} tasks")
        self.onehot = np.zeros(count, dtype=space.dtype)
        self.onehot[index] = 1
        low = np.concatenate([space.low, np.zeros(count, space.dtype)])
        high = np.concatenate([space.high, np.ones(count, space.dtype)])
        self.observation_space = spaces.Box(low, high, dtype=space.dtype)

    def observation(self, obs: Any) -> Any:
        return np.concatenate([np.asarray(obs, dtype=self.onehot.dtype), self.onehot])


register_adapter(TaskIdObservation, ())


class SomeObservations(gym.ObservationWrapper):
    """A vector Box observation reduced to the entries at ``keep``. Stateless: its snapshot is
    the inner env's."""

    def __init__(self, env: gym.Env, keep: tuple[int, ...]) -> None:
        super().__init__(env)
        space = env.observation_space
        self.keep = np.asarray(keep)
        self.observation_space = spaces.Box(
            space.low[self.keep], space.high[self.keep], dtype=space.dtype
        )

    def observation(self, obs: Any) -> Any:
        return np.asarray(obs)[self.keep]


register_adapter(SomeObservations, ())


def cartpole_no_velocity(**kwargs: Any) -> gym.Env:
    """CartPole (``cartpole``'s kwargs) observing the cart's position and the pole's angle."""
    return SomeObservations(cartpole(**kwargs), (0, 2))


def with_task_id(env: str, kwargs: dict[str, Any] | None = None, index: int = 0,
                 count: int = 1) -> gym.Env:  # fmt: skip
    """The env ``env`` names (with ``kwargs``), its observation followed by a one-hot of
    ``index`` among ``count``."""
    from mentor.envs.resolve import make_env

    return TaskIdObservation(make_env(env, dict(kwargs or {})), index, count)


def pendulum(m: float = 1.0, l: float = 1.0, **kwargs: Any) -> gym.Env:  # noqa: E741 (its name)
    """Gymnasium's Pendulum with this mass and length (g, max_speed, max_torque as kwargs)."""
    from gymnasium.envs.classic_control.pendulum import PendulumEnv

    extra = {k: kwargs.pop(k) for k in ("max_speed", "max_torque") if k in kwargs}
    env = PendulumEnv(**kwargs)
    apply_params(env, {"m": m, "l": l, **extra}, "mentor/Pendulum-v1")
    return env


VARIANTS: dict[str, tuple[str, dict[str, Any], str]] = {
    # id: (entry point, kwargs, the original id: time limit, reward threshold)
    "mentor/CartPole-v1": ("mentor.envs.variants:cartpole", {}, "CartPole-v1"),
    "mentor/CartPole-LongPole-v1": (
        "mentor.envs.variants:cartpole",
        {"length": 1.0, "masspole": 0.2},
        "CartPole-v1",
    ),
    "mentor/CartPole-HeavyCart-v1": (
        "mentor.envs.variants:cartpole",
        {"masscart": 2.0},
        "CartPole-v1",
    ),
    "mentor/CartPole-Moon-v1": ("mentor.envs.variants:cartpole", {"gravity": 1.62}, "CartPole-v1"),
    "mentor/CartPole-Reversed-v1": (
        "mentor.envs.variants:cartpole",
        {"force_mag": -10.0},
        "CartPole-v1",
    ),
    "mentor/CartPole-NoVelocity-v1": (
        "mentor.envs.variants:cartpole_no_velocity",
        {},
        "CartPole-v1",
    ),
    "mentor/Pendulum-v1": ("mentor.envs.variants:pendulum", {}, "Pendulum-v1"),
    "mentor/Pendulum-Heavy-v1": ("mentor.envs.variants:pendulum", {"m": 2.0}, "Pendulum-v1"),
    "mentor/Pendulum-Long-v1": ("mentor.envs.variants:pendulum", {"l": 1.5}, "Pendulum-v1"),
    "mentor/LunarLander-v3": (
        "gymnasium.envs.box2d.lunar_lander:LunarLander",
        {},
        "LunarLander-v3",
    ),
    "mentor/LunarLander-Moon-v3": (
        "gymnasium.envs.box2d.lunar_lander:LunarLander",
        {"gravity": -1.62},
        "LunarLander-v3",
    ),
    "mentor/LunarLander-Windy-v3": (
        "gymnasium.envs.box2d.lunar_lander:LunarLander",
        {"enable_wind": True, "wind_power": 15.0, "turbulence_power": 1.5},
        "LunarLander-v3",
    ),
}


def register() -> None:
    """Register every variant not registered yet (importing this module does it)."""
    if "mentor/TaskId-v0" not in gym.registry:  # its time limit is the inner env's
        gym.register("mentor/TaskId-v0", entry_point="mentor.envs.variants:with_task_id")
    for env_id, entry_point in (("mentor/Bandit-v0", "mentor.envs.meta:Bandit"),
                                ("mentor/Trials-v0", "mentor.envs.meta:Trials"),
                                ("mentor/PointNav-v0", "mentor.envs.point:PointNav")):  # fmt: skip
        if env_id not in gym.registry:  # meta-learning's task families (envs/meta.py)
            gym.register(env_id, entry_point=entry_point)
    if "mentor/FourRooms-v0" not in gym.registry:  # hierarchical RL's grid (envs/rooms.py)
        gym.register("mentor/FourRooms-v0", entry_point="mentor.envs.rooms:FourRooms",
                     max_episode_steps=500)  # fmt: skip
    for env_id, (entry_point, kwargs, original) in VARIANTS.items():
        if env_id in gym.registry:
            continue
        spec = gym.spec(original)
        gym.register(env_id, entry_point=entry_point, kwargs=kwargs,
                     max_episode_steps=spec.max_episode_steps,
                     reward_threshold=spec.reward_threshold)  # fmt: skip


register()
