"""``mentor transfer-report``: what starting from another run's policy bought, over seeds.

Runs that started from a checkpoint (``agent.init``) against runs of the same experiment from
scratch, each group one run per seed. From every run's validations (``validation.csv``; step 0
is the initial policy's, which a run from a checkpoint validates by itself and a scratch run
with ``validation.at_start: true``), the measures of Taylor & Stone (2009):

    jumpstart          the return before any update
    steps to threshold the first validation step at or above the threshold (``--threshold``,
                       else the runs' stopping target); a run that never reaches it counts as
                       its last validation's step, and the table marks it ">="
    area under curve   the mean return from step 0 to the longest run's last validation
                       (trapezoids between validations; a run that stopped earlier, at its
                       target, counts at its last return from there on), so a faster rise
                       counts as much as a higher end
    asymptotic return  the mean of each run's last three validations

Each is given as the mean over the runs of each group and the difference, transferred minus
scratch, with a 95% percentile bootstrap interval over seeds (both groups resampled, 10,000
times, seeded: the same runs give the same interval); steps to threshold also as the ratio of
the means. Written: ``transfer.json``, ``transfer.png`` (every run's curve, each group's mean
drawn thick, the threshold dashed) and a table returned for the console.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mentor.continual.metrics import area
from mentor.errors import CheckpointError
from mentor.evaluation.statistics import difference_ci

LAST = 3  # validations averaged for the asymptotic return


@dataclass(frozen=True)
class Curve:
    """One run's validation returns by step, and what the run was."""

    run: Path
    steps: np.ndarray
    returns: np.ndarray
    target: float | None
    source: str | None  # the checkpoint it started from (a transferred run's)

    @classmethod
    def read(cls, run: str | Path) -> Curve:
        folder = Path(run)
        table = folder / "validation.csv"
        if not table.is_file():
            raise CheckpointError(
                f"'{folder}' has no validation.csv: give run folders (runs/NAME) whose training "
                "validated"
            )
        with table.open(newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("return_mean") not in (None, "")]
        if not rows:
            raise CheckpointError(f"'{folder}/validation.csv' has no validation")
        manifest_file = folder / "manifest.json"
        manifest = json.loads(manifest_file.read_text()) if manifest_file.is_file() else {}
        init = manifest.get("init") or {}
        return cls(
            folder,
            np.array([int(r["step"]) for r in rows]),
            np.array([float(r["return_mean"]) for r in rows]),
            manifest.get("target_return"),
            init.get("source"),
        )

    def start(self) -> float | None:
        """The initial policy's return (its validation at step 0), None without one."""
        return float(self.returns[0]) if self.steps[0] == 0 else None

    def reached(self, threshold: float) -> tuple[int, bool]:
        """The first validation step at or above ``threshold``, and whether it got there (if
        not: its last validation's step)."""
        hits = np.flatnonzero(self.returns >= threshold)
        return (int(self.steps[hits[0]]), True) if len(hits) else (int(self.steps[-1]), False)

    def area(self, until: int) -> float:
        """The mean return over [first step, ``until``], by trapezoids between validations; past
        its last validation, a run counts at its last return."""
        grid = np.append(self.steps[self.steps < until], until)
        return area(grid, np.interp(grid, self.steps, self.returns))  # constant past the ends

    def asymptotic(self) -> float:
        return float(np.mean(self.returns[-LAST:]))


def _measure(name: str, ours: list[float], theirs: list[float]) -> dict[str, Any]:
    low, high = difference_ci(ours, theirs)
    return {"measure": name, "transfer": float(np.mean(ours)), "scratch": float(np.mean(theirs)),
            "difference": float(np.mean(ours) - np.mean(theirs)), "ci95": [low, high],
            "per_run": {"transfer": list(ours), "scratch": list(theirs)}}  # fmt: skip


