"""Coverage of mentor's bootstrap confidence intervals, by simulation (issue 10).

For each evaluation layout (validation: 20 episodes on 10 env copies; final evaluation: 100 on
25), each distribution of returns and each simulation seed, it draws ``--trials`` evaluations,
computes mentor's 95% intervals exactly as an evaluation does (``summarize_episodes``, bootstrap
seed 0) and counts how often they cover the population's mean and IQM. Beside them, for the
mean, the intervals weighed in ``mentor/evaluation/statistics.py``'s docstring, computed here
with numpy on 2,000 resamples per trial: the percentile interval stratified by env copy (mentor
before issue 10), the plain percentile interval, Hesterberg's (2015) expanded percentile interval
and BCa (Efron 1987).

    python benchmarks/bootstrap_coverage.py             # 10 seeds, a few minutes on 2 cores
    python benchmarks/bootstrap_coverage.py --seeds 2

Distributions: standard normal; exponential (skewed, like episode lengths); and a bimodal mix
like RL returns, 80% of episodes N(0, 1) and 20% failures N(-5, 1).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from mentor.core.vec_env import Episode
from mentor.evaluation.evaluate import summarize_episodes
from mentor.evaluation.statistics import _NORMAL, _bca_level, _t_quantile

LAYOUTS = ((20, 10), (100, 25))
DISTRIBUTIONS = ("normal", "exponential", "bimodal")
CONFIDENCE = 0.95
RESAMPLES = 2000


def draw(name: str, rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    if name == "normal":
        return rng.normal(size=shape)
    if name == "exponential":
        return rng.exponential(size=shape)
    return rng.normal(size=shape) - 5.0 * (rng.random(shape) < 0.2)


def population(name: str) -> tuple[float, float]:
    """The population's mean and IQM (twice the integral of x f(x) between the quartiles)."""
    if name == "normal":
        return 0.0, 0.0
    if name == "exponential":
        q1, q3 = math.log(4 / 3), math.log(4)  # integral of x e^-x is -(x + 1) e^-x
        return 1.0, 2.0 * ((q1 + 1.0) * 0.75 - (q3 + 1.0) * 0.25)
    x = np.linspace(-12.0, 6.0, 1_800_001)
    density = (0.8 * np.exp(-(x**2) / 2) + 0.2 * np.exp(-((x + 5.0) ** 2) / 2)) / math.sqrt(
        2 * math.pi
    )
    dx = x[1] - x[0]
    cdf = np.cumsum(density) * dx
    q1, q3 = np.searchsorted(cdf, [0.25, 0.75])
    return -1.0, 2.0 * float(np.sum(x[q1:q3] * density[q1:q3]) * dx)


def copy_indices(episodes: int, copies: int) -> np.ndarray:
    """Which copy plays each episode, as ``run_episodes`` shares them out."""
    quota = np.full(copies, episodes // copies)
    quota[: episodes % copies] += 1
    return np.repeat(np.arange(copies), quota)


def counts(rng: np.random.Generator, strata: np.ndarray) -> np.ndarray:
    """(resamples, n) times each value is drawn, resampling within each stratum."""
    n = strata.size
    draws = np.empty((RESAMPLES, n), dtype=np.int64)
    for label in np.unique(strata):
        members = np.flatnonzero(strata == label)
        draws[:, members] = members[rng.integers(0, members.size, (RESAMPLES, members.size))]
    table = np.zeros((RESAMPLES, n))
    np.add.at(table, (np.arange(RESAMPLES)[:, None], draws), 1.0)
    return table


def alternatives(values: np.ndarray, copies: np.ndarray, rng: np.random.Generator) -> dict:
    """Intervals of the mean, one row per trial, by the methods mentor did not choose."""
    n = values.shape[1]
    tail = (1 - CONFIDENCE) / 2
    estimate = values.mean(axis=1)
    pooled = values @ counts(rng, np.zeros(n)).T / n
    by_copy = values @ counts(rng, copies).T / n
    z = math.sqrt(n / (n - 1)) * _t_quantile(1 - tail, n - 1)
    expanded = _NORMAL.cdf(-z)
    # BCa: bias correction from the resamples, acceleration from the jackknife (for the mean,
    # the deviations from the mean).
    shares = np.clip(
        np.mean(pooled < estimate[:, None], axis=1), 0.5 / RESAMPLES, 1 - 0.5 / RESAMPLES
    )
    z0 = [_NORMAL.inv_cdf(share) for share in shares]
    deviation = values - estimate[:, None]
    a = np.sum(deviation**3, axis=1) / (6 * np.sum(deviation**2, axis=1) ** 1.5)
    z_normal = _NORMAL.inv_cdf(1 - tail)
    bca = np.array(
        [
            np.quantile(row, [_bca_level(b, c, -z_normal), _bca_level(b, c, z_normal)])
            for row, b, c in zip(pooled, z0, a, strict=True)
        ]
    )
    return {
        "percentile by copy (old)": np.quantile(by_copy, [tail, 1 - tail], axis=1).T,
        "percentile": np.quantile(pooled, [tail, 1 - tail], axis=1).T,
        "expanded percentile": np.quantile(pooled, [expanded, 1 - expanded], axis=1).T,
        "BCa": bca,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--trials", type=int, default=1000)
    args = parser.parse_args()
    for episodes, num_copies in LAYOUTS:
        copies = copy_indices(episodes, num_copies)
        coverage: dict[tuple[str, str], list[float]] = {}
        tic = time.perf_counter()
        for distribution in DISTRIBUTIONS:
            mean, iqm = population(distribution)
            for seed in range(args.seeds):
                rng = np.random.default_rng([seed, episodes])
                values = draw(distribution, rng, (args.trials, episodes))
                rows = alternatives(values, copies, rng)
                for name, interval in rows.items():
                    low, high = interval.T
                    covered = float(np.mean((low <= mean) & (mean <= high)))
                    coverage.setdefault((distribution, f"mean, {name}"), []).append(covered)
                mentor_mean, mentor_iqm = [], []
                for row in values:
                    played = [
                        Episode(int(i), float(ret), 1) for ret, i in zip(row, copies, strict=True)
                    ]
                    summary = summarize_episodes(played, None)
                    mentor_mean.append(summary.return_ci_low <= mean <= summary.return_ci_high)
                    mentor_iqm.append(
                        summary.return_iqm_ci_low <= iqm <= summary.return_iqm_ci_high
                    )
                for name, hits in (("mean", mentor_mean), ("IQM", mentor_iqm)):
                    key = (distribution, f"{name}, mentor (expanded BCa)")
                    coverage.setdefault(key, []).append(float(np.mean(hits)))
        seconds = time.perf_counter() - tic
        print(
            f"\n{episodes} episodes on {num_copies} copies: coverage of the 95% interval, "
            f"{args.trials} trials x {args.seeds} seeds ({seconds:.0f} s)"
        )
        print(f"| {'distribution':11} | {'interval':36} | min % | median % | max % |")
        print(f"|{'-' * 13}|{'-' * 38}|------:|---------:|------:|")
        for (distribution, name), shares in coverage.items():
            pct = 100 * np.array(shares)
            low, middle, high = pct.min(), np.median(pct), pct.max()
            print(f"| {distribution:11} | {name:36} | {low:5.1f} | {middle:8.1f} | {high:5.1f} |")


if __name__ == "__main__":
    main()
