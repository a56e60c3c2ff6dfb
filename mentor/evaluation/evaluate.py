"""Run a policy for a number of episodes on vectorized envs, without bias toward short episodes.

Each env copy runs a fixed share of the episodes (the first ``episodes % num_envs`` copies one
more). Counting the first N episodes to finish instead would over-sample short episodes, which
are finished first: a known bias of naive vectorized evaluation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from mentor.core.vec_env import Episode, VecEnv
from mentor.evaluation.statistics import EvalSummary, summarize

PolicyFn = Callable[[np.ndarray], np.ndarray]


def run_episodes(
    policy: PolicyFn,
    venv: VecEnv,
    episodes: int,
    seed: int,
    on_episode: Callable[[], None] | None = None,
) -> list[Episode]:
    """Play ``episodes`` episodes with ``policy`` (encoded obs → network actions);
    ``on_episode()`` is called as each counted episode ends (a progress bar). The episodes come
    grouped by env copy, each copy's in the order they ended."""
    n = venv.num_envs
    quota = np.full(n, episodes // n)
    quota[: episodes % n] += 1
    kept: list[list[Episode]] = [[] for _ in range(n)]
    obs = venv.reset(seed=seed)
    venv.pop_episodes()  # ended before this evaluation, in an earlier use of these envs
    while any(len(mine) < q for mine, q in zip(kept, quota, strict=True)):
        obs, _, _, _ = venv.step(policy(obs))
        for episode in venv.pop_episodes():
            mine = kept[episode.env_index]
            if len(mine) < quota[episode.env_index]:
                mine.append(episode)
                if on_episode is not None:
                    on_episode()
    return [episode for mine in kept for episode in mine]


def summarize_episodes(episodes: Sequence[Episode], success_threshold: float | None) -> EvalSummary:
    """Summarize the episodes of one env, however many copies played them.

    Copies of one env differ only in their seeds, so their episodes are exchangeable draws from
    one distribution of returns, and the bootstrap resamples them as one group. Taking each copy
    as a stratum (as mentor did before issue 10) resamples only within copies and loses the
    variation between episodes: with one episode per copy the interval was a point. Strata are
    for tasks, as several validation envs would be.

    Success is the env's own ``is_success`` when every episode reported it (``env.info_keys``),
    else a return of at least ``success_threshold`` (``Episode.success``). Each declared info
    key is summarized by its mean over the episodes that have it.
    """
    own_verdict = bool(episodes) and all("is_success" in episode.info for episode in episodes)
    keys = list(dict.fromkeys(key for episode in episodes for key in episode.info))
    return summarize(
        [episode.ret for episode in episodes],
        [episode.length for episode in episodes],
        success_threshold=None if own_verdict else success_threshold,
        successes=[episode.success(None) for episode in episodes] if own_verdict else None,
        info={key: [e.info[key] for e in episodes if key in e.info] for key in keys},
    )
