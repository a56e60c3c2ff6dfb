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
from collections.abc import Callable, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

from mentor import deploy
from mentor.agent import Agent
from mentor.core.agent_rows import common_spaces
from mentor.core.ma_env import check_rollout
from mentor.envs.checker import preflight
from mentor.envs.pettingzoo import agent_spaces, is_multiagent, make_parallel_env
from mentor.envs.resolve import make_env, spec
from mentor.errors import CheckpointError, ConfigError
from mentor.evaluation.evaluate import evaluate_agent
from mentor.experiment import (
    Experiment,
    apply_overrides,
    check_agents,
    check_supported,
    load_yaml,
    method_module,
    parse,
)
from mentor.runs import checkpoint
from mentor.runs.folder import Hooks, RunFolder
from mentor.runs.logger import status
from mentor.runs.session import Result
from mentor.runs.signals import GracefulStop
from mentor.runs.stopping import StopRule, Update, Validation


def as_experiment(experiment: Experiment | dict[str, Any] | str | Path) -> Experiment:
    """An Experiment from itself, a dict of sections, or the path of a YAML file."""
    if isinstance(experiment, Experiment):
        return experiment
    if isinstance(experiment, dict):
        return parse(experiment)
    if isinstance(experiment, str | Path):
        return parse(load_yaml(experiment), str(experiment))
    raise TypeError(
        "an experiment is an Experiment, a dict of sections ({'env': {...}, 'method': ...}) or "
        f"the path of a YAML file (str or Path), got {type(experiment).__name__}: {experiment!r}"
    )


def train(
    experiment: Experiment | dict[str, Any] | str | Path,
    overwrite: bool = False,
    *,
    stop_rules: Sequence[StopRule] = (),
    on_update: Sequence[Callable[[Update], None]] = (),
    on_validation: Sequence[Callable[[Validation], None]] = (),
) -> Result:
    """Train as the experiment says; returns where the run is and how it ended.

    ``stop_rules`` are asked after every update, after the experiment's own (a reason stops the
    run); ``on_update`` and ``on_validation`` listeners hear of each update and validation
    (``mentor.runs.stopping``: the records they get).

    Ctrl-C or SIGTERM from here on stops at the first safe boundary with a checkpoint (a
    second one at once): the handlers are installed before the envs are checked and made.
    """
    experiment = as_experiment(experiment)
    say = experiment.logging.progress
    stop = GracefulStop()
    with stop:
        if type(experiment.method).needs_data and experiment.data.path is None:
            raise ConfigError(
                f"method {experiment.method.name} learns from a dataset: set data.path (a "
                "dataset folder, a Minari dataset id, or a .csv/.parquet table)"
            )
        check_envs(experiment, say)
        if experiment.distributed.workers is not None:  # Ray reached before a folder is made
            from mentor.distributed.rollouts import connect

            connect(experiment.distributed.workers, experiment.distributed.address)
        run = RunFolder.create(experiment.output_dir, experiment.run_name, overwrite=overwrite)
        run.signals = stop
        run.hooks = Hooks(list(stop_rules), list(on_update), list(on_validation))
        status(f"run folder: {run.path}", say)
        try:
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
            status(f"training {experiment.method.name} on {experiment.env.id}", say)
            return method_module(experiment.method.name).train(experiment, run)
        except BaseException as exc:
            if run.manifest.get("stop_reason") is None:  # failed before the loop recorded it
                run.finish(f"error: {exc}" if str(exc) else f"error: {type(exc).__name__}")
            raise
        finally:
            run.release()


def check_envs(experiment: Experiment, say: bool = False) -> None:
    """Before a run folder is made: the train and validation env ids exist, the envs keep the
    Gymnasium API over a short rollout, and the method supports the action space."""
    validation_env = experiment.validation.env
    train = (experiment.env.id, experiment.env.kwargs)
    validation = (
        validation_env.id or experiment.env.id,
        experiment.env.kwargs if validation_env.kwargs is None else validation_env.kwargs,
    )
    multi_agent = is_multiagent(experiment.env.id, experiment.env.kwargs)
    check_agents(
        experiment.method.name, experiment.env.id, multi_agent, experiment.selfplay is not None
    )
    for env_id, kwargs in [train] if validation == train else [train, validation]:
        if is_multiagent(env_id, kwargs) != multi_agent:
            raise ConfigError(
                f"validation.env '{env_id}' and env.id '{experiment.env.id}' must both be "
                "single-agent (Gymnasium) envs or both multi-agent (PettingZoo) envs"
            )
        if multi_agent:
            if experiment.env.preflight:
                status(f"checking env {env_id} (a short rollout)", say)
                check_rollout(env_id, kwargs)
            continue
        spec(env_id)  # an unknown env id fails here, with close matches, before a folder is made
        if not experiment.env.preflight:
            continue
        # so does an env that breaks the API, naming the failed check
        status(f"checking env {env_id} (a short rollout)", say)
        env = experiment.env
        restartable = env.vectorization == "async" and env.max_restarts > 0
        preflight(env_id, kwargs, finite=env.check_finite, restartable=restartable)
    if multi_agent:
        with closing(make_parallel_env(experiment.env.id, experiment.env.kwargs)) as env:
            per_agent = agent_spaces(env, experiment.env.id)
            _, action_space = common_spaces(
                experiment.env.id, tuple(env.possible_agents), per_agent
            )
    else:
        with closing(make_env(experiment.env.id, experiment.env.kwargs)) as env:
            action_space = env.action_space
    check_supported(experiment.method.name, action_space)  # before any env is stepped


