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

Either draws the parameters of ``curriculum.randomize`` for each episode (domain
randomization), from its own seeded stream.
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any, Protocol

import numpy as np

from mentor.core.vec_env import Episode
from mentor.envs.tasks import Task
from mentor.experiment import Experiment
from mentor.experiment.schema import CurriculumConfig, Draw, SeedRange, TaskSettings


class Teacher(Protocol):
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
        self.events: list[str] = []

    def _with_params(self, task: Task) -> Task:
        if self.randomize is None:
            return task
        return Task(task.env_id, task.kwargs, task.seed, self.randomize(), task.name)

    def observe(self, copy: int, task: Task, episode: Episode) -> None:
        self.played[task.name] += 1

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
        if total and len(self.played) <= 16:  # the task mix, where there are few tasks
            out.update({f"curriculum/share_{name}": n / total for name, n in self.played.items()})
        self.played.clear()
        return out

    def _say(self, event: str) -> None:
        self.events.append(event)
        print(f"curriculum: {event}", file=sys.stderr)

    def _base_snapshot(self) -> dict[str, Any]:
        """The stream, the events, and what the next metrics row will count (logs resume too)."""
        drawn = {} if self.randomize is None else self.randomize.drawn
        return {"rng": self.rng.bit_generator.state, "events": list(self.events),
                "played": dict(self.played),
                "drawn": {name: list(values) for name, values in drawn.items()}}  # fmt: skip

    def _base_restore(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.events = list(state["events"])
        self.played = Counter(state.get("played", {}))
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
        self.stage = 0
        self.stage_start = 0  # env step the stage began at
        self.passes = 0  # consecutive validations meeting the promote rule
        self.fails = 0  # consecutive validations meeting the demote rule

    def tasks(self) -> list[Task]:
        return list(self.stage_tasks)

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
        self._say(f"{verb} to stage {self.stage} ({task.env_id}) at step {step:,}: {why}")

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
        if isinstance(tasks, SeedRange):
            self.levels = tasks.seeds
            self.choices = [_task(TaskSettings(), experiment, "levels")]
        elif tasks:
            self.choices = [_task(t, experiment, f"task{i}") for i, t in enumerate(tasks)]
        else:
            self.choices = [_task(TaskSettings(), experiment, "env")]

    def tasks(self) -> list[Task]:
        return list(self.choices)

    def next_task(self, copy: int) -> Task:
        task = self.choices[int(self.rng.integers(len(self.choices)))]
        if self.levels is not None:
            seed = int(self.rng.integers(*self.levels))
            task = Task(task.env_id, task.kwargs, seed, task.params, task.name)
        return self._with_params(task)

    def snapshot(self) -> dict[str, Any]:
        return self._base_snapshot()

    def restore(self, state: dict[str, Any]) -> None:
        self._base_restore(state)


def make_teacher(experiment: Experiment) -> Teacher | None:
    """The experiment's teacher, or None without a curriculum section."""
    config = experiment.curriculum
    if config is None:
        return None
    if config.kind == "staged":
        return StagedTeacher(config, experiment)
    return UniformTeacher(config, experiment)
