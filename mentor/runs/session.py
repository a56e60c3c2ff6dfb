"""What every method's training loop shares: the run folder, logging, validation, checkpoints and
the stopping rules. A method's loop collects and updates; it asks the session the rest:

    session.log(step, metrics)
    session.after_update(step, save_state)   # validates, checkpoints, decides to stop
    if session.stop_reason: break
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch

from mentor.agent import Agent, initialize
from mentor.core.device import choose_device, set_threads
from mentor.core.seeding import rng_state, seed_everything
from mentor.core.vec_env import VecEnv
from mentor.evaluation.convergence import PlateauDetector, trend_pvalue
from mentor.evaluation.evaluate import run_episodes
from mentor.evaluation.statistics import EvalSummary, summarize
from mentor.experiment import Experiment
from mentor.runs import checkpoint
from mentor.runs.folder import RunFolder, write_json
from mentor.runs.logger import MetricsLogger

# A method's state for a checkpoint: tensors per component, and JSON-ready metadata.
StateFn = Callable[[], tuple[dict[str, dict[str, torch.Tensor]], dict[str, Any]]]


@dataclass
class Result:
    """What ``mentor.train`` returns."""

    run_dir: Path
    stop_reason: str
    total_steps: int
    train_seconds: float
    best_return: float | None
    evaluation: EvalSummary | None = None
    validations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def agent(self) -> Agent:
        return Agent.load(self.run_dir)


def target_return(experiment: Experiment) -> float | None:
    """The stopping target; 'env' means the env's registered reward threshold."""
    target = experiment.stopping.target_return
    if target != "env":
        return target
    env_spec = gym.spec(experiment.env.id) if experiment.env.id in gym.registry else None
    return env_spec.reward_threshold if env_spec is not None else None


def success_threshold(experiment: Experiment, env_id: str) -> float | None:
    if experiment.evaluation.success_threshold is not None:
        return experiment.evaluation.success_threshold
    env_spec = gym.spec(env_id) if env_id in gym.registry else None
    return env_spec.reward_threshold if env_spec is not None else None


@contextmanager
def training_setup(experiment: Experiment) -> Iterator[tuple[VecEnv, Agent]]:
    """What every method starts from: torch threads and seeds set, the training envs made, the
    agent's networks built with their initial policy (step 3) on the chosen device. The envs are
    closed however training ends."""
    set_threads(experiment.num_threads)
    seed_everything(experiment.seed)
    env = experiment.env
    venv = VecEnv.make(
        env.id, env.kwargs, env.num_envs, vectorization=env.vectorization,
        max_episode_steps=env.max_episode_steps, check_finite=env.check_finite,
    )  # fmt: skip
    try:
        agent = Agent.build(experiment, venv.observation_space, venv.action_space)
        initialize(agent, experiment.agent)
        agent.device = choose_device(experiment.device)
        agent.policy.to(agent.device).train()
        yield venv, agent
    finally:
        venv.close()


