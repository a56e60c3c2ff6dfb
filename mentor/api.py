"""The Python API: train an experiment, load an agent, evaluate it.

import mentor
result = mentor.train("experiment.yaml")            # or an Experiment, or a dict
agent = mentor.load(result.run_dir)                 # best-on-validation checkpoint
summary = mentor.evaluate(agent, "CartPole-v1", episodes=100)
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from typing import Any

from mentor.agent import Agent
from mentor.core.vec_env import VecEnv
from mentor.envs.checker import preflight
from mentor.envs.resolve import make_env, spec
from mentor.evaluation.evaluate import run_episodes
from mentor.evaluation.statistics import EvalSummary, summarize
from mentor.experiment import Experiment, load_yaml, parse
from mentor.methods import train_function
from mentor.methods.configs import check_supported
from mentor.runs.folder import RunFolder
from mentor.runs.session import Result, success_threshold


def as_experiment(experiment: Experiment | dict[str, Any] | str | Path) -> Experiment:
    if isinstance(experiment, Experiment):
        return experiment
    if isinstance(experiment, dict):
        return parse(experiment)
    return parse(load_yaml(experiment), str(experiment))


def train(experiment: Experiment | dict[str, Any] | str | Path, overwrite: bool = False) -> Result:
    """Train as the experiment says; returns where the run is and how it ended."""
    experiment = as_experiment(experiment)
    validation_env = experiment.validation.env
    for env_id, kwargs in (
        (experiment.env.id, experiment.env.kwargs),
        (validation_env.id or experiment.env.id, validation_env.kwargs or experiment.env.kwargs),
    ):
        spec(env_id)  # an unknown env id fails here, with close matches, before a folder is made
        # so does an env that breaks the API, naming the failed check
        preflight(env_id, kwargs, finite=experiment.env.check_finite)
    with closing(make_env(experiment.env.id, experiment.env.kwargs)) as env:
        check_supported(experiment.method.name, env.action_space)  # before any env is stepped
    run = RunFolder.create(experiment.output_dir, experiment.run_name, overwrite=overwrite)
    run.start(
        experiment.to_yaml(),
        {
            "name": run.path.name,
            "method": experiment.method.name,
            "env_id": experiment.env.id,
            "seed": experiment.seed,
            "total_steps_budget": experiment.stopping.total_steps,
        },
    )
    try:
        return train_function(experiment.method.name)(experiment, run)
    except BaseException as exc:
        if run.manifest.get("stop_reason") is None:  # failed before the loop could record it
            run.finish(f"error: {exc}" if str(exc) else f"error: {type(exc).__name__}")
        raise


def load(path: str | Path, device: str = "cpu") -> Agent:
    """An agent from a run folder (best on validation, else final) or a checkpoint folder."""
    return Agent.load(path, device=device)


def evaluate(
    agent: Agent,
    env: str | None = None,
    episodes: int = 100,
    *,
    env_kwargs: dict[str, Any] | None = None,
    num_envs: int = 10,
    deterministic: bool = True,
    seed: int = 12_345,
    success_threshold_value: float | None = None,
) -> EvalSummary:
    """Play ``episodes`` episodes and summarise them (mean, std, IQM, bootstrap CIs, success)."""
    experiment = agent.experiment
    env_id = env or experiment.validation.env.id or experiment.env.id
    kwargs = (
        env_kwargs
        if env_kwargs is not None
        else (experiment.env.kwargs if env_id == experiment.env.id else {})
    )
    venv = VecEnv.make(env_id, kwargs, min(num_envs, episodes),
                       max_episode_steps=experiment.env.max_episode_steps)  # fmt: skip
    try:
        if venv.observation_space != agent.observation_space:
            from mentor.errors import EnvError

            raise EnvError(
                f"env '{env_id}' has observation space {venv.observation_space}, the agent "
                f"was trained on {agent.observation_space}"
            )
        result = run_episodes(lambda obs: agent.predict(obs, deterministic), venv, episodes, seed)
    finally:
        venv.close()
    threshold = success_threshold_value
    if threshold is None:
        threshold = success_threshold(experiment, env_id)
    return summarize(result.returns, result.lengths, strata=result.env_indices,
                     success_threshold=threshold)  # fmt: skip
