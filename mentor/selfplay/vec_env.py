"""A multi-agent game as the learner sees it in self-play: its own side of each env copy.

``SelfPlayVecEnv`` wraps a ``MultiAgentVecEnv`` (``core/ma_env.py``) of N copies of a game and
shows a method the learner's rows only, with ``VecEnv``'s interface. A game has **sides**: each
agent one of its own (two players, or a free-for-all), or teams (``selfplay.teams``). In copy i
the learner holds one side, its rows the inner rows of that side's agents (each agent's
observation and index); the other sides are held by the copy's opponent, drawn from an
``Opponents`` (the pool, one fixed opponent, or a league exploiter's). Each ``step`` takes the
learner's actions, asks each opponent for its rows' actions (one call per opponent, for all the
copies it plays), and steps the inner env once.

- Turn-based games keep their turns: while the opponent moves, the learner's row waits
  (``waiting``), and the reward its move earns at the opponent's turn (a loss) is credited to
  its last move (``core/returns.py: gae_over_turns``), as in training every seat.
- Sides alternate: copy i's g-th game gives the learner side ``(i + g) mod S``, so in a
  two-player game it moves first in half of its games. Sides of different sizes (three
  predators and one prey) cannot alternate without changing the number of rows: copy i then
  keeps side ``i mod S``, so the learner plays each side in its share of the copies.
- When a copy's game ends, its score is the learner's (1 a win: its side's return, the mean of
  its agents', above every other side's; 1/2 a draw; 0 a loss), told to the opponents'
  ``record``, and the copy's next opponent and side are drawn then, before the NEXT_STEP reset
  that starts the game: which copy meets whom follows from the order of events, and a resumed
  run replays it.
- Its episodes are one per game: the learner's side's return, the game's length, and ``win``,
  ``draw``, ``loss`` (1 or 0) and ``seat`` (its side's index) in the info, so that an
  evaluation's means are the rates."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mentor.core.ma_env import MultiAgentVecEnv
from mentor.core.vec_env import Episode, rollout_metrics
from mentor.envs.snapshot import from_json, to_json
from mentor.errors import ConfigError
from mentor.selfplay.pool import Opponents

OUTCOMES = ("win", "draw", "loss")


def sides_of(agents: tuple[str, ...], teams: list[list[str]] | None) -> list[list[int]]:
    """The sides of a game, as agent indices: ``teams`` (each agent in exactly one), else each
    agent a side of its own. ``ConfigError`` names what is wrong."""
    if teams is None:
        return [[j] for j in range(len(agents))]
    named = [agent for team in teams for agent in team]
    unknown = [agent for agent in named if agent not in agents]
    missing = [agent for agent in agents if agent not in named]
    twice = sorted({agent for agent in named if named.count(agent) > 1})
    if unknown or missing or twice or len(teams) < 2 or not all(teams):
        raise ConfigError(
            f"selfplay.teams {teams}: every agent of the env ({', '.join(agents)}) in exactly "
            "one of at least two teams"
            + (f"; unknown {unknown}" if unknown else "")
            + (f"; missing {missing}" if missing else "")
            + (f"; twice {twice}" if twice else "")
        )
    return [[agents.index(agent) for agent in team] for team in teams]


class SelfPlayVecEnv:
    def __init__(
        self,
        inner: MultiAgentVecEnv,
        opponents: Opponents,
        teams: list[list[str]] | None = None,
    ) -> None:
        self.inner = inner
        self.opponents = opponents
        self.sides = sides_of(inner.agents, teams)
        # Sides of one size alternate between games; sides of several sizes stay with their copy
        # (copy i holds side i mod S), so that the learner's rows are as many at every step.
        self.alternate = len({len(side) for side in self.sides}) == 1
        self.env_id = inner.env_id
        self.agents_spec = inner.agents_spec
        self.observation_space = inner.observation_space
        self.action_space = inner.action_space
        self.obs_shape = inner.obs_shape
        self.info_keys: dict[str, str] = {}
        self.restarts = inner.restarts
        self.num_copies = inner.num_copies
        self.num_agents = inner.num_agents
        n = self.num_copies
        self.seats = np.arange(n, dtype=np.int64) % len(self.sides)  # each copy's learner side
        self.num_envs = sum(len(self.sides[side]) for side in self.seats)
        self.rows = self._rows()
        self.games = np.zeros(n, dtype=np.int64)  # games begun per copy: the side alternates
        self.drawn: list[str | None] = [None] * n  # each copy's opponent (a member's name)
        self.episodes: list[Episode] = []
        self.last_obs: np.ndarray | None = None
        self.league: Any = None  # a league's exploiters (league.py), beside the pool's learner

    # --- the rows' view -------------------------------------------------------------------------

    def _rows(self) -> np.ndarray:
        """The inner rows the learner holds: its side's agents in each copy, copy by copy."""
        a = self.num_agents
        return np.concatenate([[i * a + j for j in self.sides[side]]
                               for i, side in enumerate(self.seats)]).astype(np.int64)  # fmt: skip

    def side_name(self, side: int) -> str:
        return "+".join(self.inner.agents[j] for j in self.sides[side])

    @property
    def mask_source(self) -> str | None:
        return self.inner.mask_source

    @property
    def needs_reset(self) -> np.ndarray:
        return self.inner.needs_reset[self.rows]

    @property
    def waiting(self) -> np.ndarray | None:
        waiting = self.inner.waiting
        return None if waiting is None else waiting[self.rows]

    @property
    def action_mask(self) -> np.ndarray | None:
        mask = self.inner.action_mask
        return None if mask is None else mask[self.rows]

    # --- stepping -------------------------------------------------------------------------------

    def _deal(self, copy: int) -> None:
        """Copy ``copy``'s next game: its side and its opponent."""
        if self.alternate:
            self.seats[copy] = (copy + self.games[copy]) % len(self.sides)
            self.rows = self._rows()
        self.games[copy] += 1
        self.drawn[copy] = self.opponents.draw()

    def reset(self, seed: int | None = None) -> np.ndarray:
        if seed is not None:
            self.opponents.seed(seed)
        self.games[:] = 0
        for copy, name in enumerate(self.drawn):
            if name is not None:  # a game drawn, never played
                self.opponents.release(name)
            self._deal(copy)
        obs = self.inner.reset(seed=seed)
        self.last_obs = obs[self.rows].copy()
        return self.last_obs

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        inner = self.inner
        rows = self.rows
        full = np.zeros((inner.num_envs, *np.shape(actions)[1:]), dtype=np.asarray(actions).dtype)
        full[rows] = actions
        others = ~inner.needs_reset
        others[rows] = False  # the opponents' rows that act now
        drawn = np.repeat(np.asarray(self.drawn, dtype=object), self.num_agents)  # by row
        mask = inner.action_mask
        for name in dict.fromkeys(drawn[others]):  # in order of first appearance
            picked = np.flatnonzero(others & (drawn == name))
            opponent = self.opponents.opponent(name)
            full[picked] = opponent.act(
                inner.last_obs[picked],
                None if mask is None else mask[picked],
                [inner.raw_obs[row] for row in picked],
            )
        obs, rewards, terminated, truncated = inner.step(full)
        out = (obs[rows].copy(), rewards[rows], terminated[rows], truncated[rows])
        for episode in inner.pop_episodes():
            self._game_over(episode)
        self.last_obs = out[0]
        return out

    def _game_over(self, episode: Episode) -> None:
        copy = episode.env_index
        agents = self.inner.agents
        returns = [
            float(np.mean([episode.info.get(f"return/{agents[j]}", 0.0) for j in side]))
            for side in self.sides
        ]  # each side's: the mean of its agents' returns
        mine = returns[self.seats[copy]]
        best_other = max(r for side, r in enumerate(returns) if side != self.seats[copy])
        score = 1.0 if mine > best_other else (0.5 if mine == best_other else 0.0)
        name = self.drawn[copy]
        assert name is not None
        self.opponents.record(name, score)
        outcome = {"win": float(score == 1.0), "draw": float(score == 0.5),
                   "loss": float(score == 0.0)}  # fmt: skip
        info = {**outcome, "seat": float(self.seats[copy])}
        self.episodes.append(Episode(copy, mine, episode.length, info))
        self._deal(copy)  # the next game's, before the reset that starts it

    # --- episode records ------------------------------------------------------------------------

    def pop_episodes(self) -> list[Episode]:
        out, self.episodes = self.episodes, []
        return out

    def episode_metrics(self) -> dict[str, float]:
        keys = {outcome: f"rollout/{outcome}_rate" for outcome in OUTCOMES}
        return rollout_metrics(self.pop_episodes(), keys)

    # --- exact resume ---------------------------------------------------------------------------

    def snapshot(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors, values = self.inner.snapshot()
        assert self.last_obs is not None
        tensors = {**tensors, "selfplay_last_obs": torch.from_numpy(self.last_obs.copy())}
        values = {
            **values,
            "selfplay": to_json({"seats": self.seats, "games": self.games}),
            "selfplay_drawn": list(self.drawn),
            "selfplay_episodes": [episode.to_json() for episode in self.episodes],
        }
        return tensors, values

    def restore(
        self, tensors: dict[str, torch.Tensor] | None, values: dict[str, Any], seed: int
    ) -> str:
        note = self.inner.restore(tensors, values, seed)
        if "selfplay_drawn" in values:  # the games in play then (released by a reset)
            self.drawn = list(values["selfplay_drawn"])
        if tensors is None or "selfplay" not in values or not values.get("available"):
            self.reset(seed=seed)
            return note
        mine = from_json(values["selfplay"])
        self.seats[:], self.games[:] = mine["seats"], mine["games"]
        self.rows = self._rows()
        self.episodes = [Episode.from_json(e) for e in values["selfplay_episodes"]]
        self.last_obs = tensors["selfplay_last_obs"].numpy().copy()
        return note

    def close(self) -> None:
        if self.league is not None:
            self.league.close()
        self.inner.close()
