"""A small PettingZoo parallel env for tests and examples, with the faults FAULT-12 names.

``Beacons`` has ``agents`` agents, each seeing its own 2-vector: a beacon that says which of two
actions pays this step (+1 for the right one, 0 otherwise), and the episode's progress. A scripted
or learned policy that follows its beacon earns ``length`` per episode; a random one half that.
The beacons are drawn from the env's seeded generator, so episodes replay exactly.

Options shape what agents do within an episode and which faults the env commits:

    finish_at   {agent: step}: that agent terminates at that step while the others play on
    arrive_at   {agent: step}: that agent is absent until that step (agent sets change)
    fault       None, or one of: "missing_reward" (a live agent gets no reward),
                "dead_reward" (a finished agent gets one), "revive" (a finished agent comes
                back), "nan_reward", "all_masked" (agent_0's action mask allows nothing, with
                ``masks``)
    masks       None, "obs" or "info": each step forbids one of the two actions, at random, half
                of the time, with the mask in each agent's observation dict
                ({"observation", "action_mask"}, as PettingZoo's classic envs) or its info; an
                agent that takes a forbidden action raises
    state       whether the env gives a global state (``state()``: every beacon)
    scout       whether the last agent is a scout, with spaces of its own: it also sees the
                other agents' mean beacon (a 3-vector) and has a third action, which never pays

Make it with ``env.id: mentor.envs.teams:beacons`` and ``env.kwargs``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv


class Beacons(ParallelEnv):
    metadata: ClassVar[dict[str, Any]] = {"name": "beacons_v0", "render_modes": []}

    def __init__(
        self,
        agents: int = 2,
        length: int = 8,
        finish_at: dict[str, int] | None = None,
        arrive_at: dict[str, int] | None = None,
        fault: str | None = None,
        state: bool = True,
        masks: str | None = None,
        scout: bool = False,
    ) -> None:
        self.possible_agents = [f"agent_{i}" for i in range(agents)]
        self.length = length
        self.finish_at = dict(finish_at or {})
        self.arrive_at = dict(arrive_at or {})
        self.fault = fault
        self._has_state = state
        self._obs_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.scout = scout
        self._scout_space = spaces.Box(-1.0, 1.0, (3,), np.float32)
        self._action_space = spaces.Discrete(2)
        self.masks = masks
        if masks == "obs":
            self._obs_space = spaces.Dict(
                {"observation": self._obs_space, "action_mask": spaces.MultiBinary(2)}
            )
            self._scout_space = spaces.Dict(
                {"observation": self._scout_space, "action_mask": spaces.MultiBinary(3)}
            )
        self.allowed = np.ones((agents, 3), dtype=np.int8)  # the scout's third: always allowed
        if state:
            self.state_space = spaces.Box(-1.0, 1.0, (agents,), np.float32)
        self._np_random = np.random.default_rng()
        self.agents: list[str] = []
        self.t = 0
        self.beacons = np.zeros(agents, dtype=np.int64)
        self.finished: set[str] = set()

    def _is_scout(self, agent: str) -> bool:
        return self.scout and agent == self.possible_agents[-1]

    def observation_space(self, agent: str) -> spaces.Space:
        return self._scout_space if self._is_scout(agent) else self._obs_space

    def action_space(self, agent: str) -> spaces.Space:
        return spaces.Discrete(3) if self._is_scout(agent) else self._action_space

    def state(self) -> np.ndarray:
        if not self._has_state:
            raise NotImplementedError("Beacons(state=False) gives no global state")
        return (2.0 * self.beacons - 1.0).astype(np.float32)

    def _obs(self, agent: str) -> Any:
        i = self.possible_agents.index(agent)
        obs = np.array([2.0 * self.beacons[i] - 1.0, self.t / self.length], dtype=np.float32)
        if self._is_scout(agent):
            others = 2.0 * self.beacons[:-1].mean() - 1.0 if i else 0.0
            obs = np.append(obs, np.float32(others))
        if self.masks == "obs":
            return {"observation": obs, "action_mask": self._allowed(agent)}
        return obs

    def _allowed(self, agent: str) -> np.ndarray:
        i = self.possible_agents.index(agent)
        return self.allowed[i, : 3 if self._is_scout(agent) else 2].copy()

    def _info(self, agent: str) -> dict[str, Any]:
        return {"action_mask": self._allowed(agent)} if self.masks == "info" else {}

    def _draw_masks(self) -> None:
        if self.masks is None:
            return
        self.allowed[:] = 1
        forbid = self._np_random.random(len(self.possible_agents)) < 0.5
        which = self._np_random.integers(0, 2, len(self.possible_agents))
        self.allowed[forbid, which[forbid]] = 0
        if self.fault == "all_masked" and self.t == 3:
            self.allowed[0] = 0

    def _present(self) -> list[str]:
        return [
            agent
            for agent in self.possible_agents
            if agent not in self.finished and self.arrive_at.get(agent, 0) <= self.t
        ]

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
        if seed is not None:
            self._np_random = np.random.default_rng(seed)
        self.t = 0
        self.finished = set()
        self.beacons = self._np_random.integers(0, 2, len(self.possible_agents))
        self._draw_masks()
        self.agents = self._present()
        return {a: self._obs(a) for a in self.agents}, {a: self._info(a) for a in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        acting = list(self.agents)
        for agent in acting:
            if not self.allowed[self.possible_agents.index(agent), int(actions[agent])]:
                raise ValueError(f"{agent} took action {actions[agent]}, which its mask forbids")
        rewards = {
            a: float(actions[a] == self.beacons[self.possible_agents.index(a)]) for a in acting
        }
        self.t += 1
        self.beacons = self._np_random.integers(0, 2, len(self.possible_agents))
        self._draw_masks()
        terminated = {a: self.finish_at.get(a) == self.t for a in acting}
        truncated = {a: self.t >= self.length and not terminated[a] for a in acting}
        self.finished |= {a for a in acting if terminated[a] or truncated[a]}
        obs = {a: self._obs(a) for a in acting}
        self.agents = self._present()
        for agent in self.agents:
            if agent not in obs:  # it arrived this step: PettingZoo lists it in every dict
                obs[agent], rewards[agent] = self._obs(agent), 0.0
                terminated[agent] = truncated[agent] = False
        self._inject(acting, rewards)
        infos = {a: self._info(a) for a in obs}
        return obs, rewards, terminated, truncated, infos

    def _inject(self, acting: list[str], rewards: dict[str, float]) -> None:
        """The fault this env was asked for, at its third step."""
        if self.fault is None or self.t != 3:
            return
        if self.fault == "missing_reward":
            del rewards[acting[0]]
        elif self.fault == "dead_reward":
            rewards["agent_dead"] = 0.0
        elif self.fault == "revive" and self.finished:
            self.agents.append(sorted(self.finished)[0])
        elif self.fault == "nan_reward":
            rewards[acting[0]] = float("nan")


def beacons(**kwargs: Any) -> Beacons:
    """``env.id: mentor.envs.teams:beacons``."""
    return Beacons(**kwargs)


def follow_beacon(obs: dict[str, Any]) -> dict[str, int]:
    """The scripted policy that earns every reward: each agent does what its beacon says."""
    vectors = {agent: o["observation"] if isinstance(o, dict) else o for agent, o in obs.items()}
    return {agent: int(o[0] > 0) for agent, o in vectors.items()}
