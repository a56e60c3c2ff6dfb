"""Agents' observations as rows of one batch, and what a multi-agent agent knows of its agents.

Agents become rows (``core/ma_env.py``): every agent's observation is one row of the batch the
network reads, and every row's action is one agent's. When all agents share their spaces, a row
is the agent's encoded observation (then, with ``agent_ids``, a one-hot of its index).

Agents whose spaces differ (``simple_speaker_listener_v4``: a speaker that sees 3 numbers and
says one of 3 words, a listener that sees 11 and moves one of 5 ways) are grouped by space, one
policy per group, and still share one batch:

- each agent's encoded observation is padded with zeros to the widest group's width;
- the rows' action space is Discrete(the largest n), and each row's action mask allows only its
  agent's own n actions (``AgentRows.action_limits``): a masked categorical over n' >= n logits
  is exactly a categorical over the first n (``core/distributions.py``);
- the networks have one set of parameters per group (``parameter_groups``: one grouped call,
  ``core/networks.py: GroupedMLP``), read from the agent index each row ends with, so a group's
  policy sees only its own rows; a zero-padded input adds first-layer weights that never get a
  gradient, so each group's network computes what a network of its own input width would.

This keeps one rollout, one storage, one update and one network call for every agent of every
copy, where separate (policy, storage) pairs per group would multiply the loop and the
checkpoint. Padding reaches as far as it is exact: vector observations of any widths, Discrete
actions of any sizes, or action spaces all equal. Box actions of different shapes or bounds,
MultiDiscrete of different sizes and image observations among differing agents are refused
naming the agents and spaces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import concatenate, create_empty_array

from mentor.envs.spaces import (
    describe,
    has_action_mask,
    obs_encoder,
    space_from_json,
    space_to_json,
)
from mentor.errors import ConfigError, UnsupportedSpaceError

AgentSpaces = tuple[spaces.Space, spaces.Space]  # an agent's (observation, action) space


def row_space(obs_space: spaces.Space, num_agents: int, agent_ids: bool) -> spaces.Space:
    """The space of one row as the network reads it: the agent's encoded observation, then (with
    ``agent_ids``) a one-hot of its index among the env's agents."""
    if not agent_ids:
        return obs_space
    _, shape = obs_encoder(obs_space)
    if len(shape) != 1:
        raise ConfigError(
            f"env.agent_ids: the agents' observations ({describe(obs_space)}) are not vectors, "
            "so no agent id can be appended; set env.agent_ids=false"
        )
    return spaces.Box(-np.inf, np.inf, (shape[0] + num_agents,), np.float32)


def space_groups(per_agent: list[AgentSpaces]) -> tuple[int, ...]:
    """Each agent's group: agents with the same spaces share one, numbered in order of first
    appearance."""
    firsts: list[AgentSpaces] = []
    groups = []
    for pair in per_agent:
        match = next((g for g, first in enumerate(firsts) if first == pair), None)
        if match is None:
            firsts.append(pair)
            match = len(firsts) - 1
        groups.append(match)
    return tuple(groups)


