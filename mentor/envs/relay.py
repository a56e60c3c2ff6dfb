"""A small turn-based PettingZoo AEC env for tests and examples: agents take turns, and each
move is paid one turn late, while its agent waits.

``Relay`` has ``agents`` players who move in turn, ``moves`` moves in all. The player to move
sees a beacon (+1 or -1: which of two actions pays), the game's progress and a 1 that says its
turn; the others see 0, the progress and 0. A move that follows its beacon earns 1, paid when
the next player moves (the last move is paid at once, as the game ends). So every reward a
player gets arrives while it waits: a learner that credits what comes between an agent's moves
to its last move learns to follow the beacon (``moves / agents`` per player an episode); one
that drops it learns nothing (random play earns half).

With ``masks``, observations are dicts ``{"observation", "action_mask"}`` as in PettingZoo's
classic games: the player to move may not take one of the two actions, drawn at random half of
the time, and a waiting player's mask allows nothing; a forbidden move raises.

Make it with ``env.id: mentor.envs.relay:relay`` and ``env.kwargs``. It gives its state through
mentor's snapshot protocol, so runs on it resume exactly.
"""

from __future__ import annotations

from functools import cache
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from pettingzoo import AECEnv

from mentor.envs.snapshot import copy_value


class Relay(AECEnv):
    metadata: ClassVar[dict[str, Any]] = {
        "name": "relay_v0",
        "render_modes": [],
        "is_parallelizable": False,
    }

    def __init__(self, agents: int = 2, moves: int = 8, masks: bool = False) -> None:
        super().__init__()
        self.possible_agents = [f"player_{i}" for i in range(agents)]
        self.render_mode = None
        self.moves = moves
        self.masks = masks
        self._np_random = np.random.default_rng()
        self.agents: list[str] = []
        self.t = 0
        self.beacon = 0
        self.allowed = np.ones(2, dtype=np.int8)
        self.pending: tuple[str, float] | None = None  # the last move and what it earned

    @cache  # noqa: B019 (PettingZoo's API test wants the same object)
    def observation_space(self, agent: str) -> spaces.Space:
        vector = spaces.Box(-1.0, 1.0, (3,), np.float32)
        if not self.masks:
            return vector
        return spaces.Dict({"observation": vector, "action_mask": spaces.MultiBinary(2)})

    @cache  # noqa: B019
    def action_space(self, agent: str) -> spaces.Space:
        return spaces.Discrete(2)

    def observe(self, agent: str) -> Any:
        turn = agent == self.agent_selection and agent in self.agents
        beacon = 2.0 * self.beacon - 1.0 if turn else 0.0
        obs = np.array([beacon, self.t / self.moves, float(turn)], dtype=np.float32)
        if not self.masks:
            return obs
        mask = self.allowed.copy() if turn else np.zeros(2, dtype=np.int8)
        return {"observation": obs, "action_mask": mask}

    def _draw(self) -> None:
        self.beacon = int(self._np_random.integers(0, 2))
        self.allowed[:] = 1
        if self.masks and self._np_random.random() < 0.5:
            self.allowed[int(self._np_random.integers(0, 2))] = 0

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> None:
        if seed is not None:
            self._np_random = np.random.default_rng(seed)
        self.agents = list(self.possible_agents)
        self.agent_selection = self.agents[0]
        self.rewards = dict.fromkeys(self.agents, 0.0)
        self._cumulative_rewards = dict.fromkeys(self.agents, 0.0)
        self.terminations = dict.fromkeys(self.agents, False)
        self.truncations = dict.fromkeys(self.agents, False)
        self.infos = {agent: {} for agent in self.agents}
        self.t = 0
        self.pending = None
        self._draw()

    def step(self, action: Any) -> None:
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            self._was_dead_step(action)
            return
        if not self.allowed[int(action)]:
            raise ValueError(f"{agent} took action {action}, which its mask forbids")
        self._clear_rewards()
        if self.pending is not None:  # the previous move is paid now
            mover, earned = self.pending
            self.rewards[mover] += earned
        self.pending = (agent, float(int(action) == self.beacon))
        self.t += 1
        if self.t >= self.moves:  # the game ends: the last move is paid at once
            self.rewards[agent] += self.pending[1]
            self.pending = None
            self.terminations = dict.fromkeys(self.agents, True)
        index = self.possible_agents.index(agent)
        self.agent_selection = self.possible_agents[(index + 1) % len(self.possible_agents)]
        self._draw()
        self._cumulative_rewards[agent] = 0.0
        self._accumulate_rewards()

    # --- mentor's snapshot protocol (exact resume) ----------------------------------------------

    _STATE = (
        "agents",
        "agent_selection",
        "rewards",
        "_cumulative_rewards",
        "terminations",
        "truncations",
        "infos",
        "t",
        "beacon",
        "allowed",
        "_np_random",
    )

    def mentor_snapshot(self) -> dict[str, Any]:
        state = {name: getattr(self, name) for name in self._STATE}
        state["pending"] = None if self.pending is None else list(self.pending)
        return copy_value(state, "Relay")

    def mentor_restore(self, state: dict[str, Any]) -> None:
        for name in self._STATE:
            setattr(self, name, copy_value(state[name], "Relay"))
        pending = state["pending"]
        self.pending = None if pending is None else (pending[0], float(pending[1]))


def relay(**kwargs: Any) -> Relay:
    """``env.id: mentor.envs.relay:relay``."""
    return Relay(**kwargs)


def follow_beacon(obs: Any) -> int:
    """The scripted move that earns every reward: what the beacon says."""
    vector = obs["observation"] if isinstance(obs, dict) else obs
    return int(vector[0] > 0)
