"""Summary statistics of evaluation returns, with honest uncertainty.

A handful of episodes is a small, noisy sample, so a bare mean overstates what a run shows.
Following Agarwal et al. (2021), "Deep Reinforcement Learning at the Edge of the Statistical
Precipice", we report the interquartile mean (robust to the odd catastrophic or lucky episode, yet
less noisy than the median) and percentile bootstrap confidence intervals. When episodes come from
several environments or seeds, the bootstrap resamples within each of them (stratified), so every
resample keeps the design of the real evaluation instead of, say, drawing every episode from one
env.

Everything here is plain numpy so it runs anywhere and fast.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mentor.errors import MentorError

Statistic = Callable[..., Any]

# Largest number of resampled values held in memory at once; beyond it the resamples are drawn in
# chunks so that large evaluations do not allocate gigabytes.
_MAX_CHUNK_VALUES = 4_000_000


@overload
def iqm(values: ArrayLike) -> float: ...


@overload
def iqm(values: ArrayLike, axis: int) -> NDArray[np.float64]: ...


def iqm(values: ArrayLike, axis: int | None = None) -> float | NDArray[np.float64]:
    """Interquartile mean: the mean of the values left after cutting a quarter from each end.

    It keeps half the data, so it is far less noisy than the median, yet a few extreme episodes
    cannot drag it the way they drag the mean. Semantics match ``scipy.stats.trim_mean(x, 0.25)``:
    sort, drop ``int(0.25 * n)`` values from each end, average the rest (with fewer than four
    values nothing is dropped and it is the plain mean).

    With ``axis`` it works row- or column-wise on an array, which the bootstrap uses to score
    thousands of resamples in one call.
    """
    array = np.asarray(values, dtype=np.float64)
    if axis is None:
        array = array.ravel()
        axis = 0
    n = array.shape[axis]
    if n == 0:
        raise MentorError("iqm of an empty set of values")
    cut = int(0.25 * n)
    trimmed = np.sort(array, axis=axis).take(np.arange(cut, n - cut), axis=axis)
    result = trimmed.mean(axis=axis)
    return float(result) if np.ndim(result) == 0 else result


def bootstrap_ci(
    strata: Sequence[ArrayLike],
    statistic: Statistic = np.mean,
    confidence: float = 0.95,
    num_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Stratified percentile bootstrap confidence interval of ``statistic``.

    Each resample draws, with replacement, as many values from each stratum as that stratum holds,
    pools them and applies ``statistic``; the interval is the ``(1 - confidence) / 2`` and
    ``(1 + confidence) / 2`` percentiles of the resampled statistics. One stratum gives the plain
    bootstrap. Strata with no values are ignored.

    ``statistic`` is called as ``statistic(resamples, axis=-1)`` on a 2-D array with one resample
    per row, as numpy reductions and :func:`iqm` allow; a function without an ``axis`` argument is
    applied to one resample at a time, which is correct but slower. The same ``seed`` always gives
    the same interval, so reports are reproducible.
    """
    if not 0.0 < confidence < 1.0:
        raise MentorError(f"bootstrap confidence must be between 0 and 1, got {confidence}")
    if num_resamples < 1:
        raise MentorError(f"bootstrap needs at least one resample, got {num_resamples}")
    groups = [np.asarray(s, dtype=np.float64).ravel() for s in strata]
    groups = [g for g in groups if g.size > 0]
    if not groups:
        raise MentorError("bootstrap of an empty set of values")

    rng = np.random.default_rng(seed)
    total = sum(g.size for g in groups)
    chunk = max(1, _MAX_CHUNK_VALUES // total)
    scores: list[NDArray[np.float64]] = []
    for start in range(0, num_resamples, chunk):
        rows = min(chunk, num_resamples - start)
        # One index matrix per stratum: row r holds the draws of resample r from that stratum.
        parts = [g[rng.integers(0, g.size, size=(rows, g.size))] for g in groups]
        scores.append(_apply_rowwise(statistic, np.concatenate(parts, axis=1)))
    all_scores = np.concatenate(scores)

    tail = (1.0 - confidence) / 2.0
    low, high = np.percentile(all_scores, [100.0 * tail, 100.0 * (1.0 - tail)])
    return float(low), float(high)


def _apply_rowwise(statistic: Statistic, resamples: NDArray[np.float64]) -> NDArray[np.float64]:
    """Score every row of ``resamples``, in one vectorized call when the statistic allows it."""
    try:
        scores = np.asarray(statistic(resamples, axis=-1), dtype=np.float64)
    except TypeError:
        scores = np.array([statistic(row) for row in resamples], dtype=np.float64)
    if scores.shape != (resamples.shape[0],):
        raise MentorError(
            f"bootstrap statistic must give one number per resample, got shape {scores.shape}"
        )
    return scores


@dataclass(frozen=True)
class EvalSummary:
    """What an evaluation found: point estimates of the return together with their uncertainty.

    ``return_ci_*`` bound the mean return and ``return_iqm_ci_*`` the interquartile mean, both at
    ``confidence``. ``return_std`` is the population standard deviation of the episodes (it
    describes their spread; it is not a standard error). ``success_rate`` is the fraction of
    episodes whose return reached ``success_threshold``, None when there is no threshold.
    """

    episodes: int
    return_mean: float
    return_std: float
    return_iqm: float
    return_ci_low: float
    return_ci_high: float
    return_iqm_ci_low: float
    return_iqm_ci_high: float
    return_min: float
    return_max: float
    length_mean: float
    success_threshold: float | None
    success_rate: float | None
    confidence: float

    def to_dict(self) -> dict[str, int | float | None]:
        """Plain ints, floats and None, ready for ``json.dump`` or a CSV row."""
        return {
            key: (None if value is None else int(value) if key == "episodes" else float(value))
            for key, value in asdict(self).items()
        }


def summarize(
    returns: ArrayLike,
    lengths: ArrayLike,
    strata: ArrayLike | None = None,
    success_threshold: float | None = None,
    confidence: float = 0.95,
    num_resamples: int = 2000,
    seed: int = 0,
) -> EvalSummary:
    """Summarize the episodes of an evaluation, one entry of each array per episode.

    ``strata`` optionally labels each episode with the group it came from (which validation env,
    which seed); the bootstrap then resamples within each group so that the confidence intervals
    reflect how the evaluation was actually run.
    """
    returns_arr = np.asarray(returns, dtype=np.float64).ravel()
    lengths_arr = np.asarray(lengths, dtype=np.float64).ravel()
    n = returns_arr.size
    if n == 0:
        raise MentorError("cannot summarize an evaluation with zero episodes")
    if lengths_arr.size != n:
        raise MentorError(
            f"evaluation has {n} returns but {lengths_arr.size} episode lengths; "
            "they must be one per episode"
        )
    if not np.all(np.isfinite(returns_arr)):
        raise MentorError("evaluation returns contain NaN or infinity")

    if strata is None:
        groups = [returns_arr]
    else:
        labels = np.asarray(strata).ravel()
        if labels.size != n:
            raise MentorError(
                f"evaluation has {n} returns but {labels.size} strata labels; "
                "they must be one per episode"
            )
        _, group_of = np.unique(labels, return_inverse=True)
        groups = [returns_arr[group_of == g] for g in range(int(group_of.max()) + 1)]

    ci_low, ci_high = bootstrap_ci(groups, np.mean, confidence, num_resamples, seed)
    iqm_low, iqm_high = bootstrap_ci(groups, iqm, confidence, num_resamples, seed)
    success_rate = None
    if success_threshold is not None:
        success_rate = float(np.mean(returns_arr >= success_threshold))

    return EvalSummary(
        episodes=n,
        return_mean=float(returns_arr.mean()),
        return_std=float(returns_arr.std()),
        return_iqm=iqm(returns_arr),
        return_ci_low=ci_low,
        return_ci_high=ci_high,
        return_iqm_ci_low=iqm_low,
        return_iqm_ci_high=iqm_high,
        return_min=float(returns_arr.min()),
        return_max=float(returns_arr.max()),
        length_mean=float(lengths_arr.mean()),
        success_threshold=None if success_threshold is None else float(success_threshold),
        success_rate=success_rate,
        confidence=float(confidence),
    )
