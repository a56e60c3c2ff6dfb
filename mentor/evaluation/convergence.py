"""Decide when the validation return has stopped improving.

The test is the one-sided Mann-Kendall trend test over the last ``window`` validation returns
``x_1, ..., x_n`` (oldest first):

* ``S`` is the sum over all pairs ``i < j`` of ``sign(x_j - x_i)``: +1 for every later value that is
  higher than an earlier one, -1 for every one that is lower, 0 for ties.
* With no trend, ``S`` is approximately normal with mean 0 and variance
  ``n(n-1)(2n+5)/18``, less ``t(t-1)(2t+5)/18`` for every group of ``t`` tied values.
* With the continuity correction, ``z = (S - 1) / sqrt(var)`` when ``S > 0``,
  ``(S + 1) / sqrt(var)`` when ``S < 0`` and 0 otherwise; the p-value for an increasing trend is
  ``1 - Phi(z)``, with ``Phi`` the standard normal distribution function.

The returns have plateaued when that p-value is above ``alpha``: the last ``window`` evaluations
give no significant evidence that the return is still going up. The test uses only the order of the
values, so it does not care about the scale of the returns, and a single lucky or disastrous
evaluation moves it far less than it moves a comparison of means.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from mentor.errors import ConfigError, NonFiniteError


def mann_kendall_s(values: ArrayLike) -> int:
    """The Mann-Kendall statistic ``S``: concordant minus discordant pairs, in time order."""
    x = np.asarray(values, dtype=np.float64).ravel()
    # signs[i, j] = sign(x_j - x_i); the strict upper triangle holds the pairs i < j.
    signs = np.sign(x[np.newaxis, :] - x[:, np.newaxis])
    return int(np.triu(signs, k=1).sum())


def mann_kendall_variance(values: ArrayLike) -> float:
    """The variance of ``S`` under the hypothesis of no trend, corrected for ties."""
    x = np.asarray(values, dtype=np.float64).ravel()
    n = x.size
    _, tie_sizes = np.unique(x, return_counts=True)
    ties = sum(int(t) * (int(t) - 1) * (2 * int(t) + 5) for t in tie_sizes)
    return (n * (n - 1) * (2 * n + 5) - ties) / 18.0


def trend_pvalue(values: ArrayLike) -> float:
    """One-sided Mann-Kendall p-value for an increasing trend in ``values`` (oldest first).

    Small values mean the sequence is significantly going up; values near 1 mean it is going down;
    fewer than two values, or values that are all equal, give 1.0, since they offer no evidence
    of improvement.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(x)):
        raise NonFiniteError("trend test got a NaN or infinite value")
    variance = mann_kendall_variance(x)
    if variance <= 0.0:
        return 1.0
    s = mann_kendall_s(x)
    if s > 0:
        z = (s - 1) / math.sqrt(variance)
    elif s < 0:
        z = (s + 1) / math.sqrt(variance)
    else:
        z = 0.0
    # 1 - Phi(z), written with erfc so that tiny p-values do not round to zero.
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def is_plateau(values: Sequence[float] | ArrayLike, window: int, alpha: float = 0.05) -> bool:
    """True when there are ``window`` values and the last ``window`` show no significant rise."""
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size < window:
        return False
    return trend_pvalue(x[-window:]) > alpha


@dataclass
class PlateauDetector:
    """Feeds validation returns one at a time and says when they have stopped improving.

    ``min_evaluations`` keeps a run from stopping before it has been evaluated that many times
    (the plateau test itself needs ``window`` values too), which protects against stopping during
    the flat start that many tasks have before learning takes off.

    The window must be long enough that a steadily rising sequence can pass the test at ``alpha``:
    with three values, say, even 1, 2, 3 has a p-value of 0.15, so every run would "plateau" at
    ``alpha = 0.05``. Such settings are refused up front rather than silently stopping every run.
    """

    window: int = 10
    alpha: float = 0.05
    min_evaluations: int = 10
    history: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ConfigError(f"plateau alpha must be between 0 and 1, got {self.alpha}")
        if self.window < 2 or trend_pvalue(np.arange(self.window)) > self.alpha:
            raise ConfigError(
                f"plateau window {self.window} is too short: even a steadily rising return "
                f"would count as a plateau at alpha={self.alpha}; use a longer window"
            )
        if self.min_evaluations < 0:
            raise ConfigError(
                f"plateau min_evaluations must be non-negative, got {self.min_evaluations}"
            )

    def update(self, value: float) -> bool:
        """Record one validation return and say whether the returns have now plateaued."""
        if not math.isfinite(value):
            raise NonFiniteError(f"validation return is {value}")
        self.history.append(float(value))
        if len(self.history) < self.min_evaluations:
            return False
        return is_plateau(self.history, self.window, self.alpha)

    def state_dict(self) -> dict[str, Any]:
        """The history as plain JSON types, to store in a checkpoint.

        The settings are not included: they come from the experiment, so a resumed run may use
        a different window or alpha on the same history.
        """
        return {"history": list(self.history)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the history saved by :meth:`state_dict`."""
        self.history = [float(v) for v in state["history"]]
