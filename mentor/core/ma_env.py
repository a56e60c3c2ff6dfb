"""Multi-agent envs as mentor's loops see them: agents become rows.

``MultiAgentVecEnv`` steps N copies of a PettingZoo parallel env with A ``possible_agents`` and
shows them to a method as ``VecEnv`` does a single-agent vector env, with ``num_envs = N * A``
rows in a fixed order: copy i's agent j is row ``i * A + j``. One network call acts for every
agent of every copy, and single-agent PPO's storage, GAE and update run on the rows unchanged.

The contract, row by row, is ``VecEnv``'s:

- Observations come out encoded, followed (``agent_ids``) by a one-hot of the agent's index, so
  that one network shared by all agents can tell them apart.
- ``needs_reset[row]`` says that the row's next action is ignored and its next transition is not
  learned from: its copy resets at the next step, or its agent is not alive (it finished, or has
  not appeared yet). Such a row gets reward 0 and keeps its last observation.
- Autoreset is Gymnasium's NEXT_STEP mode, emulated (PettingZoo has none): when every agent of a
  copy is done, the step that ended it returns each agent's final observation (truncated agents
  bootstrap from it), and the next ``step`` resets that copy, ignoring its actions.
- An agent that finishes while the others play on is done for its row: terminated or truncated
  at that step, not alive afterwards. Agents may appear within an episode.
- The env must keep PettingZoo's API (FAULT-12): the reward, termination and truncation dicts
  of a step hold exactly the agents that acted; an agent does not come back after it finished.
  Otherwise an ``EnvError`` names the copy, the agent and the step.
- A finished episode is one ``Episode`` per copy: its return is the team return, the mean over
  the agents that played of each agent's return (per-agent units: comparable across team
  sizes), its length the copy's steps, and ``info`` holds each agent's own return as
  ``return/<agent>``.
- Action masks (``envs/masks.py``), from each agent's observation dict (``"action_mask"``, as
  PettingZoo's classic envs give them) or its info: ``action_mask`` is ``(num_envs, size)``
  bools, one row per agent of each copy, all True for rows whose next action is ignored; a mask
  allowing nothing where an agent must act names the copy, the agent and the step.
- Turn-based games (an AEC env whose agents take turns, through PettingZoo's
  ``turn_based_aec_to_parallel``): at each step only the agent whose turn it is acts; the rows
  of the other live agents wait (``waiting``): their actions are ignored and their steps are no
  decisions, but the rewards and the episode end they receive are theirs, credited to their
  agent's last move (``core/returns.py: gae_over_turns``). ``waiting`` is None for a parallel
  env.
- ``global_state()`` (``env.state()``, per copy) and ``joint_observations()`` (every agent's
  encoded observation of a copy, concatenated) are what a centralized critic reads.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from mentor.core.agent_rows import AgentRows, AgentsSpec, common_spaces, row_space
from mentor.core.vec_env import Episode, rollout_metrics
from mentor.envs.masks import MaskReader, MaskSource, mask_nvec, obs_mask_source, sample_allowed
from mentor.envs.pettingzoo import (
    agent_spaces,
    has_state,
    is_turn_based,
    make_parallel_env,
    turn_of,
)
from mentor.envs.snapshot import SnapshotUnavailable, from_json, to_json
from mentor.envs.snapshot_pettingzoo import parallel_snapshot, restore_parallel
from mentor.envs.spaces import MASK_KEY, to_env_actions
from mentor.errors import ConfigError, EnvError, NonFiniteError


class MultiAgentVecEnv:
    """N copies of a PettingZoo parallel env, as rows (see the module docstring)."""

    def __init__(
        self,
        envs: list[Any],
        env_id: str,
        agent_ids: bool = True,
        check_finite: bool = True,
    ) -> None:
        self.envs = envs
        self.env_id = env_id
        first = envs[0]
        self.agents = tuple(first.possible_agents)
        per_agent = agent_spaces(first, env_id)
        for index, env in enumerate(envs[1:], start=1):
            if tuple(env.possible_agents) != self.agents:
                raise EnvError(
                    f"env '{env_id}' copy {index} has agents {list(env.possible_agents)}, copy 0 "
                    f"{list(self.agents)}: the copies of an env must have the same agents"
                )
            _check_same_spaces(env_id, index, self.agents, per_agent, agent_spaces(env, env_id))
        # The rows' spaces: the agents' own, or padded ones for agents that differ (agent_rows).
        obs_space, act_space = common_spaces(env_id, self.agents, per_agent)
        self.observation_space, self.action_space = obs_space, act_space
        self.num_copies = len(envs)
        self.num_agents = len(self.agents)
        self.num_envs = self.num_copies * self.num_agents
        state = first.state_space if has_state(first) else None
        differ = any(pair != per_agent[0] for pair in per_agent)
        self.agents_spec = AgentsSpec(
            self.agents, agent_ids, state, tuple(per_agent) if differ else None
        )
        self.encoder = AgentRows(self.agents_spec, obs_space, act_space)
        self.row_space = row_space(obs_space, self.num_agents, agent_ids)
        self.obs_shape = self.encoder.shape
        self.check_finite = check_finite
        self.info_keys: dict[str, str] = {}
        self.restarts: list[str] = []
        n, a = self.num_copies, self.num_agents
        self.obs = np.zeros((self.num_envs, *self.obs_shape), dtype=np.float32)
        self.raw_obs: list[Any] = [None] * self.num_envs  # each row's, as the env gave it
        self.alive = np.zeros((n, a), dtype=bool)
        self.finished = np.zeros((n, a), dtype=bool)  # done earlier in this episode
        self.played = np.zeros((n, a), dtype=bool)  # alive at some step of this episode
        self.copy_done = np.zeros(n, dtype=bool)
        self.turn_based = is_turn_based(first)
        self.waits = np.zeros((n, a), dtype=bool)  # live, but another agent's turn
        self.episode_return = np.zeros((n, a), dtype=np.float64)
        self.episode_length = np.zeros(n, dtype=np.int64)
        self.episodes: list[Episode] = []
        self.steps = 0
        self.last_obs: np.ndarray | None = None
        self.action_mask: np.ndarray | None = None
        self.mask_source: MaskSource | None = None
        self._masks: list[MaskReader] = []
        source = obs_mask_source(*per_agent[0], f"env '{env_id}'")
        for agent, (own_obs, own_act) in zip(self.agents[1:], per_agent[1:], strict=True):
            obs_mask_source(own_obs, own_act, f"env '{env_id}' (agent '{agent}')")  # checked
        if source is not None:
            self._use_masks(source)
        self._masks_decided = source is not None  # else by the first reset's infos

    @classmethod
    def make(
        cls,
        env_id: str,
        kwargs: dict[str, Any],
        num_envs: int,
        *,
        agent_ids: bool = True,
        check_finite: bool = True,
        vectorization: str = "auto",
        max_episode_steps: int | None = None,
        info_keys: dict[str, str] | None = None,
        preset: str | None = None,
        **_: Any,
    ) -> MultiAgentVecEnv:
        if preset is not None:
            raise ConfigError(f"env.preset '{preset}' is for Atari games; leave it unset here")
        if vectorization not in ("auto", "sync"):
            raise ConfigError(
                f"env.vectorization '{vectorization}': PettingZoo envs are stepped in one "
                "process (auto or sync)"
            )
        if max_episode_steps is not None:
            raise ConfigError(
                "env.max_episode_steps: PettingZoo envs set their own episode length (MPE's "
                "max_cycles, in env.kwargs); leave it unset"
            )
        if info_keys:
            raise ConfigError(
                "env.info_keys are not read from PettingZoo envs yet; each agent's return is "
                "kept with every episode (return/<agent>)"
            )
        envs = [make_parallel_env(env_id, kwargs) for _ in range(num_envs)]
        try:
            return cls(envs, env_id, agent_ids, check_finite)
        except BaseException:
            for env in envs:
                env.close()
            raise

    @property
    def needs_reset(self) -> np.ndarray:
        """Rows whose next action is ignored (see the module docstring)."""
        return ~(self.alive & ~self.copy_done[:, None] & ~self.waits).reshape(-1)

    @property
    def waiting(self) -> np.ndarray | None:
        """Rows whose agent waits for another's move (turn-based games), else None."""
        if not self.turn_based:
            return None
        return (self.waits & ~self.copy_done[:, None]).reshape(-1)

    # --- stepping ------------------------------------------------------------------------------

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Reset every copy (copy i with ``seed + i``); the rows' first observations."""
        seen: list[tuple[dict, dict]] = []
        for i, env in enumerate(self.envs):
            obs, infos = env.reset(seed=None if seed is None else seed + i)
            self._start_episode(i, obs)
            seen.append((obs, infos))
        self.copy_done[:] = False
        if not self._masks_decided:
            self._masks_decided = True
            if any(MASK_KEY in (info or {}) for _, infos in seen for info in infos.values()):
                self._use_masks("info")
        self._read_masks(seen)
        self.last_obs = self.obs.copy()
        return self.last_obs

    def _start_episode(self, i: int, obs: dict[str, Any]) -> None:
        self.finished[i] = False
        self.played[i] = False
        self.episode_return[i] = 0.0
        self.episode_length[i] = 0
        base = i * self.num_agents
        self.obs[base : base + self.num_agents] = 0.0
        self.alive[i] = False
        self._arrive(i, obs, list(self.envs[i].agents))
        self._take_turns(i)

    def _arrive(self, i: int, obs: dict[str, Any], agents: list[str]) -> None:
        """The agents of copy i that are live now: each must have an observation and be one of
        the possible agents, none may have finished earlier in the episode (FAULT-12)."""
        for agent in agents:
            if agent not in self.encoder.index:
                raise EnvError(
                    f"env '{self.env_id}' copy {i} has agent '{agent}', which is not one of its "
                    f"possible_agents {list(self.agents)}"
                )
            if self.finished[i, self.encoder.index[agent]]:
                raise EnvError(
                    f"env '{self.env_id}' copy {i} revived agent '{agent}' at step {self.steps} "
                    "after it finished: an agent that terminated or truncated does not come "
                    "back within an episode (FAULT-12)"
                )
            if agent not in obs:
                raise EnvError(
                    f"env '{self.env_id}' copy {i} gave no observation for live agent '{agent}' "
                    f"at step {self.steps}"
                )
        self._write_obs(i, obs, agents)
        indices = [self.encoder.index[agent] for agent in agents]
        self.alive[i, indices] = True
        self.played[i, indices] = True

    def _take_turns(self, i: int) -> None:
        """In a turn-based game, every live agent of copy i but the one to move waits."""
        if not self.turn_based:
            return
        self.waits[i] = self.alive[i]
        turn = turn_of(self.envs[i])
        if turn is not None:
            self.waits[i, self.encoder.index[turn]] = False

    def _write_obs(self, i: int, obs: dict[str, Any], agents: list[str]) -> None:
        """Encode the observations of ``agents`` (of copy i) into their rows."""
        if not agents:
            return
        indices = [self.encoder.index[agent] for agent in agents]
        rows = self.encoder.rows([obs[agent] for agent in agents], indices)
        if self.check_finite and rows.dtype.kind == "f" and not np.isfinite(rows).all():
            row, element = np.argwhere(~np.isfinite(rows))[0]
            raise NonFiniteError(
                f"env '{self.env_id}' copy {i} gave agent '{agents[row]}' an observation with "
                f"{rows[row, element]} at element {element} (step {self.steps})"
            )
        for agent, j in zip(agents, indices, strict=True):
            self.raw_obs[i * self.num_agents + j] = obs[agent]
        self.obs[[i * self.num_agents + j for j in indices]] = rows

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Step every copy with one action per row; returns (obs, rewards, terminated,
        truncated), one entry per row."""
        self.steps += 1
        env_actions = to_env_actions(self.action_space, np.asarray(actions))
        rewards = np.zeros(self.num_envs, dtype=np.float32)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        a = self.num_agents
        seen: list[tuple[dict, dict]] = []
        for i, env in enumerate(self.envs):
            if self.copy_done[i]:  # NEXT_STEP: this step resets the copy, its actions ignored
                obs, infos = env.reset()
                self._start_episode(i, obs)
                self.copy_done[i] = False
                seen.append((obs, infos))
                continue
            base = i * a
            acting = [agent for j, agent in enumerate(self.agents) if self.alive[i, j]]
            rows = [base + self.encoder.index[agent] for agent in acting]
            obs, reward, term, trunc, infos = env.step(
                {agent: _one(env_actions[row]) for agent, row in zip(acting, rows, strict=True)}
            )
            seen.append((obs, infos))
            arrived = [agent for agent in env.agents if agent not in acting]
            self._check_keys(i, acting, arrived, reward, term, trunc)
            for agent, row in zip(acting, rows, strict=True):
                rewards[row] = reward[agent]
                terminated[row], truncated[row] = bool(term[agent]), bool(trunc[agent])
            done = [
                agent
                for agent, row in zip(acting, rows, strict=True)
                if truncated[row] or terminated[row]
            ]
            # Final observations, where the env gives them (truncated agents bootstrap from them).
            self._write_obs(i, obs, [agent for agent in done if agent in obs])
            for agent in done:
                self.alive[i, self.encoder.index[agent]] = False
                self.finished[i, self.encoder.index[agent]] = True
            self._arrive(i, obs, list(env.agents))
            self._take_turns(i)
            self.episode_length[i] += 1
            self.episode_return[i] += rewards[base : base + a]
            if not self.alive[i].any():
                self.copy_done[i] = True
                self._record_episode(i)
        if self.check_finite and not np.isfinite(rewards).all():
            row = int(np.flatnonzero(~np.isfinite(rewards))[0])
            raise NonFiniteError(
                f"env '{self.env_id}' copy {row // a} gave agent '{self.agents[row % a]}' reward "
                f"{rewards[row]} at step {self.steps}"
            )
        self._read_masks(seen)
        self.last_obs = self.obs.copy()
        return self.last_obs, rewards, terminated, truncated

    # --- action masks ----------------------------------------------------------------------------

    def _use_masks(self, source: MaskSource) -> None:
        where = "observation entry" if source == "obs" else "info"
        self.mask_source = source
        self._masks = [
            MaskReader(
                mask_nvec(own[1], f"env '{self.env_id}' gives action masks ({where})"),
                source,
                self.env_id,
                agent,
            )
            for agent, own in zip(self.agents, self.encoder.own, strict=True)
        ]

    def _read_masks(self, seen: list[tuple[dict, dict]]) -> None:
        """Each row's mask from what every copy returned (``seen``, one (obs, infos) per copy):
        the live agents' from their observation or info, checked agent by agent, over the rows'
        actions (agents with fewer actions than the rows have: only their own allowed)."""
        limits = self.encoder.action_limits
        if not self._masks:
            if limits is not None:
                self.action_mask = np.tile(limits, (self.num_copies, 1))
            return
        n, a = self.num_copies, self.num_agents
        ignored = self.needs_reset.reshape(n, a)
        masks = np.empty((n, a, self.encoder.row_actions), dtype=bool)
        for j, (agent, reader) in enumerate(zip(self.agents, self._masks, strict=True)):
            raw = np.ones((n, reader.size), dtype=bool)
            reported = np.zeros(n, dtype=bool)
            for i, (obs, infos) in enumerate(seen):
                if not self.alive[i, j]:
                    continue
                holder = obs.get(agent) if self.mask_source == "obs" else (infos or {}).get(agent)
                if isinstance(holder, dict) and MASK_KEY in holder:
                    values = np.asarray(holder[MASK_KEY]).reshape(-1)
                    if values.size != reader.size:
                        raise EnvError(
                            f"env '{self.env_id}' copy {i} gave agent '{agent}' an {MASK_KEY} "
                            f"of {values.size} entries; its action space needs {reader.size}"
                        )
                    raw[i], reported[i] = values != 0, True
            batch = {MASK_KEY: raw, f"_{MASK_KEY}": reported}
            obs = batch if self.mask_source == "obs" else None
            masks[:, j] = self.encoder.pad_mask(
                j, reader.read(obs, batch, ignored[:, j], self.steps)
            )
        self.action_mask = masks.reshape(n * a, -1)

    def _check_keys(self, i: int, acting: list[str], arrived: list[str], *dicts: dict) -> None:
        """FAULT-12: a step's reward, termination and truncation hold the agents that acted,
        and may hold those that arrived at this step (PettingZoo lists them), nothing else."""
        allowed = set(acting) | set(arrived)
        for name, values in zip(("reward", "termination", "truncation"), dicts, strict=True):
            keys = set(values)
            missing = [agent for agent in acting if agent not in keys]
            extra = sorted(keys - allowed)
            if missing or extra:
                what = (
                    f"no {name} for live agent '{missing[0]}'"
                    if missing
                    else f"a {name} for agent '{extra[0]}', which is not alive"
                )
                raise EnvError(
                    f"env '{self.env_id}' copy {i} gave {what} at step {self.steps}: a step's "
                    f"{name}s are those of the agents that acted, {acting} (FAULT-12)"
                )

    def _record_episode(self, i: int) -> None:
        played = self.played[i]
        returns = self.episode_return[i]
        team = float(returns[played].mean()) if played.any() else 0.0
        info = {
            f"return/{agent}": float(returns[j]) for j, agent in enumerate(self.agents) if played[j]
        }
        self.episodes.append(Episode(i, team, int(self.episode_length[i]), info))

    # --- what a centralized critic reads ------------------------------------------------------

    def global_state(self) -> np.ndarray:
        """(num_copies, state_dim): each copy's ``env.state()`` now."""
        if self.agents_spec.state_space is None:
            raise ConfigError(
                f"env '{self.env_id}' gives no global state (env.state()): use a critic on the "
                "agents' joint observations instead (method.critic=observations)"
            )
        states = [np.asarray(env.state(), dtype=np.float32).reshape(-1) for env in self.envs]
        return np.stack(states)

    def joint_observations(self) -> np.ndarray:
        """(num_copies, A * obs_dim): every agent's encoded observation of a copy, in agent
        order, without agent ids (absent agents: zeros, or their last observation)."""
        width = self.encoder.shape[0] - (self.num_agents if self.encoder.agent_ids else 0)
        rows = self.obs.reshape(self.num_copies, self.num_agents, -1)[..., :width]
        return rows.reshape(self.num_copies, -1)

    # --- episode records -----------------------------------------------------------------------

    def pop_episodes(self) -> list[Episode]:
        out, self.episodes = self.episodes, []
        return out

    def episode_metrics(self) -> dict[str, float]:
        """``rollout/`` metrics of the episodes finished since the last call: the team return
        and length, and each agent's mean return (``rollout/return_<agent>_mean``)."""
        keys = {f"return/{agent}": f"rollout/return_{agent}_mean" for agent in self.agents}
        return rollout_metrics(self.pop_episodes(), keys)

    # --- exact resume --------------------------------------------------------------------------

    def snapshot(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(tensors, JSON-ready values): the rows' bookkeeping and every copy's env state."""
        tensors = {name: torch.from_numpy(getattr(self, name).copy()) for name in _SNAPSHOT_ARRAYS}
        if self.action_mask is not None:
            tensors["action_mask"] = torch.from_numpy(self.action_mask.copy())
        values: dict[str, Any] = {
            "steps": self.steps,
            "episodes": [episode.to_json() for episode in self.episodes],
            "mask_source": self.mask_source,
        }
        try:
            copies = [to_json(parallel_snapshot(env)) for env in self.envs]
            values.update(available=True, copies=copies, raw_obs=to_json(self.raw_obs))
        except SnapshotUnavailable as exc:
            values.update(available=False, reason=exc.reason)
        return tensors, values

    def restore(
        self, tensors: dict[str, torch.Tensor] | None, values: dict[str, Any], seed: int
    ) -> str:
        """Put every copy back where a snapshot found it (module docstring); copies whose env
        could not give its state start new episodes (reset with ``seed``)."""
        if not values.get("available") or tensors is None:
            self.reset(seed=seed)
            return f"reset to new episodes: {values.get('reason', 'no env state saved')}"
        for env, saved in zip(self.envs, values["copies"], strict=True):
            restore_parallel(env, from_json(saved))
        for name in _SNAPSHOT_ARRAYS:
            if name == "waits" and name not in tensors:  # a checkpoint from before turns
                continue
            getattr(self, name)[...] = tensors[name].numpy()
        self.steps = values["steps"]
        if "raw_obs" in values:  # a checkpoint from before self-play's opponents read them
            self.raw_obs = from_json(values["raw_obs"])
        self.episodes = [Episode.from_json(episode) for episode in values["episodes"]]
        if not self._masks and values.get("mask_source") is not None:
            self._use_masks(values["mask_source"])
        self._masks_decided = True
        if "action_mask" in tensors:
            self.action_mask = tensors["action_mask"].numpy().copy()
        self.last_obs = self.obs.copy()
        return "restored exactly"

    def close(self) -> None:
        for env in self.envs:
            env.close()


# What a snapshot holds of the rows' bookkeeping, besides each copy's env state.
_SNAPSHOT_ARRAYS = (
    "obs",
    "alive",
    "finished",
    "played",
    "copy_done",
    "waits",
    "episode_return",
    "episode_length",
)


def check_rollout(env_id: str, kwargs: dict[str, Any], steps: int = 200, seed: int = 0) -> None:
    """mentor's preflight of a multi-agent env: one copy, random actions (seeded) for ``steps``
    steps through the adapter, so that its API checks (FAULT-12), NaN checks and spaces are
    tried before a run folder is made."""
    venv = MultiAgentVecEnv.make(env_id, kwargs, 1)
    rng = np.random.default_rng(seed)
    try:
        venv.action_space.seed(seed)
        venv.reset(seed=seed)
        for _ in range(steps):
            venv.step(_random_actions(venv, rng))
    finally:
        venv.close()


def _random_actions(venv: MultiAgentVecEnv, rng: np.random.Generator) -> np.ndarray:
    """One random action per row, among the allowed ones where the env gives masks."""
    if venv.action_mask is None:
        return np.stack([venv.action_space.sample() for _ in range(venv.num_envs)])
    nvec = mask_nvec(venv.action_space, "")
    parts = np.split(venv.action_mask, np.cumsum(nvec)[:-1], axis=1)
    picks = np.stack([sample_allowed(part, rng) for part in parts], axis=1)
    return picks[:, 0] if isinstance(venv.action_space, spaces.Discrete) else picks


def _one(action: np.ndarray) -> Any:
    """One agent's action as PettingZoo envs take it: a Python int for Discrete."""
    return action.item() if np.ndim(action) == 0 else action


def _check_same_spaces(
    env_id: str,
    index: int,
    agents: tuple[str, ...],
    first: list[tuple[spaces.Space, spaces.Space]],
    theirs: list[tuple[spaces.Space, spaces.Space]],
) -> None:
    """Raise EnvError when copy ``index`` gives an agent other spaces than copy 0 does."""
    for agent, own, other in zip(agents, first, theirs, strict=True):
        for kind, expected, actual in zip(("observation", "action"), own, other, strict=True):
            if actual != expected:
                raise EnvError(
                    f"env '{env_id}' copy {index} gives agent '{agent}' {kind} space {actual}, "
                    f"copy 0 {expected}: every copy must have the same spaces (do the env's "
                    "kwargs vary them?)"
                )