def resume(
    run_dir: str | Path,
    overrides: list[str] | None = None,
    *,
    stop_rules: Sequence[StopRule] = (),
    on_update: Sequence[Callable[[Update], None]] = (),
    on_validation: Sequence[Callable[[Validation], None]] = (),
) -> Result:
    """Continue a stopped run (Ctrl-C, SIGTERM, a kill, a crash, or a finished one given a larger
    budget) from its newest intact checkpoint, in its own folder.

    Without overrides, a run resumed from a checkpoint ends bitwise equal to the run that was
    never stopped, where its envs can give their state (see README, "Exact resume"). Overrides
    (``stopping.total_steps=...``) change the experiment from there on; they are recorded.
    """
    run = RunFolder.open(run_dir)
    run.hooks = Hooks(list(stop_rules), list(on_update), list(on_validation))  # as in train
    overrides = list(overrides or [])
    with run.signals:
        try:
            point = checkpoint.newest_intact(run.path)
            experiment = _resumed_experiment(run, point, overrides)
            for stale in (run.path / "checkpoints").glob(".tmp-*"):  # left by a kill mid-write
                shutil.rmtree(stale, ignore_errors=True)
            (run.path / "experiment.yaml").write_text(experiment.to_yaml())
            if overrides:
                previous = run.manifest.get("resume_overrides", [])
                run.update(resume_overrides=[*previous, *overrides])
            return method_module(experiment.method.name).train(experiment, run, point)
        except BaseException as exc:
            if run.manifest.get("stop_reason") is None:  # failed before the loop recorded it
                run.finish(f"error: {exc}" if str(exc) else f"error: {type(exc).__name__}")
            raise
        finally:
            run.release()


def _resumed_experiment(
    run: RunFolder, point: checkpoint.ResumePoint, overrides: list[str]
) -> Experiment:
    """The checkpoint's experiment with the overrides, refused where it cannot go on."""
    if point.meta.get("format_version", 0) < checkpoint.RESUMABLE_FROM:
        raise CheckpointError(
            f"'{point.folder}' has checkpoint format {point.meta.get('format_version')}, which "
            "does not hold the whole training state: it loads as an agent (mentor eval, "
            "agent.init) but cannot resume"
        )
    base = point.meta.get("experiment")
    if not isinstance(base, dict):
        raise ConfigError(f"'{point.folder}' does not record its experiment; it cannot resume")
    experiment = parse(apply_overrides(base, overrides), f"{run.path}/experiment")
    if experiment.method.name != point.meta.get("method"):
        raise ConfigError(
            f"method.name '{experiment.method.name}': the run was trained with "
            f"'{point.meta.get('method')}', and a checkpoint continues with its own method"
        )
    stop_reason = run.manifest.get("stop_reason") or ""
    if point.folder.name == "final" and not overrides:
        raise ConfigError(
            f"run '{run.path}' has finished ({stop_reason}); to train on, change its stopping "
            "rules with --set (stopping.total_steps, stopping.target_return, ...)"
        )
    total = experiment.stopping.total_steps
    if point.step >= total:
        # A budget past the checkpoint, by as much again as the run's own budget was.
        further = point.step + base.get("stopping", {}).get("total_steps", total)
        raise ConfigError(
            f"run '{run.path}' already reached stopping.total_steps={total:,} (its checkpoint "
            f"'{point.folder.name}' is at step {point.step:,}); to train on, raise it past "
            f"{point.step:,}: --set stopping.total_steps={-(-further // 1000) * 1000}"
        )
    target = experiment.stopping.target_return
    if (
        point.folder.name == "final"
        and stop_reason.startswith("target")
        and target is not None
        and target == base.get("stopping", {}).get("target_return")
    ):
        raise ConfigError(
            f"run '{run.path}' stopped at its target ({stop_reason}); with a larger budget "
            "alone it would stop again at the next validation: raise the target too, or remove "
            "it with --set stopping.target_return=null"
        )
    return experiment


def load(path: str | Path, device: str = "cpu") -> Agent:
    """An agent from a run folder (best on validation, else final) or a checkpoint folder."""
    return Agent.load(path, device=device)


def export(path: str | Path, out: str | Path, format: str = "safetensors") -> Path:
    """The agent alone, for deployment: its weights (normalization statistics included) and
    what loading it needs (spaces, network, method), without the training state a checkpoint
    carries (optimizers, replay buffer, RNGs, envs). ``mentor.load(out)`` reads it.

    ``format="onnx"`` or ``"torchscript"`` adds the policy as one function (observations in,
    deterministic actions out, normalization inside) that runs without mentor: ``policy.onnx``
    or ``policy.pt``, checked against mentor's actions before it is kept, and ``export.json``
    saying its input and output (``deploy.py``)."""
    agent = Agent.load(path)
    out = Path(out)
    if out.exists():
        raise ConfigError(f"export target '{out}' exists; give a new folder")
    if format != "safetensors":
        deploy.check_format(format)
        deploy.refuse_unsupported(agent)
    meta = {key: agent.meta[key] for key in ("method", "experiment", "step") if key in agent.meta}
    meta.update(agent.spaces_meta(), exported_from=str(agent.folder))
    checkpoint.save(out, {"model": agent.policy.state_dict()}, meta)
    if format != "safetensors":
        try:
            deploy.export_policy(agent, out, format)
        except BaseException:
            shutil.rmtree(out, ignore_errors=True)  # a folder this call made, nothing else
            raise
    return out


# mentor.evaluate: play an agent's episodes and summarise them (evaluation/evaluate.py).
evaluate = evaluate_agent
