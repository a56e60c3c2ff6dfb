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

CLEAN = "clean"


@dataclass
class Robustness:
    """One run's numbers: returns by condition (``clean`` and each perturbation's label), and
    for a RARL run its curves under and without the adversary (step, return)."""

    name: str
    returns: dict[str, float] = field(default_factory=dict)
    under: list[tuple[float, float]] = field(default_factory=list)
    without: list[tuple[float, float]] = field(default_factory=list)

    def is_empty(self) -> bool:
        return len(self.returns) < 2 and not self.under


def label(perturbation: dict[str, Any]) -> str:
    """``action_noise=0.3, param.m=1.3`` from an evaluation's ``perturbation``."""
    parts = [f"{key}={perturbation[key]:g}" for key in ("obs_noise", "action_noise")
             if perturbation.get(key)]  # fmt: skip
    parts += [f"param.{k}={v:g}" for k, v in perturbation.get("params", {}).items()]
    return ", ".join(parts) or CLEAN


def perturbed_returns(run: Path) -> dict[str, float]:
    """The mean return of every ``mentor eval`` of the run, by condition (``clean`` for a plain
    one); files that cannot be read are left out."""
    out = {}
    for path in sorted(run.glob("eval_*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if "return_mean" in data:
            out[label(data.get("perturbation") or {})] = float(data["return_mean"])
    return out


def rows(runs: list[Robustness]) -> list[tuple[str, str]]:
    """The section's table: each condition's return for each run (with the clean return's
    difference), then the RARL curves' last values."""
    conditions = [CLEAN, *sorted({c for r in runs for c in r.returns} - {CLEAN})]
    out = []
    for condition in conditions:
        cells = []
        for run in runs:
            value = run.returns.get(condition)
            if value is None:
                cells.append(f"{run.name}: -")
                continue
            clean = run.returns.get(CLEAN)
            delta = "" if condition == CLEAN or clean is None else f" ({value - clean:+.1f})"
            cells.append(f"{run.name}: {value:.1f}{delta}")
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
        bars.bar(xs, [run.returns[c] for c in conditions if c in run.returns], width,
                 label=run.name)  # fmt: skip
    bars.set_xticks([i + 0.4 - width / 2 for i in range(len(conditions))], conditions,
                    rotation=20, ha="right", fontsize=7)  # fmt: skip
    bars.set_ylabel("mean return")
    bars.set_title("clean and under perturbations (mentor eval --perturb)")
    bars.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return path
