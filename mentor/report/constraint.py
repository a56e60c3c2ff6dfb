"""The report's constraint section: a constrained run's episode cost against its limit and its
Lagrange multiplier over training (``constraint/...`` in metrics.csv, logged by the methods that
train under ``experiment.constraint``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def plot(
    cost: tuple[np.ndarray, np.ndarray],
    multiplier: tuple[np.ndarray, np.ndarray],
    limit: float,
    path: Path,
    target: float | None = None,
) -> None:
    """Two panels over env steps: the mean cost of the episodes each update saw, with the
    limit (and the training target under it, ``constraint.margin``); the multiplier."""
    fig = Figure(figsize=(8, 5), layout="constrained")
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True)
    top.plot(*cost, color="tab:red", lw=1, label="episode cost")
    top.axhline(limit, color="black", ls="--", lw=1, label=f"limit {limit:g}")
    if target is not None:
        top.axhline(target, color="gray", ls=":", lw=1, label=f"training target {target:g}")
    top.set_ylabel("episode cost")
    top.legend(fontsize=8)
    bottom.plot(*multiplier, color="tab:blue", lw=1)
    bottom.set_ylabel("multiplier (lambda)")
    bottom.set_xlabel("env steps")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    fig.savefig(path, dpi=100)