class TrainingSession:
    def __init__(self, experiment: Experiment, run: RunFolder, agent: Agent) -> None:
        self.experiment = experiment
        self.run = run
        self.agent = agent
        log = experiment.logging
        self.logger = MetricsLogger(
            run.path, experiment.stopping.total_steps, log.csv, log.tensorboard, log.progress
        )
        self.started = time.perf_counter()
        self.excluded_seconds = 0.0  # validation and checkpoint time, not training time
        self.stop_reason: str | None = None
        self.best_return = -math.inf
        self.validations: list[dict[str, Any]] = []
        self.target = target_return(experiment)
        run.update(target_return=self.target)
        plateau = experiment.stopping.plateau
        self.plateau = (
            PlateauDetector(plateau.window, plateau.alpha, plateau.window) if plateau else None
        )
        self.next_validation = experiment.validation.every_steps
        self.next_checkpoint = experiment.checkpoints.every_steps
        self._validation_env: VecEnv | None = None

    # --- time ---------------------------------------------------------------------------------

    @property
    def train_seconds(self) -> float:
        return time.perf_counter() - self.started - self.excluded_seconds

    # --- the loop's calls ------------------------------------------------------------------------

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self.logger.log(step, metrics)

    def after_update(self, step: int, state: StateFn) -> None:
        """Validate and checkpoint when due, then apply the stopping rules."""
        stopping = self.experiment.stopping
        if step >= self.next_validation:
            self.validate(step, state)
            every = self.experiment.validation.every_steps
            self.next_validation = (step // every + 1) * every
        if self.next_checkpoint is not None and step >= self.next_checkpoint:
            self.save_periodic(step, state)
            every = self.experiment.checkpoints.every_steps
            self.next_checkpoint = (step // every + 1) * every
        if self.stop_reason is None and step >= stopping.total_steps:
            self.stop_reason = f"budget: reached total_steps={stopping.total_steps}"
        elapsed = time.perf_counter() - self.started
        if self.stop_reason is None and elapsed >= (stopping.max_seconds or math.inf):
            self.stop_reason = f"budget: reached max_seconds={stopping.max_seconds}"

    def validate(self, step: int, state: StateFn) -> EvalSummary:
        """Evaluate on the validation envs; keep the best checkpoint; check target and plateau."""
        tic = time.perf_counter()
        cfg = self.experiment.validation
        summary = self.evaluate_agent(cfg.episodes, cfg.deterministic, seed_shift=0)
        row = {"step": step, **summary.to_dict()}
        self.validations.append(row)
        self.logger.log_validation(step, row)
        if summary.return_mean > self.best_return:
            self.best_return = summary.return_mean
            if self.experiment.checkpoints.keep_best:
                # best/ chooses the agent; resuming uses the periodic and final checkpoints, so
                # it need not copy a replay buffer of possibly hundreds of MB at each new best.
                self._save(self.run.path / "checkpoints" / "best", step, state, replay=False)
        if self.target is not None and summary.return_mean >= self.target:
            self.stop_reason = (
                f"target: validation return {summary.return_mean:.2f} >= {self.target:g}"
            )
        elif self.plateau is not None and self.plateau.update(summary.return_mean):
            p = trend_pvalue(self.plateau.history[-self.plateau.window :])
            self.stop_reason = (
                f"plateau: no upward trend in the last {self.plateau.window} validations "
                f"(one-sided Mann-Kendall test, p={p:.3f})"
            )
        self.excluded_seconds += time.perf_counter() - tic
        return summary

    def evaluate_agent(self, episodes: int, deterministic: bool, seed_shift: int) -> EvalSummary:
        """Run the current policy on the validation env (same seeds each time for a seed_shift)."""
        cfg = self.experiment.validation
        env_cfg = self.experiment.env
        if self._validation_env is None:
            self._validation_env = VecEnv.make(
                cfg.env.id or env_cfg.id,
                cfg.env.kwargs if cfg.env.kwargs is not None else env_cfg.kwargs,
                min(cfg.num_envs, max(episodes, 1)),
                vectorization="sync" if env_cfg.vectorization == "async" else env_cfg.vectorization,
                max_episode_steps=env_cfg.max_episode_steps,
                check_finite=env_cfg.check_finite,
            )
        was_training = self.agent.policy.training
        self.agent.policy.eval()
        episodes_out = run_episodes(
            lambda obs: self.agent.predict(obs, deterministic),
            self._validation_env,
            episodes,
            seed=self.experiment.seed + cfg.seed_offset + seed_shift,
        )
        self.agent.policy.train(was_training)
        return summarize(
            episodes_out.returns,
            episodes_out.lengths,
            strata=episodes_out.env_indices,
            success_threshold=success_threshold(self.experiment, cfg.env.id or env_cfg.id),
        )

    # --- checkpoints -------------------------------------------------------------------------

    def save_periodic(self, step: int, state: StateFn) -> None:
        tic = time.perf_counter()
        self._save(self.run.path / "checkpoints" / f"step_{step:012d}", step, state)
        checkpoint.prune(self.run.path, self.experiment.checkpoints.keep_last)
        self.excluded_seconds += time.perf_counter() - tic

    def _save(self, path: Path, step: int, state: StateFn, replay: bool = True) -> None:
        components, meta = state()
        if not replay:
            components.pop("replay", None)
        components["rng"] = {"torch": torch.get_rng_state()}
        meta = {
            "method": self.experiment.method.name,
            "experiment": self.experiment.model_dump(mode="json"),
            **self.agent.spaces_meta(),
            "step": step,
            "rng": rng_state(),
            "best_return": self.best_return if math.isfinite(self.best_return) else None,
            "plateau": self.plateau.state_dict() if self.plateau else None,
            **meta,
        }
        checkpoint.save(path, components, meta)

    # --- the end -----------------------------------------------------------------------------

    def abort(self, reason: str) -> None:
        """Record an error stop; the last good checkpoints stay as they were."""
        self.stop_reason = reason
        self.logger.close()
        if self._validation_env is not None:
            self._validation_env.close()
        self.run.finish(reason)

    def finish(self, step: int, state: StateFn, reason: str | None = None) -> Result:
        """Save final/, run the final evaluation, write the manifest's stop record."""
        self.stop_reason = reason or self.stop_reason or "budget"
        self._save(self.run.path / "final", step, state)
        self.logger.close()
        train_seconds = self.train_seconds
        evaluation = None
        episodes = self.experiment.evaluation.episodes
        if episodes and not reason:
            best = self.run.path / "checkpoints" / "best"
            if best.exists():  # the agent chosen on validation, never on training returns
                self.agent = Agent.load(best, device=self.agent.device)
            evaluation = self.evaluate_agent(
                episodes, self.experiment.evaluation.deterministic, seed_shift=episodes + 10_007
            )
            env_id = self.experiment.validation.env.id or self.experiment.env.id
            write_json(
                self.run.path / "evaluation.json", {"env_id": env_id, **evaluation.to_dict()}
            )
        if self._validation_env is not None:
            self._validation_env.close()
        self.run.finish(
            self.stop_reason,
            total_steps=step,
            train_seconds=round(train_seconds, 3),
            best_validation_return=self.best_return if math.isfinite(self.best_return) else None,
        )
        return Result(
            run_dir=self.run.path,
            stop_reason=self.stop_reason,
            total_steps=step,
            train_seconds=train_seconds,
            best_return=self.best_return if math.isfinite(self.best_return) else None,
            evaluation=evaluation,
            validations=self.validations,
        )