def transfer_report(
    transferred: list[str | Path], scratch: list[str | Path], threshold: float | None = None,
    out: str | Path | None = None,
) -> tuple[dict[str, Any], Path]:  # fmt: skip
    """The measures (module docstring) as JSON-ready data, and the folder they were written to
    (``out``, else ``transfer/`` in the first transferred run)."""
    if not transferred or not scratch:
        raise CheckpointError("transfer-report needs transferred runs and --scratch runs, one each")
    ours, theirs = [Curve.read(r) for r in transferred], [Curve.read(r) for r in scratch]
    if threshold is None:
        threshold = next((c.target for c in ours + theirs if c.target is not None), None)
    measures = []
    starts_ours, starts_theirs = [c.start() for c in ours], [c.start() for c in theirs]
    notes = []
    if None in starts_ours or None in starts_theirs:
        notes.append("jumpstart: a run has no validation at step 0 (train it with "
                     "validation.at_start=true)")  # fmt: skip
    else:
        measures.append(_measure("jumpstart (return at step 0)", starts_ours, starts_theirs))
    ratio = None
    if threshold is not None:
        got_ours, got_theirs = (
            [c.reached(threshold) for c in ours],
            [c.reached(threshold) for c in theirs],
        )
        steps = _measure(f"steps to {threshold:g}", [float(s) for s, _ in got_ours],
                         [float(s) for s, _ in got_theirs])  # fmt: skip
        steps["reached"] = {"transfer": [ok for _, ok in got_ours],
                            "scratch": [ok for _, ok in got_theirs]}  # fmt: skip
        measures.append(steps)
        if steps["scratch"] > 0:
            ratio = steps["transfer"] / steps["scratch"]
    else:
        notes.append("steps to threshold: no --threshold and no stopping target in the runs")
    until = int(max(c.steps[-1] for c in ours + theirs))
    areas = [c.area(until) for c in ours], [c.area(until) for c in theirs]
    measures.append(_measure(f"area under the curve (mean return, steps 0-{until:,})", *areas))
    ends = [c.asymptotic() for c in ours], [c.asymptotic() for c in theirs]
    measures.append(_measure(f"asymptotic return (last {LAST} validations)", *ends))
    report = {
        "transferred": [str(c.run) for c in ours], "scratch": [str(c.run) for c in theirs],
        "sources": sorted({c.source for c in ours if c.source}), "threshold": threshold,
        "measures": measures, "steps_ratio": ratio, "notes": notes,
    }  # fmt: skip
    folder = Path(out) if out is not None else ours[0].run / "transfer"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "transfer.json").write_text(json.dumps(report, indent=1))
    _plot(ours, theirs, threshold).savefig(folder / "transfer.png", dpi=110)
    return report, folder


def rows(report: dict[str, Any]) -> list[list[str]]:
    """The measures as table rows: measure, transfer, scratch, difference [95% CI]."""
    out = []
    for m in report["measures"]:
        mark = ""
        if "reached" in m and not all(m["reached"]["scratch"]):
            mark = " (>=: a scratch run never got there)"
        low, high = m["ci95"]
        out.append([m["measure"], f"{m['transfer']:,.1f}", f"{m['scratch']:,.1f}",
                    f"{m['difference']:+,.1f} [{low:+,.1f}, {high:+,.1f}]{mark}"])  # fmt: skip
    if report["steps_ratio"] is not None:
        out.append(
            ["steps to threshold, transfer / scratch", f"{report['steps_ratio']:.2f}", "", ""]
        )
    return out


def _plot(ours: list[Curve], theirs: list[Curve], threshold: float | None) -> Figure:
    figure = Figure(figsize=(7, 4))
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    for curves, colour, label in (
        (ours, "tab:blue", "transferred"),
        (theirs, "tab:grey", "scratch"),
    ):
        for c in curves:
            ax.plot(c.steps, c.returns, color=colour, alpha=0.3, linewidth=0.8)
        until = int(min(c.steps[-1] for c in curves))
        grid = np.unique(np.concatenate([c.steps[c.steps <= until] for c in curves]))
        mean = np.mean([np.interp(grid, c.steps, c.returns) for c in curves], axis=0)
        ax.plot(grid, mean, color=colour, linewidth=2.2, label=f"{label} (mean of {len(curves)})")
    if threshold is not None:
        ax.axhline(threshold, color="tab:red", linestyle="--", linewidth=1, label="threshold")
    ax.set_xlabel("env steps")
    ax.set_ylabel("validation return")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    figure.tight_layout()
    return figure
