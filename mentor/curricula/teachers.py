"""Teachers: the one object that decides every env copy's next task (``mentor.envs.tasks``).

The vector env asks ``next_task(copy)`` for each copy whose episode just ended, before the step
that resets it, and reports the episode with ``observe``; the training session reports each
validation (``on_validation``) and each update's step (``on_step``), and saves the teacher's
state with every checkpoint (``snapshot`` / ``restore``: JSON). One teacher, called in this
process in the order the episodes end: which copy plays which task does not depend on timing.

    staged    stages in order; a stage is passed by its promote rule (a success rate or mean
              return on the stage's validation, held over consecutive validations, or env steps
              spent in it), and left backwards by its demote rule
    uniform   each episode a task drawn uniformly: env settings, levels (seeds), or the
              experiment's env alone
    learning_progress   each episode a task drawn by its learning progress: the absolute change
              between the newer and the older half of its last ``window`` outcomes (success, or
              the return where no success is defined; Portelas et al. 2020, Kanitscheider et
              al. 2021), mixed with ``explore`` uniform draws
    plr       Prioritized Level Replay (Jiang et al. 2021): levels (seeds) scored by the positive
              value loss of their last episode, the mean of max(GAE advantage, 0) over its steps,
              which PPO's loop reports after each rollout (``observe_rollout``: the typed seam,
              ``RolloutReader``); a new level or, with ``replay_prob``, a seen one drawn by rank
              (temperature beta) mixed with staleness (rho)

Either draws the parameters of ``curriculum.randomize`` for each episode (domain
randomization), from its own seeded stream.
"""

from __future__ import annotations

import sys
from collections import Counter, deque
from dataclasses import replace
from typing import Any, Protocol

import numpy as np

from mentor.core.vec_env import Episode
from mentor.envs.resolve import make_env
from mentor.envs.tasks import Task, max_return
from mentor.errors import ConfigError
from mentor.experiment import Experiment
from mentor.experiment.schema import (
    CurriculumConfig,
    Draw,
    ParamRanges,
    PromoteRule,
    SeedRange,
    Stage,
    TaskSettings,
)


class Teacher(Protocol):
    events: list[dict[str, Any]]  # its stage moves: tasks dealt before one are not played after

    def next_task(self, copy: int) -> Task: ...

    def observe(self, copy: int, task: Task, episode: Episode) -> None: ...

    def tasks(self) -> list[Task]:
        """Every env setting it may give (parameters aside): their spaces must agree."""

    def validation_task(self) -> Task | None:
        """The task validation runs on, when it is not the experiment's env (a stage)."""

    def final_task(self) -> Task | None:
        """The task the run is for, when the teacher trains on others first (the last stage)."""

    def on_validation(self, step: int, success_rate: float | None, mean_return: float) -> None: ...

    def on_step(self, step: int) -> None: ...

    def metrics(self) -> dict[str, float]:
        """``curriculum/`` metrics since the last call."""

    def snapshot(self) -> dict[str, Any]: ...

    def restore(self, state: dict[str, Any]) -> None: ...


class Randomizer:
    """Draws ``curriculum.randomize``'s parameters, one set per episode."""

    def __init__(self, draws: dict[str, Draw], rng: np.random.Generator) -> None:
        self.draws, self.rng = draws, rng
        self.drawn: dict[str, list[float]] = {name: [] for name in draws}

    def __call__(self) -> dict[str, float]:
        values = {}
        for name, draw in self.draws.items():
            if draw.uniform is not None:
                value = self.rng.uniform(*draw.uniform)
            elif draw.normal is not None:
                value = self.rng.normal(*draw.normal)
            else:
                value = draw.choice[int(self.rng.integers(len(draw.choice)))]
            values[name] = float(value)
            self.drawn[name].append(float(value))
        return values

    def metrics(self) -> dict[str, float]:
        out = {f"curriculum/{name}_mean": float(np.mean(v)) for name, v in self.drawn.items() if v}
        for values in self.drawn.values():
            values.clear()
        return out


