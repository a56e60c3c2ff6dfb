"""Self-play: a learner trained against its past selves and fixed baselines in a game.

The experiment's ``selfplay`` section turns a multi-agent game (a PettingZoo env, turn-based or
simultaneous) into the learner's own env: it holds one seat of each copy, alternating, and a
pool of opponents holds the rest (``vec_env.py``); the pool grows with snapshots of the learner,
draws each game's opponent, and rates every player (``pool.py``, ``ratings.py``). Opponents of
every kind share one interface (``opponents.py``); ``match.py`` plays an agent against one of
them (``mentor eval --opponent``); ``league.py`` trains exploiters beside the learner.
"""

from __future__ import annotations

from collections.abc import Callable
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


def self_play_env(
    experiment: Any,
    inner: Any,
    agent: Any,
    make_env: Callable[[int], MultiAgentVecEnv] | None = None,
) -> SelfPlayVecEnv:
    """The training envs of a self-play run: ``inner`` (the game's copies) with the pool that
    ``experiment.selfplay`` describes, whose first snapshot is ``agent``'s policy now, and its
    league (``venv.league``) if it has one: ``make_env(copies)`` makes the exploiters' envs."""
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
    venv = SelfPlayVecEnv(inner, pool, config.teams)
    if config.league is not None:
        if make_env is None:
            raise ConfigError("selfplay.league: these envs cannot be copied for exploiters")
        from mentor.selfplay.league import League

        venv.league = League(experiment, pool, agent.policy, make_env)
    return venv


def against(
    inner: MultiAgentVecEnv, opponent: Opponent, teams: list[list[str]] | None = None
) -> SelfPlayVecEnv:
    """``inner``'s games, the learner's side alternating, every other side held by
    ``opponent``."""
    return SelfPlayVecEnv(inner, Fixed(opponent), teams)
