"""An agent against one opponent over many games: win, draw and loss rates with their intervals.

``play_match`` plays ``games`` games of the agent's env, the agent's seat alternating between
copies and games (it moves first in half of them), every other seat held by the opponent
(``opponents.py``: random, a function, a checkpoint). Each rate comes with its Wilson score
interval (Wilson 1927), which, unlike the normal approximation, stays inside [0, 1] and keeps
its coverage at rates near 0 or 1, where a strong agent's loss rate lives.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from mentor.core.ma_env import MultiAgentVecEnv
from mentor.errors import ConfigError
from mentor.evaluation.evaluate import run_episodes
from mentor.selfplay import against
from mentor.selfplay.opponents import Opponent
from mentor.selfplay.vec_env import OUTCOMES


def wilson(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``successes / n`` (z = 1.96: 95%)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass
class MatchResult:
    opponent: str
    games: int
    wins: int
    draws: int
    losses: int
    by_seat: dict[str, dict[str, int]]  # seat (agent name) -> its wins, draws, losses, games

    def rate(self, outcome: str) -> float:
        count = {"win": self.wins, "draw": self.draws, "loss": self.losses}[outcome]
        return count / self.games

    def interval(self, outcome: str) -> tuple[float, float]:
        return wilson(self.rate(outcome) * self.games, self.games)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for outcome in OUTCOMES:
            out[f"{outcome}_rate"] = self.rate(outcome)
            out[f"{outcome}_ci95"] = list(self.interval(outcome))
        return out

    def lines(self) -> list[str]:
        out = [f"{self.games:,} games against {self.opponent} (seats alternating):"]
        for outcome in OUTCOMES:
            low, high = self.interval(outcome)
            out.append(f"  {outcome:5} {self.rate(outcome):6.1%}   95% CI [{low:.1%}, {high:.1%}]")
        for seat, record in self.by_seat.items():
            out.append(
                f"  as {seat}: {record['wins']} wins, {record['draws']} draws, "
                f"{record['losses']} losses of {record['games']}"
            )
        return out


def play_match(
    agent: Any,
    opponent: Opponent,
    games: int = 1000,
    *,
    num_envs: int = 25,
    seed: int = 12_345,
    deterministic: bool = True,
) -> MatchResult:
    """``agent`` (a multi-agent ``Agent``) against ``opponent`` for ``games`` games."""
    if agent.agents is None:
        raise ConfigError(
            f"this agent was trained on a single-agent env ({agent.experiment.env.id}); a match "
            "is played on a game of several agents"
        )
    if not isinstance(games, int) or isinstance(games, bool) or games < 1:
        raise ConfigError(f"games must be a whole number >= 1, got {games!r}")
    experiment = agent.experiment
    copies = min(num_envs, games)
    inner = MultiAgentVecEnv.make(
        experiment.env.id, experiment.env.kwargs, copies, agent_ids=experiment.env.agent_ids
    )
    selfplay = experiment.selfplay
    venv = against(inner, opponent, None if selfplay is None else selfplay.teams)
    try:
        agent.check_fits(venv.observation_space, venv.action_space, experiment.env.id,
                         venv.agents_spec)  # fmt: skip
        episodes = run_episodes(agent.player(venv, deterministic), venv, games, seed)
    finally:
        venv.close()
    by_seat: dict[str, dict[str, int]] = {}
    for episode in episodes:
        seat = venv.side_name(int(episode.info["seat"]))
        record = by_seat.setdefault(seat, {"wins": 0, "draws": 0, "losses": 0, "games": 0})
        record["games"] += 1
        for outcome, key in zip(OUTCOMES, ("wins", "draws", "losses"), strict=True):
            record[key] += int(episode.info[outcome])
    totals = {key: sum(r[key] for r in by_seat.values()) for key in ("wins", "draws", "losses")}
    return MatchResult(
        opponent.name, len(episodes), **totals, by_seat=dict(sorted(by_seat.items()))
    )