def common_spaces(
    env_id: str, agents: tuple[str, ...], per_agent: list[AgentSpaces]
) -> AgentSpaces:
    """The observation and action space of the rows: the agents' own when they all share them,
    else the padded ones (module docstring). ``UnsupportedSpaceError`` names the agents and spaces
    that cannot share rows."""
    obs_spaces = [obs for obs, _ in per_agent]
    act_spaces = [act for _, act in per_agent]
    if all(obs == obs_spaces[0] for obs in obs_spaces):
        obs_space = obs_spaces[0]
    else:
        widths = []
        for obs in obs_spaces:
            _, shape = obs_encoder(obs)
            if len(shape) != 1:
                j = next(j for j, other in enumerate(obs_spaces) if other != obs_spaces[0])
                raise _unsupported(
                    env_id, agents[j], "observation", obs_spaces[j], agents[0], obs_spaces[0]
                )
            widths.append(shape[0])
        if len({has_action_mask(obs) for obs in obs_spaces}) > 1:
            agent = next(
                a for a, obs in zip(agents, obs_spaces, strict=True) if not has_action_mask(obs)
            )
            raise UnsupportedSpaceError(
                f"env '{env_id}': agent '{agent}' has no action mask in its observation "
                f"({describe(obs_spaces[agents.index(agent)])}) and other agents have one: "
                "either every agent's observation holds an action mask, or none"
            )
        obs_space = spaces.Box(-np.inf, np.inf, (max(widths),), np.float32)
    if all(act == act_spaces[0] for act in act_spaces):
        return obs_space, act_spaces[0]
    if not all(isinstance(act, spaces.Discrete) and int(act.start) == 0 for act in act_spaces):
        j = next(j for j, act in enumerate(act_spaces) if act != act_spaces[0])
        raise _unsupported(env_id, agents[j], "action", act_spaces[j], agents[0], act_spaces[0])
    return obs_space, spaces.Discrete(max(int(act.n) for act in act_spaces))


def _unsupported(
    env_id: str, agent: str, kind: str, space: spaces.Space, first: str, first_space: spaces.Space
) -> UnsupportedSpaceError:
    return UnsupportedSpaceError(
        f"env '{env_id}': agent '{agent}' has {kind} space {describe(space)} and agent '{first}' "
        f"{describe(first_space)}: agents with different spaces share rows when their "
        "observations are vectors (of any widths) and their actions Discrete (of any sizes, "
        "from 0) or all the same space"
    )


@dataclass(frozen=True)
class AgentsSpec:
    """What a multi-agent agent knows of its env besides the rows' spaces: the agents in row
    order, whether rows carry agent ids, the global state's space (None when the env has no
    ``state()``), and each agent's own spaces where agents differ (None when all share them).
    Saved with every checkpoint (``Agent.spaces_meta``); a multi-agent method's
    ``build_networks`` takes it as ``agents=``."""

    agents: tuple[str, ...]
    agent_ids: bool
    state_space: spaces.Box | None = None
    agent_spaces: tuple[AgentSpaces, ...] | None = None

    def __post_init__(self) -> None:
        if self.agent_spaces is not None and not self.agent_ids:
            raise ConfigError(
                f"env.agent_ids=false: the agents {list(self.agents)} have different spaces, and "
                "a row's group (its policy) is read from the agent id it ends with; set "
                "env.agent_ids=true"
            )

    @property
    def num_agents(self) -> int:
        return len(self.agents)

    @property
    def groups(self) -> tuple[int, ...]:
        """Each agent's group (by space); all 0 when the agents share their spaces."""
        if self.agent_spaces is None:
            return (0,) * self.num_agents
        return space_groups(list(self.agent_spaces))

    def own_spaces(self, agent_index: int, rows: AgentSpaces) -> AgentSpaces:
        """Agent ``agent_index``'s own spaces (``rows``: the rows' common ones)."""
        return rows if self.agent_spaces is None else self.agent_spaces[agent_index]

    def to_json(self) -> dict[str, Any]:
        state = None if self.state_space is None else space_to_json(self.state_space)
        data: dict[str, Any] = {
            "agents": list(self.agents),
            "agent_ids": self.agent_ids,
            "state_space": state,
        }
        if self.agent_spaces is not None:
            data["agent_spaces"] = [
                [space_to_json(obs), space_to_json(act)] for obs, act in self.agent_spaces
            ]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AgentsSpec:
        state = data.get("state_space")
        own = data.get("agent_spaces")
        return cls(
            tuple(data["agents"]),
            bool(data["agent_ids"]),
            None if state is None else space_from_json(state),
            None
            if own is None
            else tuple((space_from_json(obs), space_from_json(act)) for obs, act in own),
        )


