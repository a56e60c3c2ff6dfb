"""Task families for meta-learning: each episode a new task, which a policy with memory learns
to identify and exploit as it plays (RL², Duan et al. 2016: ``agent.network.memory`` with PPO).

    Bandit    ``mentor/Bandit-v0``: k arms whose Bernoulli means are drawn from U(0, 1) at
              each reset (the task), ``pulls`` pulls an episode (a trial). The observation is
              what RL² feeds its policy: the previous pull (one-hot; zeros before the first) and
              its reward, and with ``clock=True`` also the fraction of the trial's pulls made
              (the paper's policy had to count them itself). A random player scores pulls / 2 in
              expectation; knowing the best arm, pulls x its mean (``info["best_mean"]``).
    Trials    ``mentor/Trials-v0``: another env as a family: at each reset its parameters are
              drawn uniformly from ``params`` ranges ({name: [low, high]}, set on
              ``env.unwrapped`` as curricula set them: CartPole's length, Pendulum's m), then
              ``episodes`` of its episodes are played in a row as one episode of this env (one
              trial: a policy's memory lives through it, and restarts with the next task). The
              observation is the env's, then the previous action (a one-hot for Discrete), the
              previous reward and a flag that is 1 on each inner episode's first step.
              ``info["trial_episode"]`` counts the inner episodes; ``info["last_return"]``, at
              the trial's end, is its last inner episode's return (after ``episodes - 1`` to
              adapt: what a meta-learner is scored on; declare it in ``env.info_keys``).

Both keep their whole state (the task, counters, the generator) in mentor's snapshot protocol,
so runs on them resume exactly where the inner env does.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from mentor.envs.resolve import make_env
from mentor.envs.snapshot import (
    env_snapshot,
    restore_attributes,
    restore_env,
    snapshot_attributes,
)
from mentor.envs.tasks import apply_params
from mentor.errors import ConfigError


class Bandit(gym.Env):
    """A k-armed Bernoulli bandit, a new one each reset (module docstring)."""

    state_attributes = ("means", "t", "_np_random", "_np_random_seed")

    def __init__(self, arms: int = 5, pulls: int = 100, clock: bool = False) -> None:
        if arms < 2 or pulls < 1:
            raise ConfigError(f"Bandit: give arms >= 2 and pulls >= 1, got {arms} and {pulls}")
        self.arms, self.pulls, self.clock = int(arms), int(pulls), bool(clock)
        size = self.arms + 1 + self.clock
        self.observation_space = spaces.Box(0.0, 1.0, (size,), np.float32)
        self.action_space = spaces.Discrete(self.arms)
        self.means = np.zeros(self.arms)
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        self.means = self.np_random.uniform(0.0, 1.0, self.arms)
        self.t = 0
        return self._obs(None, 0.0), {"best_mean": float(self.means.max())}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        arm = int(action)
        reward = float(self.np_random.random() < self.means[arm])
        self.t += 1
        obs = self._obs(arm, reward)
        return obs, reward, self.t >= self.pulls, False, {"best_mean": float(self.means.max())}

    def _obs(self, arm: int | None, reward: float) -> np.ndarray:
        obs = np.zeros(self.observation_space.shape, np.float32)
        if arm is not None:
            obs[arm] = 1.0
        obs[self.arms] = reward
        if self.clock:
            obs[-1] = self.t / self.pulls
        return obs

    def mentor_snapshot(self) -> dict[str, Any]:
        return snapshot_attributes(self, self.state_attributes)

    def mentor_restore(self, snapshot: dict[str, Any]) -> None:
        restore_attributes(self, self.state_attributes, snapshot)


def check_ranges(params: dict[str, Any], what: str) -> dict[str, tuple[float, float]]:
    """{name: [low, high]} with low <= high, both finite; anything else says what is wrong."""
    if not params:
        raise ConfigError(f"{what}: params is empty; give {{name: [low, high]}} for each "
                          "parameter the tasks differ in")  # fmt: skip
    ranges = {}
    for name, bounds in params.items():
        try:
            low, high = (float(b) for b in bounds)
        except (TypeError, ValueError):
            raise ConfigError(f"{what}: params.{name} is {bounds!r}, not [low, high]") from None
        if not (np.isfinite(low) and np.isfinite(high)) or low > high:
            raise ConfigError(f"{what}: params.{name} [{low:g}, {high:g}] is an empty range; "
                              "give finite bounds with low <= high")  # fmt: skip
        ranges[name] = (low, high)
    return ranges


class Trials(gym.Env):
    """An env's tasks as RL²'s trials (module docstring)."""

    state_attributes = ("task", "episode", "inner_return", "_np_random", "_np_random_seed")

    def __init__(
        self, env: str, params: dict[str, Any], episodes: int = 2,
        kwargs: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        what = f"mentor/Trials-v0 of '{env}'"
        self.ranges = check_ranges(params, what)
        if int(episodes) < 1:
            raise ConfigError(f"{what}: episodes must be >= 1, got {episodes}")
        self.episodes = int(episodes)
        self.env_id = env
        self.inner = make_env(env, dict(kwargs or {}))
        inner_obs = self.inner.observation_space
        if not (isinstance(inner_obs, spaces.Box) and len(inner_obs.shape) == 1):
            raise ConfigError(f"{what}: its observations are {inner_obs}; trials take vectors")
        apply_params(self.inner, {k: lo for k, (lo, _) in self.ranges.items()}, env)  # names
        act = self.inner.action_space
        if isinstance(act, spaces.Discrete):
            self.action_size = int(act.n)
        elif isinstance(act, spaces.Box):
            self.action_size = int(np.prod(act.shape))
        else:
            raise ConfigError(f"{what}: its actions are {act}; trials take Discrete or Box")
        low = np.concatenate([inner_obs.low, np.full(self.action_size + 2, -np.inf)])
        high = np.concatenate([inner_obs.high, np.full(self.action_size + 2, np.inf)])
        self.observation_space = spaces.Box(low.astype(np.float32), high.astype(np.float32))
        self.action_space = act
        self.task: dict[str, float] = {}
        self.episode = 0
        self.inner_return = 0.0

    def _obs(self, inner: np.ndarray, action: Any, reward: float, first: bool) -> np.ndarray:
        previous = np.zeros(self.action_size, np.float32)
        if action is not None:
            if isinstance(self.action_space, spaces.Discrete):
                previous[int(action)] = 1.0
            else:
                previous[:] = np.asarray(action, np.float32).reshape(-1)
        extra = np.array([reward, float(first)], np.float32)
        return np.concatenate([np.asarray(inner, np.float32), previous, extra])

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        self.task = {
            k: float(self.np_random.uniform(lo, hi)) for k, (lo, hi) in self.ranges.items()
        }
        apply_params(self.inner, self.task, self.env_id)
        inner_seed = int(self.np_random.integers(2**31))
        obs, info = self.inner.reset(seed=inner_seed)
        self.episode, self.inner_return = 0, 0.0
        return self._obs(obs, None, 0.0, True), {**info, "trial_episode": 0}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.inner.step(action)
        self.inner_return += float(reward)
        info = {**info, "trial_episode": self.episode}
        if not (terminated or truncated):
            return self._obs(obs, action, float(reward), False), float(reward), False, False, info
        self.episode += 1
        if self.episode >= self.episodes:  # the trial is over: the inner episode's own flags
            info["last_return"] = self.inner_return
            return (
                self._obs(obs, action, float(reward), False),
                float(reward),
                terminated,
                truncated,
                info,
            )
        self.inner_return = 0.0
        obs, _ = self.inner.reset(seed=int(self.np_random.integers(2**31)))
        return self._obs(obs, action, float(reward), True), float(reward), False, False, info

    def close(self) -> None:
        self.inner.close()

    def mentor_snapshot(self) -> dict[str, Any]:
        return {**snapshot_attributes(self, self.state_attributes),
                "inner": env_snapshot(self.inner)}  # fmt: skip

    def mentor_restore(self, snapshot: dict[str, Any]) -> None:
        own = {k: v for k, v in snapshot.items() if k != "inner"}
        restore_attributes(self, self.state_attributes, own)
        apply_params(self.inner, self.task, self.env_id)
        restore_env(self.inner, snapshot["inner"])
