"""The Python API: train an experiment, resume a run, load, export and evaluate an agent.

import mentor
result = mentor.train("experiment.yaml")            # or an Experiment, or a dict
result = mentor.resume(result.run_dir, ["stopping.total_steps=200000"])   # go on, exactly
agent = mentor.load(result.run_dir)                 # best-on-validation checkpoint
mentor.export(result.run_dir, "deploy/cartpole")    # the agent alone: weights + what loads them
summary = mentor.evaluate(agent, "CartPole-v1", episodes=100)
"""

from __future__ import annotations

import shutil
from contextlib import closing
from pathlib import Path
from typing import Any

from mentor.agent import Agent
from mentor.core.vec_env import VecEnv
from mentor.envs.checker import preflight
from mentor.envs.resolve import make_env, spec
from mentor.errors import CheckpointError, ConfigError
from mentor.evaluation.evaluate import run_episodes, summarize_episodes
from mentor.evaluation.statistics import EvalSummary
from mentor.experiment import Experiment, apply_overrides, load_yaml, parse
from mentor.methods import train_function
from mentor.methods.configs import check_supported
from mentor.runs import checkpoint
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
    if experiment.method.name in ("bc", "gail") and experiment.data.path is None:
        raise ConfigError(
            f"method {experiment.method.name} learns from a dataset: set data.path (a dataset "
            "folder, a Minari dataset id, or a .csv/.parquet table)"
        )
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


def resume(run_dir: str | Path, overrides: list[str] | None = None) -> Result:
    """Continue a stopped run (Ctrl-C, SIGTERM, a kill, a crash, or a finished one given a larger
    budget) from its newest intact checkpoint, in its own folder.

    Without overrides, a run resumed from a checkpoint ends bitwise equal to the run that was
    never stopped, where its envs can give their state (see README, "Exact resume"). Overrides
    (``stopping.total_steps=...``) change the experiment from there on; they are recorded.
    """
    run = RunFolder.open(run_dir)
    point = checkpoint.newest_intact(run.path)
    if point.meta.get("format_version", 0) < checkpoint.RESUMABLE_FROM:
        raise CheckpointError(
            f"'{point.folder}' has checkpoint format {point.meta.get('format_version')}, which "
            "does not hold the whole training state: it loads as an agent (mentor eval, "
            "agent.init) but cannot resume"
        )
    base = point.meta.get("experiment")
    if not isinstance(base, dict):
        raise ConfigError(f"'{point.folder}' does not record its experiment; it cannot resume")
    experiment = parse(apply_overrides(base, list(overrides or [])), f"{run.path}/experiment")
    if experiment.method.name != point.meta.get("method"):
        raise ConfigError(
            f"method.name '{experiment.method.name}': the run was trained with "
            f"'{point.meta.get('method')}', and a checkpoint continues with its own method"
        )
    if point.folder.name == "final" and not overrides:
        raise ConfigError(
            f"run '{run.path}' has finished ({run.manifest.get('stop_reason')}); to train on, "
            "change its stopping rules with --set (stopping.total_steps, "
            "stopping.target_return, ...)"
        )
    total = experiment.stopping.total_steps
    if point.step >= total:
        raise ConfigError(
            f"run '{run.path}' already reached stopping.total_steps={total:,} (its checkpoint "
            f"'{point.folder.name}' is at step {point.step:,}); to train on, raise it: "
            f"--set stopping.total_steps={2 * total}"
        )
    for stale in (run.path / "checkpoints").glob(".tmp-*"):  # left by a kill mid-write
        shutil.rmtree(stale, ignore_errors=True)
    (run.path / "experiment.yaml").write_text(experiment.to_yaml())
    if overrides:
        run.update(resume_overrides=[*run.manifest.get("resume_overrides", []), *overrides])
    try:
        return train_function(experiment.method.name)(experiment, run, point)
    except BaseException as exc:
        if run.manifest.get("stop_reason") is None:  # failed before the loop could record it
            run.finish(f"error: {exc}" if str(exc) else f"error: {type(exc).__name__}")
        raise


def load(path: str | Path, device: str = "cpu") -> Agent:
    """An agent from a run folder (best on validation, else final) or a checkpoint folder."""
    return Agent.load(path, device=device)


def export(path: str | Path, out: str | Path) -> Path:
    """The agent alone, for deployment: its weights (normalization statistics included) and
    what loading it needs (spaces, network, method), without the training state a checkpoint
    carries (optimizers, replay buffer, RNGs, envs). ``mentor.load(out)`` reads it."""
    agent = Agent.load(path)
    out = Path(out)
    if out.exists():
        raise ConfigError(f"export target '{out}' exists; give a new folder")
    meta = {key: agent.meta[key] for key in ("method", "experiment", "step") if key in agent.meta}
    meta.update(agent.spaces_meta(), exported_from=str(agent.folder))
    checkpoint.save(out, {"model": agent.policy.state_dict()}, meta)
    return out


def evaluate(
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
    """Play ``episodes`` episodes on ``num_envs`` env copies (as the final evaluation does) and
    summarise them (mean, std, IQM, bootstrap CIs, success)."""
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
    return summarize_episodes(result, threshold)
