"""The measures of a continual run, from its performance matrix (Continual World, Wolczyk et
al. 2021).

``matrix[i][j]`` is the performance on task j after training task i (rows: one after each task,
in order; columns: every task, those to come included), in [0, 1]: a success rate where the env
says what a success is, else the return over the most the env can pay (CartPole: 500).

    average performance   the mean of the last row: every task, at the end of the sequence
    forgetting_i          matrix[i][i] - matrix[-1][i]: task i at the end of its own training,
                          minus at the end of the sequence (tasks before the last); the mean
    forward transfer_i    (AUC_i - AUC_i^b) / (1 - AUC_i^b): the area under task i's curve
                          during its training against a single-task run's (its baseline), both
                          in [0, 1]; given baselines only
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def continual_metrics(
    matrix: Sequence[Sequence[float]], aucs: Sequence[float] | None = None,
    baselines: Sequence[float] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The measures of the module docstring (forward transfer only with ``aucs`` and
    ``baselines``, one per task)."""
    r = np.asarray(matrix, dtype=float)
    if r.ndim != 2 or r.shape[0] > r.shape[1]:
        raise ValueError(f"a performance matrix has a row per task trained so far: got {r.shape}")
    done = r.shape[0]
    forgetting = [float(r[i, i] - r[-1, i]) for i in range(done - 1)]
    out: dict[str, Any] = {
        "average_performance": float(r[-1].mean()),
        "forgetting": forgetting,
        "forgetting_mean": float(np.mean(forgetting)) if forgetting else None,
    }
    if aucs is not None and baselines is not None:
        transfer = [
            float((a - b) / (1 - b)) if b < 1 else None
            for a, b in zip(aucs, baselines, strict=True)
        ]
        out["forward_transfer"] = transfer
        known = [t for t in transfer if t is not None]
        out["forward_transfer_mean"] = float(np.mean(known)) if known else None
    return out


def area(steps: Sequence[int], values: Sequence[float]) -> float:
    """The mean of ``values`` over ``steps`` (trapezoids); the value itself for one point."""
    x, y = np.asarray(steps, float), np.asarray(values, float)
    if len(x) == 0:
        return float("nan")
    if len(x) == 1 or x[-1] == x[0]:
        return float(y.mean())
    return float(((y[1:] + y[:-1]) / 2 * np.diff(x)).sum() / (x[-1] - x[0]))
