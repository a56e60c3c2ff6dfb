"""A curriculum on Ray rollout workers: the one teacher, in the learner, deals each copy its tasks.

A worker steps its copies for a whole rollout (or a block of off-policy rows) without a word
from the learner, so a copy cannot ask the teacher for its next task when an episode ends, as a
local copy does (``core/vec_env.py``). Instead, before each round of calls the learner's
``TaskDealer`` tops up a queue of tasks for every copy, in copy order, from the one teacher; the
queues travel with the call, and in the worker a ``DealtTasks`` stands where the teacher stands
in a local ``VecEnv``: at each episode end it gives the copy the next task of its queue. With the
call's result come back what each copy played and how its episodes went; the learner then tells
the teacher of those episodes, worker by worker and in the order they ended, and drops the tasks
played from the queues. Which copy gets which task follows from the order of calls, never from
timing: with a fixed seed and number of workers a run is reproducible, and its checkpoint (the
queues, each copy's task, the teacher's state) resumes it bitwise.

A queue holds 2 + 2 x (the episodes its copy ended in the last round) tasks, at most half the
round's steps plus one (a copy resets at the step after an episode ends, so a round of T steps
ends at most T / 2 of its episodes); its first round guesses T / 8 episodes. Tasks not played
stay queued for the next round, so the teacher learns of every task it dealt, in the order it
dealt them (PLR scores levels in that order). A copy whose queue runs out plays its task again
(the level again, the parameters again); ``rollout/tasks_replayed`` counts those episodes. A
stage move (a promotion, a demotion: the teacher's ``events``) drops the tasks queued before it,
so the copies take the new stage from the next round on, as a local copy does at its next
episode; a teacher whose choices move slowly (learning progress, PLR's scores) reaches the
copies after the few tasks already queued.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from mentor.core.vec_env import Episode
from mentor.envs.tasks import Task


class DealtTasks:
    """The teacher of a worker's ``VecEnv``: gives each copy the tasks the learner dealt it, and
    records what the learner's teacher must hear."""

    def __init__(self, first: list[Task], every: list[Task]) -> None:
        self.first, self.every = list(first), every
        self.queues: list[list[Task]] = [[] for _ in first]
        self.current = list(first)
        self.played = [0] * len(first)  # tasks taken from each copy's queue this round
        self.replayed = 0  # episodes that played their copy's task again (its queue ran out)
        self.heard: list[tuple[int, Task, Episode]] = []  # (copy, task, episode) this round
        self._started = False

    def tasks(self) -> list[Task]:
        return self.every

    def next_task(self, copy: int) -> Task:
        if not self._started:  # the VecEnv's first task for each copy, as the learner dealt it
            return self.first[copy]
        queue = self.queues[copy]
        if self.played[copy] < len(queue):
            task = queue[self.played[copy]]
            self.played[copy] += 1
        else:
            task = self.current[copy]
            self.replayed += 1
        self.current[copy] = task
        return task

    def observe(self, copy: int, task: Task, episode: Episode) -> None:
        self.heard.append((copy, task, episode))

    def start_round(self, queues: list[list[Task]]) -> None:
        """This round's queues (the tasks still to play, oldest first)."""
        self._started = True
        self.queues = [list(queue) for queue in queues]
        self.played = [0] * len(queues)
        self.replayed, self.heard = 0, []

    def report(self, offset: int) -> dict[str, Any]:
        """What the round did, the copies numbered as the learner's (``offset``: the worker's
        first copy)."""
        heard = [
            (copy + offset, task, replace(episode, env_index=episode.env_index + offset))
            for copy, task, episode in self.heard
        ]
        return {"played": list(self.played), "replayed": self.replayed, "heard": heard,
                "current": list(self.current)}  # fmt: skip


def report_to_json(report: dict[str, Any] | None) -> dict[str, Any] | None:
    """A worker's round report as JSON (an off-policy block gathered before a checkpoint)."""
    if report is None:
        return None
    heard = [[copy, task.to_json(), episode.to_json()] for copy, task, episode in report["heard"]]
    return {**report, "heard": heard, "current": [task.to_json() for task in report["current"]]}


def report_from_json(data: dict[str, Any] | None) -> dict[str, Any] | None:
    if data is None:
        return None
    heard = [(copy, Task.from_json(task), Episode.from_json(episode))
             for copy, task, episode in data["heard"]]  # fmt: skip
    return {**data, "heard": heard, "current": [Task.from_json(task) for task in data["current"]]}


class TaskDealer:
    """The learner's side (module docstring): the queues of every copy, dealt by ``teacher``."""

    def __init__(self, teacher: Any, num_copies: int) -> None:
        self.teacher = teacher
        self.queues: list[list[Task]] = [[] for _ in range(num_copies)]
        self.ended: list[int | None] = [None] * num_copies  # episodes of each copy last round
        self.current: list[Task] = []
        self.moves = len(teacher.events)  # the teacher's stage moves when the queues were dealt
        self.replayed = 0  # over the run
        self._replayed_now: list[int] = []

    def first_tasks(self) -> list[Task]:
        """Each copy's first task, in copy order (as a local ``VecEnv`` asks for them)."""
        self.current = [self.teacher.next_task(copy) for copy in range(len(self.queues))]
        return list(self.current)

    def deal(self, steps: int) -> list[list[Task]]:
        """Top up every copy's queue, in copy order, for a round of ``steps`` vector steps."""
        cap = steps // 2 + 1
        if len(self.teacher.events) != self.moves:  # a stage move: what was queued is stale
            self.moves = len(self.teacher.events)
            self.queues = [[] for _ in self.queues]
        for copy, queue in enumerate(self.queues):
            ended = self.ended[copy]
            want = min(cap, 2 + 2 * (steps // 8 if ended is None else ended))
            while len(queue) < want:
                queue.append(self.teacher.next_task(copy))
        return [list(queue) for queue in self.queues]

    def take(self, report: dict[str, Any], offset: int) -> None:
        """A worker's round (``DealtTasks.report``): the teacher hears of its episodes, in the
        order they ended, and the tasks played leave their queues."""
        for copy, task, episode in report["heard"]:
            self.teacher.observe(copy, task, episode)
        for j, played in enumerate(report["played"]):
            copy = offset + j
            del self.queues[copy][:played]
            self.ended[copy] = sum(1 for c, _, _ in report["heard"] if c == copy)
            self.current[copy] = report["current"][j]
        self.replayed += report["replayed"]
        self._replayed_now.append(report["replayed"])

    def metrics(self) -> dict[str, float]:
        """Episodes that replayed a task since the last call (their queue ran out)."""
        out = {"rollout/tasks_replayed": float(sum(self._replayed_now))}
        self._replayed_now = []
        return out

    def snapshot(self) -> dict[str, Any]:
        return {"queues": [[task.to_json() for task in queue] for queue in self.queues],
                "ended": list(self.ended), "current": [task.to_json() for task in self.current],
                "replayed": self.replayed, "moves": self.moves}  # fmt: skip

    def restore(self, state: dict[str, Any]) -> None:
        self.queues = [[Task.from_json(task) for task in queue] for queue in state["queues"]]
        self.ended = list(state["ended"])
        self.current = [Task.from_json(task) for task in state["current"]]
        self.replayed, self.moves = state["replayed"], state["moves"]