class Bins:
    """``ParamRanges`` as tasks: a task per combination of bins, named bin<i>, whose episodes
    draw their parameters uniformly within the bin."""

    def __init__(self, ranges: ParamRanges, base: Task) -> None:
        edges = {name: np.linspace(low, high, ranges.bins + 1) for name, (low, high) in
                 ranges.ranges.items()}  # fmt: skip
        grids = np.meshgrid(*[np.arange(ranges.bins)] * len(edges), indexing="ij")
        combos = np.stack([g.reshape(-1) for g in grids], axis=1)
        self.boxes = [
            {name: (float(edges[name][i]), float(edges[name][i + 1]))
             for name, i in zip(edges, combo, strict=True)}
            for combo in combos
        ]  # fmt: skip
        self.tasks = [Task(base.env_id, base.kwargs, name=f"bin{i}") for i in range(len(combos))]

    def draw(self, index: int, rng: np.random.Generator) -> Task:
        params = {name: float(rng.uniform(low, high)) for name, (low, high) in
                  self.boxes[index].items()}  # fmt: skip
        task = self.tasks[index]
        return Task(task.env_id, task.kwargs, None, params, task.name)


def _task(settings: TaskSettings, experiment: Experiment, name: str) -> Task:
    env = experiment.env
    kwargs = settings.kwargs if settings.kwargs is not None else env.kwargs
    return Task(settings.id or env.id, kwargs or {}, name=name)