def parameter_groups(agents: AgentsSpec, share_parameters: bool) -> tuple[int, ...] | None:
    """Which parameters each agent's rows go through (``ActorCritic(groups=...)``): one set per
    agent without sharing, one per group of agents with the same spaces with it (None: one set
    for all, when every agent shares its spaces)."""
    if not share_parameters:
        return tuple(range(agents.num_agents))
    groups = agents.groups
    return None if max(groups) == 0 else groups


class AgentRows:
    """Dicts of per-agent observations to rows, and each agent's allowed actions among the
    rows': the encoding that training and ``Agent.act`` share."""

    def __init__(self, spec: AgentsSpec, obs_space: spaces.Space, act_space: spaces.Space) -> None:
        self.agents = spec.agents
        self.index = {agent: j for j, agent in enumerate(spec.agents)}
        self.obs_space = obs_space
        self.agent_ids = spec.agent_ids
        self.ids = np.eye(len(spec.agents), dtype=np.float32)
        self.own = [spec.own_spaces(j, (obs_space, act_space)) for j in range(len(spec.agents))]
        self.encoders = [obs_encoder(obs)[0] for obs, _ in self.own]
        self.widths = [obs_encoder(obs)[1] for obs, _ in self.own]
        # Agents whose observations share a space are encoded in one call: each agent's index
        # to its first agent with the same observation space.
        firsts = [next(i for i, (o, _) in enumerate(self.own) if o == obs) for obs, _ in self.own]
        self.obs_group = np.asarray(firsts)
        self.same_obs = len(set(firsts)) == 1
        width = obs_encoder(obs_space)[1]
        self.shape = (width[0] + len(spec.agents),) if spec.agent_ids else width
        self.action_limits = _action_limits(act_space, self.own)
        self.row_actions = _mask_size(act_space)  # the entries of a row's action mask

    def obs_space_of(self, agent: str) -> spaces.Space:
        return self.own[self.index[agent]][0]

    def rows(self, observations: list[Any], agent_indices: list[int]) -> np.ndarray:
        """Encoded rows for observations of the agents with these indices."""
        if self.same_obs:
            space = self.own[0][0]
            batch = concatenate(space, observations, create_empty_array(space, len(observations)))
            encoded = self.encoders[0](batch)
        else:
            encoded = np.zeros((len(observations), self.shape[0] - self._ids_width), np.float32)
            groups = self.obs_group[agent_indices]
            for first in np.unique(groups):
                picked = np.flatnonzero(groups == first)
                space = self.own[first][0]
                batch = concatenate(
                    space, [observations[i] for i in picked], create_empty_array(space, len(picked))
                )
                encoded[picked, : self.widths[first][0]] = self.encoders[first](batch)
        if not self.agent_ids:
            return encoded
        return np.concatenate([encoded, self.ids[agent_indices]], axis=1)

    @property
    def _ids_width(self) -> int:
        return len(self.agents) if self.agent_ids else 0

    def pad_mask(self, agent_index: int, mask: np.ndarray) -> np.ndarray:
        """An agent's own action mask (bool, its actions' entries) over the rows' actions."""
        if self.action_limits is None:
            return mask
        out = np.zeros((*mask.shape[:-1], self.action_limits.shape[1]), dtype=bool)
        out[..., : mask.shape[-1]] = mask
        return out


def _mask_size(action_space: spaces.Space) -> int | None:
    if isinstance(action_space, spaces.Discrete):
        return int(action_space.n)
    if isinstance(action_space, spaces.MultiDiscrete):
        return int(np.asarray(action_space.nvec).sum())
    return None


def _action_limits(rows: spaces.Space, own: list[AgentSpaces]) -> np.ndarray | None:
    """(num_agents, rows' n) bools: agent j may take the first n_j actions; None when every
    agent has the rows' action space."""
    if all(act == rows for _, act in own):
        return None
    assert isinstance(rows, spaces.Discrete)
    limits = np.zeros((len(own), int(rows.n)), dtype=bool)
    for j, (_, act) in enumerate(own):
        limits[j, : int(act.n)] = True
    return limits
