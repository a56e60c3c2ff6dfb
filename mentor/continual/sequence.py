"""A continual run: its tasks one after another, the performance matrix, and what it keeps.

``experiment.continual`` lists the tasks; the ``SequenceTeacher`` (``curricula/teachers.py``)
plays each for ``steps_per_task`` env steps, the env copies taking the next task as their
episodes end. The session tells this ``ContinualRun`` of each validation (on the task under
way: its learning curve, for the area under it) and of each task's end, where it

1. evaluates the policy on every task, those to come included: a row of the performance
   matrix (``metrics.py``), each entry in [0, 1] (success rate, else the return over the most
   the env pays, else the return itself);
2. gathers ``fisher_samples`` (EWC) or ``rehearsal.states`` states of the finished task with the
   policy acting (a seeded stream of its own, the run's streams untouched) and hands them to
   the regularizer and the rehearsal (``keep.py``), whose loss terms the method's updates add
   from then on (``penalty``); or, for replay rehearsal (off-policy methods), keeps
   ``rehearsal.states`` of the task's transitions in the replay buffer (``ReplayBuffer.keep``),
   a ``share`` of every later batch.

At the run's end the last row is taken, and ``continual.json`` holds the matrix (performance
and raw returns), the step of each row, each task's area under its curve and the measures
(forward transfer too, against ``continual.baselines``: each task's single-task run);
the manifest keeps the same under ``continual``. The rows, curves and what is kept are in
every checkpoint: a run resumes across task boundaries bitwise.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mentor.continual.keep import EWC, L2, Keeper, Rehearsal
from mentor.continual.metrics import area, continual_metrics
from mentor.core.vec_env import VecEnv
from mentor.envs.resolve import make_env
from mentor.envs.tasks import Task, max_return
from mentor.errors import ConfigError
from mentor.evaluation.statistics import EvalSummary
from mentor.experiment import Experiment


def collect_states(policy: Any, task: Task, count: int, seed: int) -> torch.Tensor:
    """``count`` observations of ``task``'s env (as the network reads them) with the policy
    acting, sampled; 4 copies, reset with ``seed``, on random streams of their own."""
    venv = VecEnv.make(task.env_id, dict(task.kwargs), 4, vectorization="sync")
    states = []
    try:
        obs = venv.reset(seed=seed)
        with torch.random.fork_rng(), torch.no_grad():
            torch.manual_seed(seed)
            while sum(len(s) for s in states) < count:
                batch = torch.as_tensor(obs)
                states.append(batch)
                actions = policy.dist.sample(policy.policy_params(batch), False)
                obs, *_ = venv.step(actions.numpy())
    finally:
        venv.close()
    return torch.cat(states)[:count].clone()


class ContinualRun:
    """(module docstring) ``evaluate(task, episodes)`` is the session's evaluation of the
    current policy on a task."""

    def __init__(
        self, experiment: Experiment, tasks: list[Task], policy: torch.nn.Module,
        evaluate: Callable[[Task, int], EvalSummary],
    ) -> None:  # fmt: skip
        self.config, self.seed = experiment.continual, experiment.seed
        self.tasks, self.policy, self.evaluate = tasks, policy, evaluate
        self.scales = [_scale(task) for task in tasks]
        self.baselines = None  # each task alone: the areas forward transfer is measured against
        if self.config.baselines is not None:
            self.baselines = [self.baseline_area(run, i)
                              for i, run in enumerate(self.config.baselines)]  # fmt: skip
        self.rows: list[list[float]] = []  # performance, in [0, 1] where a scale is known
        self.returns: list[list[float]] = []
        self.row_steps: list[int] = []
        self.curves: list[list[tuple[int, float]]] = [[] for _ in tasks]  # (step, performance)
        self.keepers: list[Keeper] = []
        self.buffer: Any = None  # an off-policy run's replay buffer (replay rehearsal keeps in it)
        reg, rehearse = self.config.regularizer, self.config.rehearsal
        if reg.kind in ("ewc", "online_ewc"):
            self.keepers.append(EWC(policy, reg.strength, reg.kind == "online_ewc", reg.decay))
        elif reg.kind == "l2":
            self.keepers.append(L2(policy, reg.strength))
        if rehearse.kind == "distill":
            self.keepers.append(
                Rehearsal(policy, rehearse.strength, rehearse.batch_size, self.seed)
            )

    def baseline_area(self, run: str, index: int) -> float:
        """The area under a single-task run's validation curve, in the matrix's units."""
        table = Path(run) / "validation.csv"
        if not table.is_file():
            raise ConfigError(
                f"continual.baselines[{index}] '{run}' has no validation.csv: give the run "
                f"folder of task {index} trained alone"
            )
        with table.open(newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("return_mean")]
        if not rows:
            raise ConfigError(f"continual.baselines[{index}] '{run}': no validation in it")
        scale = self.scales[index]
        values = [float(r["success_rate"]) if r.get("success_rate") else
                  float(r["return_mean"]) / scale if scale else float(r["return_mean"])
                  for r in rows]  # fmt: skip
        return area([int(r["step"]) for r in rows], values)

    def performance(self, summary: EvalSummary, index: int) -> float:
        if summary.success_rate is not None:
            return float(summary.success_rate)
        scale = self.scales[index]
        return float(summary.return_mean / scale) if scale else float(summary.return_mean)

    # --- what the session calls -------------------------------------------------------------

    def penalty(self, params: list[torch.nn.Parameter]) -> dict[str, torch.Tensor]:
        """The keepers' loss terms over ``params`` (what a method adds to its own)."""
        terms: dict[str, torch.Tensor] = {}
        for keeper in self.keepers:
            terms.update(keeper.terms(params))
        return terms

    def on_validation(self, step: int, index: int, summary: EvalSummary) -> None:
        """A validation on task ``index``, the one under way: a point of its curve."""
        self.curves[index].append((step, self.performance(summary, index)))

    def task_end(self, step: int, index: int, last: bool = False) -> None:
        """Task ``index`` is done: a row of the matrix; unless it is the last, what the keepers
        keep of it."""
        episodes = self.config.eval_episodes
        summaries = [self.evaluate(task, episodes) for task in self.tasks]
        self.rows.append([self.performance(s, j) for j, s in enumerate(summaries)])
        self.returns.append([float(s.return_mean) for s in summaries])
        self.row_steps.append(step)
        reg, rehearse = self.config.regularizer, self.config.rehearsal
        seed = self.seed + 7919 * (index + 1)
        if not last and rehearse.kind == "replay" and self.buffer is not None:
            rows_back = self.config.steps_per_task // self.buffer.num_envs
            rng = np.random.default_rng(seed)
            self.buffer.keep(rehearse.states, rows_back, rng, rehearse.share)
        if last or not self.keepers:
            return
        count = max(reg.fisher_samples if reg.kind != "none" else 0,
                    rehearse.states if rehearse.kind == "distill" else 0)  # fmt: skip
        states = collect_states(self.policy, self.tasks[index], count, seed)
        was_training = self.policy.training
        self.policy.eval()
        wanted = {EWC: reg.fisher_samples, Rehearsal: rehearse.states}  # L2 reads none
        for keeper in self.keepers:
            keeper.task_end(self.policy, states[: wanted.get(type(keeper), 0)], seed)
        self.policy.train(was_training)

    def result(self) -> dict[str, Any]:
        """The matrix, the curves' areas and the measures (module docstring)."""
        aucs = [area([s for s, _ in c], [v for _, v in c]) if c else None for c in self.curves]
        out = {
            "tasks": [task.name for task in self.tasks],
            "matrix": self.rows,
            "returns": self.returns,
            "row_steps": self.row_steps,
            "scales": self.scales,
            "auc": aucs,
        }
        if self.rows:
            complete = self.baselines is not None and None not in aucs
            out.update(continual_metrics(self.rows, aucs if complete else None, self.baselines))
            out["baseline_auc"] = self.baselines
        return out

    # --- checkpoints ---------------------------------------------------------------------------

    def save(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors = {f"{i}/{key}": value for i, keeper in enumerate(self.keepers)
                   for key, value in keeper.state_dict().items()}  # fmt: skip
        values = {"rows": self.rows, "returns": self.returns, "row_steps": self.row_steps,
                  "curves": [[list(p) for p in c] for c in self.curves]}  # fmt: skip
        return tensors, values

    def load(self, tensors: dict[str, torch.Tensor] | None, values: dict[str, Any]) -> None:
        self.rows, self.returns = values["rows"], values["returns"]
        self.row_steps = values["row_steps"]
        self.curves = [[(int(s), float(v)) for s, v in c] for c in values["curves"]]
        for i, keeper in enumerate(self.keepers):
            own = {k.split("/", 1)[1]: v for k, v in (tensors or {}).items()
                   if k.startswith(f"{i}/")}  # fmt: skip
            keeper.load_state_dict(own)


def _scale(task: Task) -> float | None:
    """The most an episode of the task pays, where that is known (CartPole: 500)."""
    env = make_env(task.env_id, dict(task.kwargs))
    try:
        scale = max_return(env)
        if scale is None and task.env_id == "mentor/TaskId-v0":  # the inner env's
            inner = make_env(task.kwargs["env"], dict(task.kwargs.get("kwargs") or {}))
            scale = max_return(inner)
            inner.close()
        return None if scale is None or not np.isfinite(scale) or scale <= 0 else scale
    finally:
        env.close()
