"""Envs that fail on purpose: for fault-injection tests, and to check a setup survives them.

Each is a small deterministic env (seeded through ``reset``): a Box(-1, 1, (4,)) observation, two
actions, reward 1 when the action matches the sign of the first observation, episodes of
``episode_length`` steps (truncated). Each fails at one step in its own way, and can be named as
an entry point with kwargs, e.g. ``mentor.envs.faulty:CrashingEnv`` with ``crash_at_step: 10``:

- ``CrashingEnv(crash_at_step)`` raises RuntimeError,
- ``HangingEnv(hang_at_step, seconds)`` sleeps ``seconds`` before answering,
- ``DyingEnv(die_at_step)`` ends its process at once with ``os._exit(1)``, as a segfault would.

``UnevenEnv(count_file, odd_one)`` does not fail in a step: the ``odd_one``-th env made with that
``count_file`` (0 = the first) observes 5 numbers instead of 4, so the copies of one vector env
disagree on their observation space.

The step count is the number of ``step`` calls this env object has answered since it was made,
over all its episodes; it fails when that count reaches the given step (1 = the first step). A
worker that is restarted makes a new env, which counts from 0 again, so by default every new
worker's env fails again when its count reaches that step. To fail a limited number of times,
pass ``times`` with a ``count_file`` path: every failure appends a line to that file, and no env
sharing the file fails once it has ``times`` lines (``times=1``: fail once, then train on). The
file is not locked: envs that fail at the same moment may both fail. With ``on_reset=True`` the
env fails in ``reset`` instead (each reset, within ``times``).

The envs give their state to ``mentor.envs.snapshot`` (step count included), so a resumed run
fails where the original would have.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import Env, spaces


class _FaultyEnv(Env):
    """The shared env; subclasses say how it fails in ``_fail``."""

    def __init__(
        self,
        at_step: int,
        *,
        episode_length: int = 50,
        times: int | None = None,
        count_file: str | None = None,
        on_reset: bool = False,
    ) -> None:
        if times is not None and count_file is None:
            raise ValueError("times needs a count_file, the count shared by restarted envs")
        self.observation_space = spaces.Box(-1.0, 1.0, (4,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.at_step, self.episode_length = at_step, episode_length
        self.times, self.count_file, self.on_reset = times, count_file, on_reset
        self.steps_taken = 0  # step calls answered by this env object, over all episodes

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        if self.on_reset and self._may_fail():
            self._fail()
        self.t = 0
        self.obs = self._draw()
        return self.obs, {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        self.steps_taken += 1
        if not self.on_reset and self.steps_taken == self.at_step and self._may_fail():
            self._fail()
        reward = float(int(action) == int(self.obs[0] > 0))
        self.t += 1
        self.obs = self._draw()
        return self.obs, reward, False, self.t >= self.episode_length, {}

    def mentor_snapshot(self) -> dict[str, Any]:
        """This env's state, for mentor's exact resume (see ``mentor.envs.snapshot``)."""
        names = ("t", "obs", "steps_taken", "_np_random", "_np_random_seed")
        return {name: getattr(self, name) for name in names if hasattr(self, name)}

    def mentor_restore(self, snapshot: dict[str, Any]) -> None:
        for name, value in snapshot.items():
            setattr(self, name, value)

    def _draw(self) -> np.ndarray:
        size = self.observation_space.shape[0]
        return self.np_random.uniform(-1.0, 1.0, size).astype(np.float32)

    def _may_fail(self) -> bool:
        """Whether a failure is still due; counts it in the count file when ``times`` is set."""
        if self.times is None:
            return True
        path = Path(self.count_file)
        if path.exists() and len(path.read_text().splitlines()) >= self.times:
            return False
        with path.open("a") as file:
            file.write(f"{os.getpid()}\n")
        return True

    def _fail(self) -> None:
        raise NotImplementedError


class CrashingEnv(_FaultyEnv):
    """Raises RuntimeError at step ``crash_at_step`` (see the module for the counting)."""

    def __init__(self, crash_at_step: int = 10, **kwargs: Any) -> None:
        super().__init__(crash_at_step, **kwargs)

    def _fail(self) -> None:
        raise RuntimeError(f"CrashingEnv crashed on purpose at step {self.steps_taken}")


class HangingEnv(_FaultyEnv):
    """Sleeps ``seconds`` at step ``hang_at_step``, then goes on as if nothing happened."""

    def __init__(self, hang_at_step: int = 10, seconds: float = 3600.0, **kwargs: Any) -> None:
        super().__init__(hang_at_step, **kwargs)
        self.seconds = seconds

    def _fail(self) -> None:
        time.sleep(self.seconds)


class DyingEnv(_FaultyEnv):
    """Ends its process with ``os._exit(1)`` at step ``die_at_step``: nothing is cleaned up."""

    def __init__(self, die_at_step: int = 10, **kwargs: Any) -> None:
        super().__init__(die_at_step, **kwargs)

    def _fail(self) -> None:
        os._exit(1)


class UnevenEnv(_FaultyEnv):
    """Observes 5 numbers, not 4, when it is the ``odd_one``-th env made with ``count_file``."""

    def __init__(self, count_file: str, odd_one: int = 1, **kwargs: Any) -> None:
        super().__init__(0, **kwargs)  # step counts start at 1: never fails there
        path = Path(count_file)
        made = len(path.read_text().splitlines()) if path.exists() else 0
        with path.open("a") as file:
            file.write(f"{os.getpid()}\n")
        size = 5 if made == odd_one else 4
        self.observation_space = spaces.Box(-1.0, 1.0, (size,), np.float32)
