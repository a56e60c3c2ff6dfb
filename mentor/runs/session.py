"""What every method's training loop shares: the run folder, logging, validation, checkpoints,
resuming, signals and the stopping rules. A method builds its pieces, lists them in a
``TrainState``, and its loop collects and updates; it asks the session the rest:

    session = TrainingSession(experiment, run, agent, venv, state, resume)
    obs = session.begin()                    # resets the envs, or restores a checkpoint
    with session.running():                  # Ctrl-C/SIGTERM, errors, and the run's end
        while session.stop_reason is None:
            ...                              # collect, update
            session.log(step, metrics)
            session.after_update(step)       # validates, checkpoints, asks the stop rules
    return session.result

The seams (``mentor/runs/stopping.py``): stopping is a list of typed stop rules, the
experiment's four and any a caller adds (``stop_rules=``); listeners hear of every update and
validation (``on_update``, ``on_validation``) through frozen records; a method that needs a
validation asks for one (``request_validation``, or ``validate`` at once).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from mentor.agent import Agent, initialize
from mentor.continual.sequence import ContinualRun
from mentor.core.device import choose_device, set_threads
from mentor.core.seeding import rng_state, seed_everything, set_rng_state
from mentor.core.vec_env import VecEnv
from mentor.errors import CheckpointError, EnvWorkerError, HookError
from mentor.evaluation.evaluate import run_episodes, success_threshold, summarize_episodes
from mentor.evaluation.statistics import EvalSummary
from mentor.experiment import Experiment, check_masks_honoured
from mentor.runs import checkpoint
from mentor.runs.checkpoint import ResumePoint
from mentor.runs.folder import RunFolder, versions, write_json
from mentor.runs.logger import MetricsLogger, counting
from mentor.runs.state import TrainState
from mentor.runs.stopping import (
    PlateauRule,
    Progress,
    StopRule,
    Update,
    Validation,
    name_of,
    stopping_rules,
)


@dataclass
class Result:
    """What ``mentor.train`` returns. ``evaluated`` says which weights the final evaluation
    played: "best" (checkpoints/best, chosen on validation) or "final" (no validation ran)."""

    run_dir: Path
    stop_reason: str
    total_steps: int
    train_seconds: float
    best_return: float | None
    evaluation: EvalSummary | None = None
    validations: list[dict[str, Any]] = field(default_factory=list)
    evaluated: str | None = None
    validation_seconds: float = 0.0  # validating, best checkpoints included (this process's)

    @property
    def agent(self) -> Agent:
        """The trained agent, loaded from the run folder (best weights where validation ran)."""
        return Agent.load(self.run_dir)


@dataclass(frozen=True)
class Steps:
    """What a method's step counts (the x-axis of its metrics, its budget, its checkpoints):
    env steps for RL methods and DAgger, gradient steps for BC. The progress bar counts the same
    toward ``stopping.total_steps`` unless the method gives it another total and unit (DAgger's
    rounds, BC's expected gradient steps)."""

    unit: str = "env steps"
    progress_total: int | None = None
    progress_unit: str | None = None


def target_return(experiment: Experiment) -> float | None:
    """The stopping target; 'env' means the env's registered reward threshold."""
    target = experiment.stopping.target_return
    if target != "env":
        return target
    env_id = experiment.validation.env.id or experiment.env.id
    env_spec = gym.spec(env_id) if env_id in gym.registry else None
    threshold = env_spec.reward_threshold if env_spec is not None else None
    if threshold is None:
        print(
            f"warning: stopping.target_return=env, but env '{env_id}' registers no reward "
            "threshold: there is no target to stop at (give a number instead)",
            file=sys.stderr,
        )
    return threshold


def _call(hook: Callable[[Any], Any], what: str, record: Any) -> Any:
    """Call a rule or listener; what it raises stops the run with an error naming it."""
    try:
        return hook(record)
    except (KeyboardInterrupt, HookError):
        raise
    except Exception as exc:
        raise HookError(f"{what} {name_of(hook)} raised {type(exc).__name__}: {exc}") from exc


@contextmanager
def training_setup(
    experiment: Experiment, resume: ResumePoint | None = None, local: bool = False
) -> Iterator[tuple[VecEnv, Agent]]:
    """What every method starts from: torch threads and seeds set, the training envs made, the
    agent's networks built with their initial policy (step 3) on the chosen device. The envs are
    closed however training ends. When resuming, the weights come from the checkpoint, so the
    initial policy's are not loaded again (its frozen layers stay frozen). ``local``: the envs
    in this process even with ``distributed.workers`` (a method that puts other work on Ray:
    fedavg's clients)."""
    set_threads(experiment.num_threads)
    seed_everything(experiment.seed)
    env, distributed = experiment.env, experiment.distributed
    options = dict(
        vectorization=env.vectorization, max_episode_steps=env.max_episode_steps,
        check_finite=env.check_finite, max_restarts=env.max_restarts, timeout=env.step_timeout,
        info_keys=env.info_keys, agent_ids=env.agent_ids, preset=env.preset,
    )  # fmt: skip
    from mentor.curricula import make_teacher

    teacher = make_teacher(experiment)  # a curriculum's: each copy's next task
    if distributed.workers is None or local:
        venv = VecEnv.make(env.id, env.kwargs, env.num_envs, teacher=teacher, **options)
    else:  # Ray rollout workers, each with its own copies (mentor/distributed)
        from mentor.distributed.rollouts import RayVecEnv

        venv = RayVecEnv.make(
            env.id, env.kwargs, env.num_envs, workers=distributed.workers,
            address=distributed.address, seed=experiment.seed, worker_timeout=distributed.timeout,
            worker_restarts=distributed.max_restarts, mode=distributed.mode,
            max_staleness=distributed.max_staleness, teacher=teacher, **options,
        )  # fmt: skip
    try:
        spaces = (venv.observation_space, venv.action_space)
        agent = Agent.build(experiment, *spaces, venv.agents_spec)
        agent.init_report = initialize(agent, experiment.agent, load=resume is None)
        if agent.init_report is not None:
            print("\n".join(agent.init_report.lines()), file=sys.stderr)
        if distributed.workers is not None and not local:
            venv.set_policy(agent.policy)
        agent.device = choose_device(experiment.device)
        agent.policy.to(agent.device).train()
        if experiment.selfplay is not None:  # the learner's seats; the pool holds the rest
            from mentor.selfplay import self_play_env

            venv = self_play_env(  # a league's exploiters get envs of their own
                experiment, venv, agent,
                lambda copies: VecEnv.make(env.id, env.kwargs, copies, **options),
            )  # fmt: skip
        yield venv, agent
    finally:
        venv.close()


class TrainingSession:
    def __init__(
        self,
        experiment: Experiment,
        run: RunFolder,
        agent: Agent,
        venv: VecEnv,
        state: TrainState,
        resume: ResumePoint | None = None,
        steps: Steps = Steps(),
        stop_rules: Sequence[StopRule] = (),
    ) -> None:
        self.experiment = experiment
        self.run = run
        self.agent = agent
        self.venv = venv
        self.state = state
        self.resume = resume
        log = experiment.logging
        run.update(step_unit=steps.unit)
        self.logger = MetricsLogger(
            run.path,
            steps.progress_total or experiment.stopping.total_steps,
            log.csv,
            log.tensorboard,
            log.progress,
            resume_step=resume.step if resume else None,
            progress_unit=steps.progress_unit or steps.unit,
            rate_unit=steps.unit,
        )
        self.started = time.perf_counter()
        self.excluded_seconds = 0.0  # validation and checkpoint time, not training time
        self.validation_seconds = 0.0  # of which validating (this process's, for the manifest)
        self.step = 0
        self.stop_reason: str | None = None
        self.signals = run.signals  # entered since mentor.train began, if it was called
        self.result: Result | None = None
        self.best_return = -math.inf
        self.validations: list[dict[str, Any]] = []
        self.target = target_return(experiment)
        run.update(target_return=self.target)
        if agent.init_report is not None:
            run.update(init=agent.init_report.to_json())
        stopping = experiment.stopping
        self.plateau = (
            PlateauRule(stopping.plateau.window, stopping.plateau.alpha)
            if stopping.plateau
            else None
        )
        # The experiment's rules first (target, plateau, budget, time), then the method's, then
        # the caller's (mentor.train(..., stop_rules=...)).
        # A continual run is its sequence: no validation of one task ends it.
        sequence = experiment.continual is not None
        self.stop_rules: list[StopRule] = [
            *stopping_rules(
                stopping.total_steps,
                stopping.max_seconds,
                None if sequence else self.target,
                None if sequence else self.plateau,
                None if sequence else stopping.target_success,
            ),
            *stop_rules,
            *run.hooks.stop_rules,
        ]
        self._update_listeners: list[Callable[[Update], None]] = list(run.hooks.on_update)
        self._validation_listeners = list(run.hooks.on_validation)
        self._metrics: dict[str, float] = {}  # logged since the last update
        self._validation: Validation | None = None  # made since the last update
        self._validation_requested = False
        self.next_validation = experiment.validation.every_steps
        self.next_checkpoint = experiment.checkpoints.every_steps
        self._validation_env: VecEnv | None = None
        self._validation_made_for: tuple | None = None  # (copies, env id, kwargs)
        self._restarts_seen = 0
        self._env_note: str | None = None
        self.teacher = getattr(venv, "teacher", None)  # a curriculum's (mentor/curricula)
        self._events_seen = 0
        if self.teacher is not None:
            teacher = self.teacher
            state.add("curriculum", lambda: (None, teacher.snapshot()),
                      lambda _, values: teacher.restore(values))  # fmt: skip
        self.continual: ContinualRun | None = None  # a continual run's matrix and keepers
        if experiment.continual is not None:
            self.continual = ContinualRun(
                experiment, self.teacher.tasks(), agent.policy,
                lambda task, episodes: self.evaluate_agent(episodes, True, 0, task=task),
            )  # fmt: skip
            state.add("continual", self.continual.save, self.continual.load)
        # A self-play run's pool (mentor/selfplay/pool.py), the one opponents that learn.
        opponents = getattr(venv, "opponents", None)
        self.pool: Any = opponents if hasattr(opponents, "on_update") else None
        if self.pool is not None:  # self-play's opponents, their weights and ratings
            state.add("selfplay", self.pool.save, self.pool.load)
        self.league: Any = getattr(venv, "league", None)  # its exploiters (selfplay/league.py)
        if self.league is not None:  # after the pool: their games hold its members
            self.league.register(state, experiment.seed)
        self._opponent: Any = None  # validation's (selfplay.validate_against), made once
        # What every run has, after the method's own pieces; the global RNGs load last.
        state.add("env", venv.snapshot, self._load_env)
        state.add("session", lambda: (None, self._counters()), self._load_counters)
        state.add(
            "rng_global", lambda: ({"torch": torch.get_rng_state()}, rng_state()), self._load_rng
        )

    # --- time ---------------------------------------------------------------------------------

    @property
    def train_seconds(self) -> float:
        return time.perf_counter() - self.started - self.excluded_seconds

    # --- the start ----------------------------------------------------------------------------

    def begin(self) -> np.ndarray:
        """The first observations: the envs reset with the run's seed, or, when resuming, every
        registered piece restored from the checkpoint and the envs where they were. Then the
        envs know whether they give action masks, and a method that does not honour them is
        refused (``ConfigError``)."""
        obs = self._start()
        if self.venv.mask_source is not None:
            check_masks_honoured(
                self.experiment.method.name, self.venv.env_id, self.venv.mask_source
            )
        at_start = self.experiment.validation.at_start
        if at_start is None:
            at_start = self.experiment.agent.init != "random"
        if at_start and self.resume is None:  # the initial policy's score (the stop rules read
            self.validate(0)  # it after the first update)
        return obs

    def _start(self) -> np.ndarray:
        if self.resume is None:
            return self.venv.reset(seed=self.experiment.seed)
        point = self.resume
        for key, own in self.agent.spaces_meta().items():
            if point.meta.get(key) != own:
                raise CheckpointError(
                    f"'{point.folder}' was trained with {key.replace('_', ' ')} "
                    f"{point.meta.get(key)}; this experiment's env has {own}"
                )
        self.state.load(point.components, point.meta.get("state", {}), str(point.folder))
        self.step = point.step
        if self.teacher is not None:  # the moves before the checkpoint were heard then
            self._events_seen = len(self.teacher.events)
        skew = {
            package: f"{saved} -> {now}"
            for package, saved in point.meta.get("versions", {}).items()
            if package != "python" and saved != (now := versions().get(package))
        }
        record = {
            "from": str(point.folder.relative_to(self.run.path)),
            "step": point.step,
            "env": self._env_note,
            "skipped": point.skipped,
            "version_changes": skew,
        }
        self.run.record_resume(record)
        for skipped in point.skipped:
            print(f"resume: skipped {skipped}", file=sys.stderr)
        if skew:
            print(
                f"resume: versions changed since the checkpoint ({skew}); the run goes on, but "
                "may not be bitwise equal to one that never stopped",
                file=sys.stderr,
            )
        print(f"resume: from {point.folder} at step {point.step:,}; env: {self._env_note}",
              file=sys.stderr)  # fmt: skip
        return self.venv.last_obs

    def _load_env(self, tensors: dict[str, torch.Tensor] | None, value: dict[str, Any]) -> None:
        assert self.resume is not None
        seed = self.experiment.seed + self.resume.step  # for envs that cannot give their state
        self._env_note = self.venv.restore(tensors, value, seed)

    def _counters(self) -> dict[str, Any]:
        return {
            "best_return": self.best_return if math.isfinite(self.best_return) else None,
            "plateau": self.plateau.state_dict() if self.plateau else None,
            "validations": self.validations,
            "next_validation": self.next_validation,
            "next_checkpoint": self.next_checkpoint,
            "train_seconds": self.train_seconds,
        }

    def _load_counters(self, _: Any, values: dict[str, Any]) -> None:
        best = values["best_return"]
        self.best_return = -math.inf if best is None else best
        if self.plateau is not None and values["plateau"] is not None:
            self.plateau.load_state_dict(values["plateau"])
        self.validations = values["validations"]
        self.next_validation = values["next_validation"]
        every = self.experiment.checkpoints.every_steps  # may have been changed with --set
        self.next_checkpoint = None if every is None else values["next_checkpoint"] or every
        self.started = time.perf_counter() - values["train_seconds"]

    def _load_rng(self, tensors: dict[str, torch.Tensor] | None, values: dict[str, Any]) -> None:
        assert tensors is not None
        torch.set_rng_state(tensors["torch"])
        set_rng_state(values)

    # --- the loop's calls ------------------------------------------------------------------------

    @contextmanager
    def running(self) -> Iterator[None]:
        """Around the loop: the first SIGINT/SIGTERM stops after the current update with a
        checkpoint, a second one at once; an error stops with the last good checkpoints kept.
        When the loop ends, ``finish`` runs and ``self.result`` is set."""
        with self.signals:
            try:
                yield
            except KeyboardInterrupt:
                saved = checkpoint.latest(self.run.path) or (self.run.path / "final").exists()
                self.abort(
                    f"interrupted at once at step {self.step:,} (a second signal, or Ctrl-C "
                    "outside the main thread); "
                    + (
                        f"continue from the last checkpoint with: mentor resume {self.run.path}"
                        if saved
                        else "no checkpoint was written yet: there is nothing to resume"
                    )
                )
                raise
            except EnvWorkerError as exc:
                self._report_restarts()  # those before the one too many, in the same step
                self.save_after_failure(str(exc))
                self.abort(f"error: {exc}")
                raise
            except BaseException as exc:
                self.abort(f"error: {exc}" if str(exc) else f"error: {type(exc).__name__}")
                raise
        self.result = self.finish()

    def log(self, step: int, metrics: dict[str, float], progress: float | None = None) -> None:
        """One row of metrics at ``step``; ``progress`` moves the progress bar where it counts
        something else than steps (see ``Steps``)."""
        if self.teacher is not None:
            metrics = {**metrics, **self.teacher.metrics()}
        if self.pool is not None:
            metrics = {**metrics, **self.pool.metrics()}
        self.logger.log(step, metrics, progress)
        self._metrics = metrics

    @property
    def penalty(self) -> Callable[[list[torch.nn.Parameter]], dict[str, torch.Tensor]] | None:
        """Loss terms a method adds to its update over these parameters (a continual run's
        regularizer and rehearsal: ``mentor/continual/keep.py``), or None."""
        if self.continual is None or not self.continual.keepers:
            return None
        return self.continual.penalty

    def observe_rollout(self, advantages: torch.Tensor, storage: Any) -> None:
        """An on-policy loop's advantages after a rollout, for a curriculum that reads them
        (``curricula.teachers.RolloutReader``: PLR's level scores)."""
        read = getattr(self.teacher, "observe_rollout", None)
        if read is not None:
            ended = (storage.terminated | storage.truncated).numpy()
            read(advantages.numpy(), ended, storage.valid.numpy())

    def on_update(self, listener: Callable[[Update], None]) -> None:
        """Call ``listener`` after every update with its step and the metrics logged with it."""
        self._update_listeners.append(listener)

    def on_validation(self, listener: Callable[[Validation], None]) -> None:
        """Call ``listener`` after every validation (the best checkpoint already kept)."""
        self._validation_listeners.append(listener)

    def request_validation(self) -> None:
        """Validate at the next ``after_update``, whatever ``validation.every_steps`` says (DAgger
        validates every round's learner)."""
        self._validation_requested = True

    def after_update(self, step: int) -> None:
        """Validate and checkpoint when due, tell the listeners, then ask the stop rules."""
        self.step = step
        if self.teacher is not None:
            self.teacher.on_step(step)
        if self.pool is not None and self.pool.on_update(step) is not None:
            self.write_league()
        if step >= self.next_validation or self._validation_requested:
            self._validation_requested = False
            self.validate(step)
            every = self.experiment.validation.every_steps
            self.next_validation = (step // every + 1) * every
        saved = False
        if self.next_checkpoint is not None and step >= self.next_checkpoint:
            self.save_periodic(step)
            saved = True
            every = self.experiment.checkpoints.every_steps
            self.next_checkpoint = (step // every + 1) * every
        self._report_restarts()
        if self.teacher is not None and len(self.teacher.events) > self._events_seen:
            moves = self.teacher.events[self._events_seen :]
            self._events_seen = len(self.teacher.events)
            self.run.update(curriculum_events=list(self.teacher.events))
            if self.continual is not None:  # a task of the sequence ended
                for move in moves:
                    self.continual.task_end(step, move["stage"] - 1)
                self.run.update(continual=self.continual.result())
        update, self._metrics = Update(step, dict(self._metrics)), {}
        for listener in self._update_listeners:
            _call(listener, "update listener", update)
        validation, self._validation = self._validation, None
        progress = Progress(
            step, self.train_seconds, time.perf_counter() - self.started, validation
        )
        if self.stop_reason is None:
            self.stop_reason = self._ask(progress)
        if self.stop_reason is None and self.signals.requested:
            if not saved:
                self.save_periodic(step)
            self.stop_reason = (
                f"interrupted: {self.signals.requested} at step {step:,}; "
                f"continue with: mentor resume {self.run.path}"
            )

    def _ask(self, progress: Progress) -> str | None:
        """The first stop rule's reason to stop, or None."""
        for rule in self.stop_rules:
            reason = _call(rule, "stop rule", progress)
            if reason is not None and not isinstance(reason, str):
                raise HookError(
                    f"stop rule {name_of(rule)} returned {reason!r} ({type(reason).__name__}); "
                    "a stop rule returns a reason to stop (a str) or None"
                )
            if reason:
                return reason
        return None

    def _report_restarts(self) -> None:
        restarts = self.venv.restarts
        if len(restarts) > self._restarts_seen:
            for message in restarts[self._restarts_seen :]:
                print(f"env worker restarted: {message}", file=sys.stderr)
            self._restarts_seen = len(restarts)
            self.run.update(env_restarts=restarts)

    def _new_best(self, row: dict[str, Any]) -> bool:
        """Whether this validation (the newest in ``validations``) makes the best checkpoint:
        the highest return; under a constraint, the highest return among validations whose
        mean cost kept the limit, and until one has, the lowest cost."""
        constraint = self.experiment.constraint
        if constraint is None:
            return row["return_mean"] > self.best_return
        key, limit = constraint.cost, constraint.limit

        def rank(r: dict[str, Any]) -> tuple[bool, float]:
            cost = r["info"][key]
            return cost <= limit, r["return_mean"] if cost <= limit else -cost

        return all(rank(row) > rank(r) for r in self.validations[:-1])

    def validate(self, step: int) -> Validation:
        """Evaluate on the validation envs now, keep the best checkpoint, tell the listeners;
        the stop rules read it after this update."""
        tic = time.perf_counter()
        cfg = self.experiment.validation
        teacher = self.teacher
        final = None if teacher is None else teacher.final_task()
        summary = self.evaluate_agent(cfg.episodes, cfg.deterministic, seed_shift=0, task=final)
        row = {"step": step, **summary.to_dict()}
        if teacher is not None:  # a curriculum learns from its own stage's validation
            current = teacher.validation_task()
            stage = summary
            if current is not None and current != final:
                stage = self.evaluate_agent(cfg.episodes, cfg.deterministic, 0, task=current)
                row.update({"stage_return_mean": stage.return_mean,
                            "stage_success_rate": stage.success_rate})  # fmt: skip
            teacher.on_validation(step, stage.success_rate, stage.return_mean)
            if self.continual is not None:
                self.continual.on_validation(step, teacher.stage, summary)
        self.validations.append(row)
        self.logger.log_validation(step, row)
        if self._new_best(row):
            self.best_return = summary.return_mean
            if self.experiment.checkpoints.keep_best:
                # best/ chooses the agent; resuming uses the periodic and final checkpoints, so
                # it need not copy a replay buffer of possibly hundreds of MB at each new best.
                self._save(self.run.path / "checkpoints" / "best", step, exclude=("replay",))
        self.excluded_seconds += time.perf_counter() - tic
        self.validation_seconds += time.perf_counter() - tic
        history = tuple(v["return_mean"] for v in self.validations)
        self._validation = Validation(step, summary, self.best_return, history)
        for listener in self._validation_listeners:
            _call(listener, "validation listener", self._validation)
        return self._validation

    def evaluate_agent(
        self,
        episodes: int,
        deterministic: bool,
        seed_shift: int,
        num_envs: int | None = None,
        on_episode: Callable[[], None] | None = None,
        task: Any = None,
    ) -> EvalSummary:
        """Run the current policy on the validation env (same seeds each time for a seed_shift),
        with ``num_envs`` copies (default: ``validation.num_envs``); ``on_episode`` is called as
        each episode ends. ``task``: a curriculum's task (``mentor.envs.tasks.Task``) to
        validate on instead (its env id and kwargs; its parameters are the env's own)."""
        cfg = self.experiment.validation
        env_cfg = self.experiment.env
        copies = min(num_envs or cfg.num_envs, max(episodes, 1))
        env_id = cfg.env.id or env_cfg.id
        kwargs = cfg.env.kwargs if cfg.env.kwargs is not None else env_cfg.kwargs
        if task is not None:
            env_id, kwargs = task.env_id, dict(task.kwargs)
        kwargs = kwargs or {}
        made_for = (copies, env_id, repr(sorted(kwargs.items())))
        draws = self._validation_draws(env_id, kwargs)
        fresh = draws is not None  # a fresh env each time: the same draws at every validation
        if self._validation_env is not None and (fresh or self._validation_made_for != made_for):
            self._validation_env.close()
            self._validation_env = None
        if self._validation_env is None:
            self._validation_made_for = made_for
            self._validation_env = VecEnv.make(
                env_id,
                kwargs,
                copies,
                vectorization="sync" if env_cfg.vectorization == "async" else env_cfg.vectorization,
                max_episode_steps=env_cfg.max_episode_steps,
                check_finite=env_cfg.check_finite,
                info_keys=env_cfg.info_keys,
                agent_ids=env_cfg.agent_ids,
                teacher=draws,
                preset=env_cfg.preset if env_id == env_cfg.id else None,
            )
            if self.experiment.selfplay is not None:  # games against one fixed opponent
                from mentor.selfplay import against, make_opponent

                if self._opponent is None:
                    spec = self.experiment.selfplay.validate_against
                    self._opponent = make_opponent(spec, self.agent, "selfplay.validate_against")
                teams = self.experiment.selfplay.teams
                self._validation_env = against(self._validation_env, self._opponent, teams)
        was_training = self.agent.policy.training
        self.agent.policy.eval()
        episodes_out = run_episodes(
            self.agent.player(self._validation_env, deterministic),
            self._validation_env,
            episodes,
            seed=self.experiment.seed + cfg.seed_offset + seed_shift,
            on_episode=on_episode,
        )
        self.agent.policy.train(was_training)
        return summarize_episodes(episodes_out, success_threshold(self.experiment, env_id))

    def _validation_draws(self, env_id: str, kwargs: dict[str, Any]) -> Any:
        """With curriculum.randomize_validation, a teacher drawing the randomized parameters
        for the validation episodes, always from the same seed; else None."""
        curriculum = self.experiment.curriculum
        if curriculum is None or not curriculum.randomize_validation:
            return None
        from mentor.curricula.teachers import UniformTeacher
        from mentor.experiment.schema import CurriculumConfig, TaskSettings

        config = CurriculumConfig(tasks=[TaskSettings(id=env_id, kwargs=kwargs)],
                                  randomize=curriculum.randomize)  # fmt: skip
        seed = self.experiment.seed + self.experiment.validation.seed_offset
        return UniformTeacher(config, self.experiment.model_copy(update={"seed": seed}))

    # --- checkpoints -------------------------------------------------------------------------

    def write_league(self) -> None:
        """``league.json``: the pool's members, the ratings table, entries and the learner's
        ratings over training (``mentor league``, the report)."""
        assert self.pool is not None
        summary = {"step": self.step, **self.pool.summary()}
        if self.league is not None:
            summary["league"] = self.league.summary()
        write_json(self.run.path / "league.json", summary)

    def save_periodic(self, step: int) -> None:
        tic = time.perf_counter()
        if self.pool is not None:
            self.write_league()
        self._save(self.run.path / "checkpoints" / f"step_{step:012d}", step)
        checkpoint.prune(self.run.path, self.experiment.checkpoints.keep_last)
        self.excluded_seconds += time.perf_counter() - tic

    def save_after_failure(self, why: str) -> None:
        """After env workers failed past their limit: keep the weights, optimizer and data of the
        last completed update. The envs' state is lost, so a resume from it starts new episodes
        (and is not bitwise exact); an existing checkpoint of that step is better and is kept."""
        path = self.run.path / "checkpoints" / f"step_{self.step:012d}"
        if path.exists():
            return
        env_state = {"available": False, "reason": f"env workers failed: {why}"}
        try:
            self._save(path, self.step, exclude=("env",), extra_values={"env": env_state})
        except CheckpointError as exc:
            print(f"could not save a checkpoint after the failure: {exc}", file=sys.stderr)

    def _save(
        self,
        path: Path,
        step: int,
        exclude: tuple[str, ...] = (),
        extra_values: dict[str, Any] | None = None,
    ) -> None:
        components, values = self.state.save(exclude)
        values.update(extra_values or {})
        meta = {
            "method": self.experiment.method.name,
            "experiment": self.experiment.model_dump(mode="json"),
            **self.agent.spaces_meta(),
            "step": step,
            "versions": versions(),
            "env_state": "saved" if values["env"].get("available") else values["env"]["reason"],
            "state": values,
        }
        try:
            checkpoint.save(path, components, meta)
        except OSError as exc:
            raise CheckpointError(
                f"cannot write checkpoint '{path}': {exc.strerror or exc}; the previous "
                "checkpoints are intact"
            ) from None

    # --- the end -----------------------------------------------------------------------------

    def abort(self, reason: str) -> None:
        """Record an error stop; the last good checkpoints stay as they were."""
        self.stop_reason = reason
        self.logger.close()
        if self._validation_env is not None:
            self._validation_env.close()
        try:
            self.run.finish(reason, total_steps=self.step)
        except OSError as exc:  # a full disk must not hide the error that stopped the run
            print(f"could not update the manifest: {exc}", file=sys.stderr)

    def finish(self) -> Result:
        """Save final/ and run the final evaluation (not after an interrupt: resume goes on from
        the checkpoint just written), write the manifest's stop record."""
        step = self.step
        self.stop_reason = self.stop_reason or "budget"
        interrupted = self.stop_reason.startswith("interrupted")
        if self.continual is not None and not interrupted:  # the last row: every task at the end
            self.continual.task_end(step, self.teacher.stage, last=True)
            result = self.continual.result()
            write_json(self.run.path / "continual.json", result)
            self.run.update(continual=result)
        if not interrupted:
            self._save(self.run.path / "final", step)
        if self.pool is not None:
            self.write_league()
        self.logger.close()
        train_seconds = self.train_seconds
        evaluation = evaluated = None
        episodes = self.experiment.evaluation.episodes
        if episodes and not interrupted:
            best = self.run.path / "checkpoints" / "best"
            evaluated = "final"
            # The agent chosen on validation, never on training returns; a continual run's is
            # its last (its validations are each of another task).
            if best.exists() and self.continual is None:
                self.agent = Agent.load(best, device=self.agent.device)
                evaluated = "best"
            with counting(
                f"final evaluation ({evaluated})",
                episodes,
                "episodes",
                self.experiment.logging.progress,
            ) as on_episode:
                evaluation = self.evaluate_agent(
                    episodes,
                    self.experiment.evaluation.deterministic,
                    seed_shift=episodes + 10_007,
                    num_envs=self.experiment.evaluation.num_envs,
                    on_episode=on_episode,
                    task=None if self.teacher is None else self.teacher.final_task(),
                )
            env_id = self.experiment.validation.env.id or self.experiment.env.id
            write_json(
                self.run.path / "evaluation.json",
                {
                    "env_id": env_id,
                    "checkpoint": evaluated,
                    **evaluation.to_dict(),
                    "episode_returns": list(evaluation.returns),
                },
            )
        if self._validation_env is not None:
            self._validation_env.close()
        self.run.finish(
            self.stop_reason,
            total_steps=step,
            train_seconds=round(train_seconds, 3),
            validation_seconds=round(self.validation_seconds, 3),
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
            evaluated=evaluated,
            validation_seconds=self.validation_seconds,
        )
