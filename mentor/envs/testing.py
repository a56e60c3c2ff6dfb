"""Small envs for every space kind mentor supports: quick to step, with a learnable signal.

Each rewards the agent for matching a target read from the observation, so a working learner
beats a random one within a few thousand steps. Used by the test suite's smoke and space tests;
also a handy check for a new method: ``mentor train ppo mentor.envs.testing:DictObsEnv``.

They give their state through mentor's snapshot protocol (``mentor_snapshot`` and
``mentor_restore``, see ``mentor.envs.snapshot``), so runs on them resume exactly.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from gymnasium import Env, spaces

from mentor.envs.snapshot import restore_attributes, snapshot_attributes


class _MatchEnv(Env):
    """Episodes of ``length`` steps; reward 1 per step where the action matches the target."""

    length = 16
    # Everything step and reset write, the random generator included (for snapshots).
    state_attributes: tuple[str, ...] = ("t", "target", "_np_random", "_np_random_seed")

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        self.t = 0
        self.target = self._draw_target()
        return self._obs(), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        reward = float(self._matches(np.asarray(action)))
        self.t += 1
        self.target = self._draw_target()
        return self._obs(), reward, False, self.t >= self.length, {}

    def mentor_snapshot(self) -> dict[str, Any]:
        return snapshot_attributes(self, self.state_attributes)

    def mentor_restore(self, snapshot: dict[str, Any]) -> None:
        restore_attributes(self, self.state_attributes, snapshot)


class MultiDiscreteEnv(_MatchEnv):
    """MultiDiscrete([3, 4]) actions; the observation shows the target as one-hots."""

    def __init__(self) -> None:
        self.observation_space = spaces.Box(0.0, 1.0, (7,), np.float32)
        self.action_space = spaces.MultiDiscrete([3, 4])

    def _draw_target(self) -> np.ndarray:
        return self.np_random.integers([0, 0], [3, 4])

    def _obs(self) -> np.ndarray:
        obs = np.zeros(7, np.float32)
        obs[self.target[0]] = obs[3 + self.target[1]] = 1.0
        return obs

    def _matches(self, action: np.ndarray) -> float:
        return float((action == self.target).mean())


class MultiBinaryEnv(_MatchEnv):
    """MultiBinary(4) actions: copy the observed bits."""

    def __init__(self) -> None:
        self.observation_space = spaces.MultiBinary(4)
        self.action_space = spaces.MultiBinary(4)

    def _draw_target(self) -> np.ndarray:
        return self.np_random.integers(0, 2, 4).astype(np.int8)

    def _obs(self) -> np.ndarray:
        return self.target.copy()

    def _matches(self, action: np.ndarray) -> float:
        return float((action == self.target).mean())


class DictObsEnv(_MatchEnv):
    """Dict observations (a Box and a Discrete entry) and Discrete(3) actions."""

    def __init__(self) -> None:
        self.observation_space = spaces.Dict(
            {"noise": spaces.Box(-1.0, 1.0, (2,), np.float32), "target": spaces.Discrete(3)}
        )
        self.action_space = spaces.Discrete(3)

    def _draw_target(self) -> int:
        return int(self.np_random.integers(3))

    def _obs(self) -> dict[str, Any]:
        noise = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        return {"noise": noise, "target": self.target}

    def _matches(self, action: np.ndarray) -> float:
        return float(int(action) == self.target)


class ImageEnv(_MatchEnv):
    """(36, 36, 3) uint8 image observations, Discrete(2) actions: is the image bright?"""

    def __init__(self) -> None:
        self.observation_space = spaces.Box(0, 255, (36, 36, 3), np.uint8)
        self.action_space = spaces.Discrete(2)

    def _draw_target(self) -> int:
        return int(self.np_random.integers(2))

    def _obs(self) -> np.ndarray:
        return np.full((36, 36, 3), 200 if self.target else 30, np.uint8)

    def _matches(self, action: np.ndarray) -> float:
        return float(int(action) == self.target)


class ContinuousEnv(_MatchEnv):
    """Box(2) actions in [-1, 1]: move toward the observed target point."""

    def __init__(self) -> None:
        self.observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)

    def _draw_target(self) -> np.ndarray:
        return self.np_random.uniform(-1, 1, 2).astype(np.float32)

    def _obs(self) -> np.ndarray:
        return self.target.copy()

    def _matches(self, action: np.ndarray) -> float:
        return float(1.0 - np.abs(action - self.target).mean() / 2)


class InfoEnv(_MatchEnv):
    """Discrete(2): match the observed bit, as a constrained task. Its info reports a per-step
    ``cost`` (1 for action 1, which is the right action half of the time) and, at the last step
    of each episode, ``is_success``: whether at least ``success_at`` of its ``length`` steps
    matched. For ``env.info_keys: [is_success, {cost: sum}]``; ``nan_cost_after`` makes the cost
    NaN after that many steps in total (fault injection)."""

    state_attributes = (*_MatchEnv.state_attributes, "matched", "total")

    def __init__(
        self, length: int = 16, success_at: int = 12, nan_cost_after: int | None = None
    ) -> None:
        self.observation_space = spaces.Box(0.0, 1.0, (2,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.length, self.success_at, self.nan_cost_after = length, success_at, nan_cost_after
        self.matched = self.total = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        self.matched = 0
        return super().reset(seed=seed, options=options)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, reward, terminated, truncated, _ = super().step(action)
        self.matched += int(reward)
        self.total += 1
        poisoned = self.nan_cost_after is not None and self.total > self.nan_cost_after
        info: dict[str, Any] = {"cost": float("nan") if poisoned else float(int(action) == 1)}
        if truncated:
            info["is_success"] = self.matched >= self.success_at
        return obs, reward, terminated, truncated, info

    def _draw_target(self) -> int:
        return int(self.np_random.integers(2))

    def _obs(self) -> np.ndarray:
        obs = np.zeros(2, np.float32)
        obs[self.target] = 1.0
        return obs

    def _matches(self, action: np.ndarray) -> float:
        return float(int(action) == self.target)


class MaskedEnv(_MatchEnv):
    """Action masks (``mentor/envs/masks.py``): match the observed target (one-hot, a block per
    action dimension) with Discrete(4) actions, or MultiDiscrete(``nvec``). Each step's mask
    allows the target and each other action with probability one half. A masked action pays
    ``masked_reward``, more than a match, so that a learner ignoring the mask would learn to
    take them; each step's info counts it (``masked_actions``: declare ``env.info_keys:
    [{masked_actions: sum}]`` to read it per episode).

    ``mask_in``: "obs", a Dict ``{"observation", "action_mask"}`` as PettingZoo classic's (the
    mask a 0/1 int8 Box), or "info", a plain observation and ``info["action_mask"]`` at every
    reset and step. ``all_masked_at``: the step, counted over the env's life, whose observation
    the mask allows no action in (fault injection)."""

    state_attributes = (*_MatchEnv.state_attributes, "mask", "total")

    def __init__(
        self,
        mask_in: str = "obs",
        nvec: tuple[int, ...] | list[int] = (4,),
        masked_reward: float = 5.0,
        all_masked_at: int | None = None,
    ) -> None:
        if mask_in not in ("obs", "info"):
            raise ValueError(f"mask_in is 'obs' or 'info', got {mask_in!r}")
        self.nvec = np.asarray(nvec, dtype=np.int64).reshape(-1)
        self.offsets = np.concatenate([[0], np.cumsum(self.nvec)[:-1]])
        size = int(self.nvec.sum())
        observation = spaces.Box(0.0, 1.0, (size,), np.float32)
        mask = spaces.Box(0, 1, (size,), np.int8)
        self.mask_in = mask_in
        self.observation_space = (
            spaces.Dict({"observation": observation, "action_mask": mask})
            if mask_in == "obs"
            else observation
        )
        single = len(self.nvec) == 1
        self.action_space = (
            spaces.Discrete(int(self.nvec[0])) if single else spaces.MultiDiscrete(self.nvec)
        )
        self.masked_reward, self.all_masked_at = masked_reward, all_masked_at
        self.total = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        obs, _ = super().reset(seed=seed, options=options)
        return obs, self._info({})

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        action = np.asarray(action).reshape(-1)
        masked = not self.mask[self.offsets + action].all()
        matched = float((action == self.target).mean())
        self.t += 1
        self.total += 1
        self.target = self._draw_target()
        if self.total == self.all_masked_at:
            self.mask[:] = 0
        reward = self.masked_reward if masked else matched
        info = self._info({"masked_actions": float(masked)})
        return self._obs(), reward, False, self.t >= self.length, info

    def _draw_target(self) -> np.ndarray:
        target = self.np_random.integers(0, self.nvec)
        self.mask = (self.np_random.random(int(self.nvec.sum())) < 0.5).astype(np.int8)
        self.mask[self.offsets + target] = 1
        return target

    def _obs(self) -> Any:
        observation = np.zeros(int(self.nvec.sum()), np.float32)
        observation[self.offsets + self.target] = 1.0
        if self.mask_in == "obs":
            return {"observation": observation, "action_mask": self.mask.copy()}
        return observation

    def _info(self, info: dict[str, Any]) -> dict[str, Any]:
        if self.mask_in == "info":
            info["action_mask"] = self.mask.copy()
        return info


class NaNEnv(_MatchEnv):
    """Discrete(2); observations turn NaN after ``nan_after`` steps in total (fault injection)."""

    state_attributes = (*_MatchEnv.state_attributes, "total")

    def __init__(self, nan_after: int = 100, where: str = "obs") -> None:
        self.observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.nan_after, self.where, self.total = nan_after, where, 0

    def _draw_target(self) -> int:
        return int(self.np_random.integers(2))

    def _obs(self) -> np.ndarray:
        poisoned = self.where == "obs" and self.total >= self.nan_after
        return np.array([np.nan if poisoned else self.target, 0.0], np.float32)

    def _matches(self, action: np.ndarray) -> float:
        self.total += 1
        if self.where == "reward" and self.total >= self.nan_after:
            return float("nan")
        return float(int(action) == self.target)


class SlowEnv(_MatchEnv):
    """An env whose step costs ``delay`` seconds of waiting (1 ms by default: a simulator, a
    robot, a game server answering), and whose task is easy: match the target, one of 4, shown
    as a one-hot (16-step episodes, return 16 when solved, 4 for random play). Waiting is not
    CPU-bound, so workers that wait side by side scale past the machine's cores: the
    distributed benchmark's env (``mentor.envs.testing:SlowEnv``).

    ``stall``: a step costs that many seconds more with probability ``stall_chance`` (a
    simulator's hiccup, a slow server): a step time that varies. The stalls are drawn from a
    stream of their own, seeded by the OS: they change how long a run takes, not what it
    learns."""

    def __init__(self, delay: float = 0.001, stall: float = 0.0, stall_chance: float = 0.0) -> None:
        self.delay, self.stall, self.stall_chance = delay, stall, stall_chance
        self.stalls = np.random.default_rng()
        self.observation_space = spaces.Box(0.0, 1.0, (4,), np.float32)
        self.action_space = spaces.Discrete(4)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        stalled = self.stall_chance and self.stalls.random() < self.stall_chance
        time.sleep(self.delay + (self.stall if stalled else 0.0))
        return super().step(action)

    def _draw_target(self) -> np.ndarray:
        return self.np_random.integers(0, 4)

    def _obs(self) -> np.ndarray:
        obs = np.zeros(4, np.float32)
        obs[self.target] = 1.0
        return obs

    def _matches(self, action: np.ndarray) -> float:
        return float(int(action) == self.target)
