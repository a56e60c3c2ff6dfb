"""The plots of a walk-forward backtest (``mentor/walkforward.py``): per fold's test period, the
equity curves of the agent (each seed) against the baselines, their drawdowns below the running
peak, and the positions held (the net, summed over the instruments).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mentor.envs.finance import drawdowns

if TYPE_CHECKING:
    from mentor.walkforward import WalkForward

COLOURS = {"agent": "tab:red", "buy_and_hold": "tab:blue", "random": "tab:gray",
           "ma_crossover": "tab:green"}  # fmt: skip


def plot_walk_forward(result: WalkForward, folder: Path) -> list[Path]:
    """``walk_forward.png``: a column per fold; rows equity, drawdown, net position."""
    folds = result.folds
    fig = Figure(figsize=(4.5 * len(folds) + 1, 8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(3, len(folds), squeeze=False, sharex="col")
    for column, fold in enumerate(folds):
        first, last = result.dates[fold.index]["test"]
        top, middle, bottom = axes[:, column]
        top.set_title(f"fold {fold.index}: test {first} to {last}", fontsize=9)
        labelled: set[str] = set()
        for test in (t for t in result.tests if t.fold == fold.index):
            colour = COLOURS.get(test.method, "tab:purple")
            label = None if test.method in labelled else test.method
            labelled.add(test.method)
            equity = np.asarray(test.equity)
            alpha = 0.9 if test.method == "agent" else 0.6
            top.plot(equity, color=colour, alpha=alpha, lw=1, label=label)
            middle.plot(-drawdowns(equity), color=colour, alpha=alpha, lw=1)
            held = np.asarray(test.positions, dtype=np.float64)
            net = held.reshape(len(held), -1).sum(axis=1)
            if test.method in ("agent", "ma_crossover"):
                bottom.step(np.arange(1, len(net) + 1), net, color=colour, alpha=alpha, lw=1)
        top.axhline(1.0, color="black", lw=0.5)
        for ax in axes[:, column]:
            ax.grid(alpha=0.3)
        bottom.set_xlabel("test bar")
    axes[0, 0].set_ylabel("equity (start 1)")
    axes[1, 0].set_ylabel("drawdown")
    axes[2, 0].set_ylabel("net position (agent, crossover)")
    axes[0, -1].legend(fontsize=8, loc="best")
    path = folder / "walk_forward.png"
    fig.savefig(path, dpi=100)
    return [path]
