"""Run a policy for a number of episodes on vectorized envs, without bias toward short episodes.

Each env copy runs a fixed share of the episodes (the first ``episodes % num_envs`` copies one
more). Counting the first N episodes to finish instead would over-sample short episodes, which
are finished first: a known bias of naive vectorized evaluation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from mentor.core.vec_env import Episode, VecEnv
from mentor.errors import ConfigError
from mentor.evaluation.perturb import Perturbation, PerturbedVecEnv
from mentor.evaluation.statistics import EvalSummary, summarize
from mentor.experiment import parse

if TYPE_CHECKING:  # evaluation sits below the agent: it plays whatever has its interface
    from mentor.agent import Agent
    from mentor.experiment import Experiment

# (encoded observations, their action masks or None) -> network actions; see VecEnv.action_mask
PolicyFn = Callable[[np.ndarray, np.ndarray | None], np.ndarray]
AGENT_RETURN = "return/"  # a multi-agent episode's info key of each agent's return (core/ma_env.py)


def run_episodes(
    policy: PolicyFn,
    venv: VecEnv,
    episodes: int,
    seed: int,
    on_episode: Callable[[], None] | None = None,
) -> list[Episode]:
    """Play ``episodes`` episodes with ``policy`` (encoded obs and the env's action masks, None
    for an env without, → network actions); ``on_episode()`` is called as each counted episode
    ends (a progress bar). The episodes come grouped by env copy, each copy's in the order they
    ended."""
    n = venv.num_copies
    quota = np.full(n, episodes // n)
    quota[: episodes % n] += 1
    kept: list[list[Episode]] = [[] for _ in range(n)]
    obs = venv.reset(seed=seed)
    venv.pop_episodes()  # ended before this evaluation, in an earlier use of these envs
    while any(len(mine) < q for mine, q in zip(kept, quota, strict=True)):
        obs, _, _, _ = venv.step(policy(obs, venv.action_mask))
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
    agent_keys = [key for key in keys if key.startswith(AGENT_RETURN)]
    summary = summarize(
        [episode.ret for episode in episodes],
        [episode.length for episode in episodes],
        success_threshold=None if own_verdict else success_threshold,
        successes=[episode.success(None) for episode in episodes] if own_verdict else None,
        info={
            key: [e.info[key] for e in episodes if key in e.info]
            for key in keys
            if key not in agent_keys
        },
    )
    agents = {}
    for key in agent_keys:  # a multi-agent env's episodes: each agent's own returns
        played = [e for e in episodes if key in e.info]
        agents[key.removeprefix(AGENT_RETURN)] = summarize(
            [e.info[key] for e in played], [e.length for e in played]
        )
    return replace(summary, agents=agents) if agents else summary


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
    info_keys: dict[str, str] | list[Any] | None = None,
    perturb: list[str] | None = None,
) -> EvalSummary:
    """``mentor.evaluate``: play ``episodes`` episodes of ``agent`` on ``num_envs`` copies of
    ``env`` (default: its validation env; the episodes split evenly among the copies, as the
    final evaluation does) and summarise them: mean, std, IQM, bootstrap CIs, success, the mean
    of each info key. ``info_keys`` is written as ``env.info_keys``; by default the
    experiment's when ``env`` is its training or validation env, none for another env.
    ``perturb``: perturbations of the env (``evaluation/perturb.py``: observation and action
    noise, parameter shifts), as ``name=value`` strings."""
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
    if info_keys is not None:
        keys = parse({"env": {"info_keys": info_keys}}, "evaluate").env.info_keys  # same checks
    elif env_id in (experiment.env.id, experiment.validation.env.id):
        keys = experiment.env.info_keys
    else:
        keys = {}
    copies = min(num_envs, episodes)
    perturbation = Perturbation.parse(perturb)
    venv = VecEnv.make(
        env_id,
        kwargs,
        copies,
        info_keys=keys,
        max_episode_steps=experiment.env.max_episode_steps,
        agent_ids=experiment.env.agent_ids,
        preset=experiment.env.preset if env_id == experiment.env.id else None,
        # a parameter is set on each copy: copies of their own, not a native vector env
        **({"vectorization": "sync"} if perturbation and perturbation.params else {}),
    )
    try:
        if perturbation is not None:
            if venv.agents_spec is not None:
                raise ConfigError("--perturb perturbs single-agent envs (Gymnasium) for now")
            venv = PerturbedVecEnv(venv, perturbation)
        agent.check_fits(venv.observation_space, venv.action_space, env_id, venv.agents_spec)
        result = run_episodes(agent.player(venv, deterministic), venv, episodes, seed)
    finally:
        venv.close()
    threshold = success_threshold_value
    if threshold is None:
        threshold = success_threshold(experiment, env_id)
    return summarize_episodes(result, threshold)
