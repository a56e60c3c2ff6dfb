"""Run a policy for a number of episodes on vectorized envs, without bias toward short episodes.

Each env copy runs a fixed share of the episodes (the first ``episodes % num_envs`` copies one
more). Counting the first N episodes to finish instead would over-sample short episodes, which
are finished first: a known bias of naive vectorized evaluation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from mentor.core.vec_env import VecEnv
from mentor.errors import ConfigError
from mentor.evaluation.statistics import EvalSummary, summarize

if TYPE_CHECKING:  # evaluation sits below the agent: it plays whatever has its interface
    from mentor.agent import Agent
    from mentor.experiment import Experiment

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


def success_threshold(experiment: Experiment, env_id: str) -> float | None:
    """The return that counts as a success: evaluation.success_threshold, else the env's
    registered reward threshold (None when it has none)."""
    if experiment.evaluation.success_threshold is not None:
        return experiment.evaluation.success_threshold
    env_spec = gym.spec(env_id) if env_id in gym.registry else None
    return env_spec.reward_threshold if env_spec is not None else None


def evaluate_agent(
    agent: Agent,
    env: str | None = None,
    episodes: int = 100,
    *,
    env_kwargs: dict[str, Any] | None = None,
    num_envs: int = 25,
    deterministic: bool = True,
    seed: int = 12_345,
    success_threshold_value: float | None = None,
) -> EvalSummary:
    """Play ``episodes`` episodes of ``agent`` on ``num_envs`` copies of ``env`` (default: its
    validation env) and summarise them: ``mentor.evaluate`` (which see)."""
    for name, value in (("episodes", episodes), ("num_envs", num_envs)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"evaluate: {name} must be a whole number >= 1, got {value!r}")
    experiment = agent.experiment
    env_id = env or experiment.validation.env.id or experiment.env.id
    kwargs = (
        env_kwargs
        if env_kwargs is not None
        else (experiment.env.kwargs if env_id == experiment.env.id else {})
    )
    venv = VecEnv.make(
        env_id, kwargs, min(num_envs, episodes), max_episode_steps=experiment.env.max_episode_steps
    )
    try:
        agent.check_fits(venv.observation_space, venv.action_space, env_id)
        result = run_episodes(lambda obs: agent.predict(obs, deterministic), venv, episodes, seed)
    finally:
        venv.close()
    threshold = success_threshold_value
    if threshold is None:
        threshold = success_threshold(experiment, env_id)
    return summarize_episodes(result, threshold)
