"""Run a policy for a number of episodes on vectorized envs, without bias toward short episodes.

Each env copy runs a fixed share of the episodes (the first ``episodes % num_envs`` copies one
more). Counting the first N episodes to finish instead would over-sample short episodes, which
are finished first: a known bias of naive vectorized evaluation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mentor.core.vec_env import VecEnv
from mentor.evaluation.statistics import EvalSummary, summarize

PolicyFn = Callable[[np.ndarray], np.ndarray]


@dataclass
class Episodes:
    """One entry per episode; ``env_indices`` says which env copy played it."""

    returns: np.ndarray
    lengths: np.ndarray
    env_indices: np.ndarray


def run_episodes(
    policy: PolicyFn,
    venv: VecEnv,
    episodes: int,
    seed: int,
    on_episode: Callable[[], None] | None = None,
) -> Episodes:
    """Play ``episodes`` episodes with ``policy`` (encoded obs → network actions);
    ``on_episode()`` is called as each counted episode ends (a progress bar)."""
    n = venv.num_envs
    quota = np.full(n, episodes // n)
    quota[: episodes % n] += 1
    returns: list[list[float]] = [[] for _ in range(n)]
    lengths: list[list[int]] = [[] for _ in range(n)]
    obs = venv.reset(seed=seed)
    running = np.zeros(n)
    steps = np.zeros(n, dtype=np.int64)
    while any(len(r) < q for r, q in zip(returns, quota, strict=True)):
        started = venv.needs_reset
        obs, rewards, terminated, truncated = venv.step(policy(obs))
        running += rewards
        steps += ~started
        for i in np.flatnonzero(terminated | truncated):
            if len(returns[i]) < quota[i]:
                returns[i].append(float(running[i]))
                lengths[i].append(int(steps[i]))
                if on_episode is not None:
                    on_episode()
            running[i] = 0.0
            steps[i] = 0
    return Episodes(
        returns=np.array([r for rs in returns for r in rs]),
        lengths=np.array([x for xs in lengths for x in xs]),
        env_indices=np.array([i for i, rs in enumerate(returns) for _ in rs]),
    )


def summarize_episodes(episodes: Episodes, success_threshold: float | None) -> EvalSummary:
    """Summarize the episodes of one env, however many copies played them.

    Copies of one env differ only in their seeds, so their episodes are exchangeable draws from
    one distribution of returns, and the bootstrap resamples them as one group. Taking each copy
    as a stratum (as mentor did before issue 10) resamples only within copies and loses the
    variation between episodes: with one episode per copy the interval was a point. Strata are
    for tasks, as several validation envs would be.
    """
    return summarize(episodes.returns, episodes.lengths, success_threshold=success_threshold)
