"""Self-play: a learner trained against its past selves and fixed baselines in a game.

The experiment's ``selfplay`` section turns a multi-agent game (a PettingZoo env, turn-based or
simultaneous) into the learner's own env: it holds one seat of each copy, alternating, and a
pool of opponents holds the rest (``vec_env.py``); the pool grows with snapshots of the learner,
draws each game's opponent, and rates every player (``pool.py``, ``ratings.py``). Opponents of
every kind share one interface (``opponents.py``); ``match.py`` plays an agent against one of
them (``mentor eval --opponent``).
"""

from __future__ import annotations

from typing import Any

from mentor.core.ma_env import MultiAgentVecEnv
from mentor.errors import ConfigError
from mentor.selfplay.opponents import Opponent, make_opponent
from mentor.selfplay.pool import LEARNER, Fixed, Pool
from mentor.selfplay.vec_env import SelfPlayVecEnv

__all__ = [
    "LEARNER",
    "Fixed",
    "Opponent",
    "Pool",
    "SelfPlayVecEnv",
    "make_opponent",
    "self_play_env",
]


def self_play_env(experiment: Any, inner: Any, agent: Any) -> SelfPlayVecEnv:
    """The training envs of a self-play run: ``inner`` (the game's copies) with the pool that
    ``experiment.selfplay`` describes, whose first snapshot is ``agent``'s policy now."""
    config = experiment.selfplay
    if not isinstance(inner, MultiAgentVecEnv):
        raise ConfigError(
            f"selfplay: env '{experiment.env.id}' is not a multi-agent game (a PettingZoo env)"
        )
    baselines = [
        make_opponent(spec, agent, "selfplay.baselines entry") for spec in config.baselines
    ]
    names = [opponent.name for opponent in baselines]
    if len(set(names)) != len(names):
        raise ConfigError(f"selfplay.baselines names a player twice: {names}")
    pool = Pool(config, agent.policy, baselines, experiment.seed)
    return SelfPlayVecEnv(inner, pool, config.teams)


def against(
    inner: MultiAgentVecEnv, opponent: Opponent, teams: list[list[str]] | None = None
) -> SelfPlayVecEnv:
    """``inner``'s games, the learner's side alternating, every other side held by
    ``opponent``."""
    return SelfPlayVecEnv(inner, Fixed(opponent), teams)
