"""The report's robustness section: how much of its return an agent keeps when the world pushes.

From the run folder, and from another run's with ``mentor report RUN --compare OTHER`` (say an
agent trained without an adversary, beside a RARL protagonist):

- **with and without the adversary** (a RARL run): the protagonist's training episodes, played
  against the adversary (``rollout/ep_return_mean`` in ``metrics.csv``), and its validation,
  played alone on the plain env (``validation.csv``), over training;
- **under perturbations**: every ``mentor eval --perturb`` of the run (``eval_*.json`` with a
  ``perturbation``), beside its clean return (a plain ``mentor eval``'s, the same episodes'
  seeds; else the run's final evaluation, ``evaluation.json``).

Plotted as one figure: the two curves, and each perturbation's mean return for both runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mentor.evaluation.statistics import difference_ci

CLEAN = "clean"


@dataclass
class Condition:
    """One evaluation's return: its mean, its interval (``None`` when the file has none) and
    each episode's return (empty in files from before they were written)."""

    mean: float
    ci: tuple[float, float] | None = None
    episodes: list[float] = field(default_factory=list)

    @classmethod
    def of(cls, data: dict[str, Any]) -> Condition:
        """From an evaluation's JSON (``mentor eval``'s file, or ``evaluation.json``)."""
        low, high = data.get("return_ci_low"), data.get("return_ci_high")
        numbers = isinstance(low, (int, float)) and isinstance(high, (int, float))
        ci = (float(low), float(high)) if numbers else None
        episodes = data.get("episode_returns")
        kept = [float(r) for r in episodes] if isinstance(episodes, list) else []
        return cls(float(data["return_mean"]), ci, kept)


@dataclass
class Robustness:
    """One run's numbers: returns by condition (``clean`` and each perturbation's label), and
    for a RARL run its curves under and without the adversary (step, return)."""

    name: str
    returns: dict[str, Condition] = field(default_factory=dict)
    under: list[tuple[float, float]] = field(default_factory=list)
    without: list[tuple[float, float]] = field(default_factory=list)

    def is_empty(self) -> bool:
        return len(self.returns) < 2 and not self.under


def label(perturbation: dict[str, Any]) -> str:
    """``action_noise=0.3, param.m=1.3`` from an evaluation's ``perturbation``."""
    kinds = ("obs_noise", "action_noise", "action_delay")
    parts = [f"{key}={perturbation[key]:g}" for key in kinds if perturbation.get(key)]
    parts += [f"param.{k}={v:g}" for k, v in perturbation.get("params", {}).items()]
    return ", ".join(parts) or CLEAN


def perturbed_returns(run: Path) -> dict[str, Condition]:
    """Every ``mentor eval`` of the run, by condition (``clean`` for a plain one); files that
    cannot be read are left out."""
    out = {}
    for path in sorted(run.glob("eval_*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(data.get("return_mean"), (int, float)):
            out[label(data.get("perturbation") or {})] = Condition.of(data)
    return out


def gap(clean: Condition, perturbed: Condition) -> str:
    """The generalization gap, perturbed minus clean, with its 95% bootstrap interval when both
    evaluations kept their episodes' returns (the two resampled on their own)."""
    text = f"{perturbed.mean - clean.mean:+.1f}"
    if clean.episodes and perturbed.episodes:
        low, high = difference_ci(perturbed.episodes, clean.episodes)
        text += f" [{low:+.1f}, {high:+.1f}]"
    return text


def rows(runs: list[Robustness]) -> list[tuple[str, str]]:
    """The section's table: each condition's return with its interval for each run, and its
    generalization gap from the clean return with the gap's interval; then the RARL curves'
    last values."""
    conditions = [CLEAN, *sorted({c for r in runs for c in r.returns} - {CLEAN})]
    out = []
    for condition in conditions:
        cells = []
        for run in runs:
            value = run.returns.get(condition)
            if value is None:
                cells.append(f"{run.name}: -")
                continue
            text = f"{run.name}: {value.mean:.1f}"
            if value.ci is not None:
                text += f" [{value.ci[0]:.1f}, {value.ci[1]:.1f}]"
            clean = run.returns.get(CLEAN)
            if condition != CLEAN and clean is not None:
                text += f", gap {gap(clean, value)}"
            cells.append(text)
        out.append((f"Return, {condition}", "; ".join(cells)))
    for run in runs:
        if run.under:
            out.append((f"{run.name}: under the adversary (training, last)",
                        f"{run.under[-1][1]:.1f}"))  # fmt: skip
        if run.without:
            out.append((f"{run.name}: without it (validation, last)", f"{run.without[-1][1]:.1f}"))
    return out


def plot(runs: list[Robustness], path: Path) -> Path:
    curves = [run for run in runs if run.under or run.without]
    figure = Figure(figsize=(11 if curves else 6, 4))
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, 2 if curves else 1, squeeze=False)[0]
    if curves:
        ax = axes[0]
        for run in curves:
            if run.under:
                ax.plot(*zip(*run.under, strict=True), label=f"{run.name}: under the adversary")
            if run.without:
                ax.plot(*zip(*run.without, strict=True), marker="o", ms=3,
                        label=f"{run.name}: without (validation)")  # fmt: skip
        ax.set_xlabel("env steps")
        ax.set_ylabel("return")
        ax.set_title("with and without the adversary")
        ax.legend(fontsize=7)
    bars = axes[-1]
    conditions = [CLEAN, *sorted({c for r in runs for c in r.returns} - {CLEAN})]
    width = 0.8 / len(runs)
    for k, run in enumerate(runs):
        xs = [i + k * width for i, c in enumerate(conditions) if c in run.returns]
        bars.bar(xs, [run.returns[c].mean for c in conditions if c in run.returns], width,
                 label=run.name)  # fmt: skip
    bars.set_xticks([i + 0.4 - width / 2 for i in range(len(conditions))], conditions,
                    rotation=20, ha="right", fontsize=7)  # fmt: skip
    bars.set_ylabel("mean return")
    bars.set_title("clean and under perturbations (mentor eval --perturb)")
    bars.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return path