class _Base:
    """What both teachers share: the randomizer, the episode counts, the events."""

    def __init__(self, config: CurriculumConfig, seed: int) -> None:
        self.config = config
        self.rng = np.random.default_rng([seed, 7919])  # a stream of its own
        self.randomize = Randomizer(config.randomize, self.rng) if config.randomize else None
        self.played: Counter[str] = Counter()  # episodes per task name since the last metrics
        self.returns: dict[str, list[float]] = {}  # their returns, per task name
        self.events: list[dict[str, Any]] = []  # {"step", "stage", "text"}: stage moves

    def _with_params(self, task: Task) -> Task:
        if self.randomize is None:
            return task
        params = {**task.params, **self.randomize()}
        return Task(task.env_id, task.kwargs, task.seed, params, task.name)

    def observe(self, copy: int, task: Task, episode: Episode) -> None:
        self.played[task.name] += 1
        self.returns.setdefault(task.name, []).append(episode.ret)

    def on_step(self, step: int) -> None:
        return None

    def on_validation(self, step: int, success_rate: float | None, mean_return: float) -> None:
        return None

    def validation_task(self) -> Task | None:
        return None

    def final_task(self) -> Task | None:
        return None

    def metrics(self) -> dict[str, float]:
        out = {} if self.randomize is None else self.randomize.metrics()
        total = sum(self.played.values())
        if total and len(self.played) <= 16:  # the task mix and returns, where tasks are few
            out.update({f"curriculum/share_{name}": n / total for name, n in self.played.items()})
            out.update({f"curriculum/return_{name}": float(np.mean(values))
                        for name, values in self.returns.items()})  # fmt: skip
        self.played.clear()
        self.returns.clear()
        return out

    def _say(self, step: int, stage: int, event: str) -> None:
        self.events.append({"step": step, "stage": stage, "text": event})
        print(f"curriculum: {event}", file=sys.stderr)

    def _base_snapshot(self) -> dict[str, Any]:
        """The stream, the events, and what the next metrics row will count (logs resume too)."""
        drawn = {} if self.randomize is None else self.randomize.drawn
        return {"rng": self.rng.bit_generator.state, "events": list(self.events),
                "played": dict(self.played), "returns": dict(self.returns),
                "drawn": {name: list(values) for name, values in drawn.items()}}  # fmt: skip

    def _base_restore(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.events = list(state["events"])
        self.played = Counter(state.get("played", {}))
        self.returns = {name: list(v) for name, v in state.get("returns", {}).items()}
        if self.randomize is not None:
            for name, values in state.get("drawn", {}).items():
                self.randomize.drawn[name] = list(values)


class StagedTeacher(_Base):
    def __init__(self, config: CurriculumConfig, experiment: Experiment) -> None:
        super().__init__(config, experiment.seed)
        self.stages = config.stages
        self.stage_tasks = [
            _task(stage.env, experiment, f"stage{i}") for i, stage in enumerate(self.stages)
        ]
        self._check_reachable()
        self.stage = 0
        self.stage_start = 0  # env step the stage began at
        self.passes = 0  # consecutive validations meeting the promote rule
        self.fails = 0  # consecutive validations meeting the demote rule

    def tasks(self) -> list[Task]:
        return list(self.stage_tasks)

    def _check_reachable(self) -> None:
        """A mean-return rule above what the stage's env can pay (where that is known) would
        never be met: refused, naming the stage and the most it pays."""
        for index, (stage, task) in enumerate(zip(self.stages, self.stage_tasks, strict=True)):
            threshold = stage.promote.mean_return if stage.promote is not None else None
            if threshold is None:
                continue
            env = make_env(task.env_id, dict(task.kwargs))
            try:
                most = max_return(env)
            finally:
                env.close()
            if most is not None and threshold > most:
                raise ConfigError(
                    f"curriculum.stages[{index}].promote.mean_return {threshold:g}: env "
                    f"'{task.env_id}' pays at most {most:g} an episode, so the stage would "
                    "never be passed"
                )

    def next_task(self, copy: int) -> Task:
        return self._with_params(self.stage_tasks[self.stage])

    def validation_task(self) -> Task:
        return self.stage_tasks[self.stage]

    def final_task(self) -> Task:
        return self.stage_tasks[-1]

    def on_step(self, step: int) -> None:
        rule = self.stages[self.stage].promote
        if rule is not None and rule.steps is not None and step - self.stage_start >= rule.steps:
            self._move(step, +1, f"{step - self.stage_start:,} env steps in the stage")

    def on_validation(self, step: int, success_rate: float | None, mean_return: float) -> None:
        stage = self.stages[self.stage]
        promote, demote = stage.promote, stage.demote
        if promote is not None and promote.steps is None:
            value, name = _measure(promote, success_rate, mean_return)
            threshold = promote.success_rate if name == "success" else promote.mean_return
            self.passes = self.passes + 1 if value is not None and value >= threshold else 0
            if self.passes >= promote.evaluations:
                why = f"{name} {value:.3g} >= {threshold:g} over {self.passes} validation(s)"
                self._move(step, +1, why)
                return
        if demote is not None and self.stage > 0:
            value, name = _measure(demote, success_rate, mean_return)
            threshold = demote.success_rate if name == "success" else demote.mean_return
            self.fails = self.fails + 1 if value is not None and value < threshold else 0
            if self.fails >= demote.evaluations:
                self._move(step, -1, f"{name} {value:.3g} < {threshold:g} over {self.fails}")

    def _move(self, step: int, by: int, why: str) -> None:
        self.stage += by
        self.stage_start, self.passes, self.fails = step, 0, 0
        task = self.stage_tasks[self.stage]
        verb = "promoted" if by > 0 else "demoted"
        self._say(step, self.stage, f"{verb} to stage {self.stage} ({task.env_id}) at step "
                  f"{step:,}: {why}")  # fmt: skip

    def metrics(self) -> dict[str, float]:
        return {"curriculum/stage": float(self.stage), **super().metrics()}

    def snapshot(self) -> dict[str, Any]:
        return {**self._base_snapshot(), "stage": self.stage, "stage_start": self.stage_start,
                "passes": self.passes, "fails": self.fails}  # fmt: skip

    def restore(self, state: dict[str, Any]) -> None:
        self._base_restore(state)
        self.stage, self.stage_start = state["stage"], state["stage_start"]
        self.passes, self.fails = state["passes"], state["fails"]


def _measure(rule: Any, success_rate: float | None, mean_return: float) -> tuple[Any, str]:
    if rule.success_rate is not None:
        return success_rate, "success"
    return mean_return, "mean return"


class UniformTeacher(_Base):
    def __init__(self, config: CurriculumConfig, experiment: Experiment) -> None:
        super().__init__(config, experiment.seed)
        tasks = config.tasks
        self.levels: tuple[int, int] | None = None
        self.bins: Bins | None = None
        if isinstance(tasks, SeedRange):
            self.levels = tasks.seeds
            self.choices = [_task(TaskSettings(), experiment, "levels")]
        elif isinstance(tasks, ParamRanges):
            self.bins = Bins(tasks, _task(TaskSettings(), experiment, "env"))
            self.choices = self.bins.tasks
        elif tasks:
            self.choices = [_task(t, experiment, f"task{i}") for i, t in enumerate(tasks)]
        else:
            self.choices = [_task(TaskSettings(), experiment, "env")]

    def tasks(self) -> list[Task]:
        return list(self.choices)

    def next_task(self, copy: int) -> Task:
        index = int(self.rng.integers(len(self.choices))) if len(self.choices) > 1 else 0
        task = self.choices[index]
        if self.bins is not None:
            task = self.bins.draw(index, self.rng)
        if self.levels is not None:
            seed = int(self.rng.integers(*self.levels))
            task = Task(task.env_id, task.kwargs, seed, task.params, task.name)
        return self._with_params(task)

    def snapshot(self) -> dict[str, Any]:
        return self._base_snapshot()

    def restore(self, state: dict[str, Any]) -> None:
        self._base_restore(state)


class LearningProgressTeacher(_Base):
    """(module docstring) Tasks with fewer than ``window`` outcomes count as the most
    progressing: each is tried until it has its window."""

    def __init__(self, config: CurriculumConfig, experiment: Experiment) -> None:
        from mentor.evaluation.evaluate import success_threshold

        super().__init__(config, experiment.seed)
        self.bins: Bins | None = None
        if isinstance(config.tasks, ParamRanges):
            self.bins = Bins(config.tasks, _task(TaskSettings(), experiment, "env"))
            self.choices = self.bins.tasks
        else:
            self.choices = [_task(t, experiment, f"task{i}") for i, t in enumerate(config.tasks)]
        self.index = {task.name: i for i, task in enumerate(self.choices)}
        self.window, self.explore = config.window, config.explore
        self.outcomes: list[deque[float]] = [deque(maxlen=self.window) for _ in self.choices]
        self.thresholds = [success_threshold(experiment, t.env_id) for t in self.choices]

    def tasks(self) -> list[Task]:
        return list(self.choices)

    def progress(self) -> np.ndarray:
        """Each task's learning progress; NaN for a task without its window of outcomes."""
        out = np.full(len(self.choices), np.nan)
        half = self.window // 2
        for i, history in enumerate(self.outcomes):
            if len(history) == self.window:
                values = np.asarray(history)
                out[i] = abs(values[half:].mean() - values[:half].mean())
        return out

    def probabilities(self) -> np.ndarray:
        progress = self.progress()
        top = np.nanmax(progress) if np.isfinite(progress).any() else 1.0
        progress = np.where(np.isnan(progress), max(top, 1e-6), progress)
        n = len(progress)
        if progress.sum() <= 0:
            return np.full(n, 1.0 / n)
        return self.explore / n + (1 - self.explore) * progress / progress.sum()

    def next_task(self, copy: int) -> Task:
        index = int(self.rng.choice(len(self.choices), p=self.probabilities()))
        task = self.choices[index] if self.bins is None else self.bins.draw(index, self.rng)
        return self._with_params(task)

    def observe(self, copy: int, task: Task, episode: Episode) -> None:
        super().observe(copy, task, episode)
        index = self.index[task.name]
        success = episode.success(self.thresholds[index])
        self.outcomes[index].append(episode.ret if success is None else float(success))

    def metrics(self) -> dict[str, float]:
        progress = self.progress()
        lp = {f"curriculum/progress_{t.name}": float(v)
              for t, v in zip(self.choices, progress, strict=True) if np.isfinite(v)}  # fmt: skip
        return {**lp, **super().metrics()}

    def snapshot(self) -> dict[str, Any]:
        return {**self._base_snapshot(), "outcomes": [list(h) for h in self.outcomes]}

    def restore(self, state: dict[str, Any]) -> None:
        self._base_restore(state)
        for history, saved in zip(self.outcomes, state["outcomes"], strict=True):
            history.clear()
            history.extend(saved)


class RolloutReader(Protocol):
    """A teacher that reads the learner's advantages after each on-policy rollout."""

    def observe_rollout(
        self, advantages: np.ndarray, ended: np.ndarray, valid: np.ndarray
    ) -> None: ...


class PLRTeacher(_Base):
    """(module docstring) Which level each step of a rollout was on follows from the levels
    this teacher gave each copy, in order: the level a copy was on when the rollout began, then
    each one given at an episode's end (``next_task``)."""

    def __init__(self, config: CurriculumConfig, experiment: Experiment) -> None:
        super().__init__(config, experiment.seed)
        self.task = _task(TaskSettings(), experiment, "levels")
        self.low, self.high = config.tasks.seeds
        self.replay_prob, self.beta, self.rho = (
            config.replay_prob,
            config.temperature,
            config.staleness,
        )
        self.scores: dict[int, float] = {}  # seen levels' scores
        self.last_sampled: dict[int, int] = {}  # the episode count when each was last drawn
        self.drawn = 0  # episodes drawn so far (c)
        self.current: dict[int, int] = {}  # the level each copy is on as the rollout begins
        self.given: dict[int, list[int]] = {}  # the levels given each copy since then
        self.partial: dict[int, tuple[float, int]] = {}  # an episode's score so far, per copy

    def tasks(self) -> list[Task]:
        return [self.task]

    def replay_probabilities(self) -> tuple[list[int], np.ndarray]:
        """The seen levels and P_replay = (1 - rho) P_S + rho P_C over them."""
        levels = sorted(self.scores)
        scores = np.array([self.scores[level] for level in levels])
        ranks = np.empty(len(levels))
        ranks[np.argsort(-scores, kind="stable")] = np.arange(1, len(levels) + 1)
        h = (1.0 / ranks) ** (1.0 / self.beta)
        p_score = h / h.sum()
        stale = np.array([self.drawn - self.last_sampled[level] for level in levels], float)
        p_stale = stale / stale.sum() if stale.sum() > 0 else np.full(len(levels), 1 / len(levels))
        return levels, (1 - self.rho) * p_score + self.rho * p_stale

    def next_task(self, copy: int) -> Task:
        unseen = (self.high - self.low) > len(self.scores)
        if self.scores and (not unseen or self.rng.random() < self.replay_prob):
            levels, p = self.replay_probabilities()
            level = levels[int(self.rng.choice(len(levels), p=p))]
        else:
            level = int(self.rng.integers(self.low, self.high))
            while level in self.scores:  # a new level: not one scored already
                level = int(self.rng.integers(self.low, self.high))
        self.last_sampled[level] = self.drawn
        self.drawn += 1
        if copy not in self.current:
            self.current[copy] = level  # its first episode
        else:
            self.given.setdefault(copy, []).append(level)
        task = Task(self.task.env_id, self.task.kwargs, level, name="levels")
        return self._with_params(task)

    def observe_rollout(self, advantages: np.ndarray, ended: np.ndarray, valid: np.ndarray) -> None:
        """Score each episode that ended in the rollout: the mean of max(A, 0) over its valid
        steps (its steps in earlier rollouts included); carry the running one over."""
        positive = np.maximum(advantages, 0.0)
        for copy in range(positive.shape[1]):
            level = self.current.get(copy)
            queue = list(self.given.pop(copy, []))
            total, count = self.partial.get(copy, (0.0, 0))
            for t in range(positive.shape[0]):
                if valid[t, copy]:
                    total, count = total + float(positive[t, copy]), count + 1
                if ended[t, copy]:
                    if level is not None and count:
                        self.scores[level] = total / count
                    total, count = 0.0, 0
                    level = queue.pop(0) if queue else level
            self.partial[copy] = (total, count)
            if level is not None:
                self.current[copy] = level

    def metrics(self) -> dict[str, float]:
        out = super().metrics()
        out.update({"curriculum/levels_seen": float(len(self.scores))})
        if self.scores:
            out["curriculum/score_mean"] = float(np.mean(list(self.scores.values())))
        return out

    def snapshot(self) -> dict[str, Any]:
        return {**self._base_snapshot(), "drawn": self.drawn,
                "scores": {str(k): v for k, v in self.scores.items()},
                "last_sampled": {str(k): v for k, v in self.last_sampled.items()},
                "current": {str(k): v for k, v in self.current.items()},
                "given": {str(k): v for k, v in self.given.items()},
                "partial": {str(k): list(v) for k, v in self.partial.items()}}  # fmt: skip

    def restore(self, state: dict[str, Any]) -> None:
        self._base_restore(state)
        self.drawn = state["drawn"]
        self.scores = {int(k): v for k, v in state["scores"].items()}
        self.last_sampled = {int(k): v for k, v in state["last_sampled"].items()}
        self.current = {int(k): v for k, v in state["current"].items()}
        self.given = {int(k): list(v) for k, v in state["given"].items()}
        self.partial = {int(k): (v[0], v[1]) for k, v in state["partial"].items()}


class SequenceTeacher(StagedTeacher):
    """A continual run's tasks one after another (``experiment.continual``): a staged
    curriculum whose stages pass after ``steps_per_task`` env steps each, its tasks named as
    the sequence names them, validated on the task under way (``mentor/continual``). With
    ``task_id``, each task is its env behind ``mentor/TaskId-v0``: a one-hot of its index
    appended to the observation."""

    def __init__(self, experiment: Experiment) -> None:
        sequence = experiment.continual
        count = len(sequence.tasks)
        stages = []
        for index, task in enumerate(sequence.tasks):
            settings = TaskSettings(id=task.id, kwargs=task.kwargs)
            if sequence.task_id:
                env = experiment.env
                inner = {"env": task.id or env.id,
                         "kwargs": task.kwargs if task.kwargs is not None else env.kwargs,
                         "index": index, "count": count}  # fmt: skip
                settings = TaskSettings(id="mentor/TaskId-v0", kwargs=inner)
            promote = PromoteRule(steps=sequence.steps_per_task) if index < count - 1 else None
            stages.append(Stage(env=settings, promote=promote))
        config = CurriculumConfig(kind="staged", stages=stages)
        super().__init__(config, experiment)
        self.names = [task.name or f"task{i}" for i, task in enumerate(sequence.tasks)]
        named = zip(self.stage_tasks, self.names, strict=True)
        self.stage_tasks = [replace(task, name=name) for task, name in named]

    def final_task(self) -> Task:  # validation follows the task under way
        return self.stage_tasks[self.stage]

    def _move(self, step: int, by: int, why: str) -> None:
        self.stage += by
        self.stage_start, self.passes, self.fails = step, 0, 0
        name = self.names[self.stage]
        self._say(step, self.stage, f"task {self.stage} ({name}) begins at step {step:,}")


def make_teacher(experiment: Experiment) -> Teacher | None:
    """The experiment's teacher, or None without a curriculum or continual section."""
    if experiment.continual is not None:
        return SequenceTeacher(experiment)
    config = experiment.curriculum
    if config is None:
        return None
    kinds = {"staged": StagedTeacher, "uniform": UniformTeacher,
             "learning_progress": LearningProgressTeacher, "plr": PLRTeacher}  # fmt: skip
    return kinds[config.kind](config, experiment)
