"""Tests of the evaluation statistics: IQM, the stratified bootstrap and the summary."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import numpy as np
import pytest

from mentor.core.vec_env import Episode, VecEnv
from mentor.errors import MentorError
from mentor.evaluation.evaluate import run_episodes, summarize_episodes
from mentor.evaluation.statistics import EvalSummary, _t_quantile, bootstrap_ci, iqm, summarize


def played(returns: np.ndarray, copies: np.ndarray) -> list[Episode]:
    """Episodes of one step each with these returns, played by these env copies."""
    return [Episode(int(i), float(r), 1) for r, i in zip(returns, copies, strict=True)]


def test_iqm_of_one_to_eight_keeps_the_middle_half() -> None:
    # Cut int(0.25 * 8) = 2 from each end: mean of 3, 4, 5, 6.
    assert iqm(np.arange(1, 9)) == 4.5


def test_iqm_when_n_is_not_divisible_by_four() -> None:
    values = [10, 1, 7, 3, 100, 5, -50]
    # n = 7 cuts int(1.75) = 1 from each end: sorted -50, [1, 3, 5, 7, 10], 100.
    assert iqm(values) == pytest.approx((1 + 3 + 5 + 7 + 10) / 5)
    # n = 10 cuts 2 from each end, so the outlier 100 and the 1, 2 go.
    assert iqm([1, 2, 3, 4, 5, 6, 7, 8, 9, 100]) == pytest.approx(5.5)


def test_iqm_of_fewer_than_four_values_is_the_mean() -> None:
    assert iqm([1.0, 2.0, 10.0]) == pytest.approx(13.0 / 3.0)


def test_iqm_along_an_axis_scores_each_row() -> None:
    rows = np.array([[1, 2, 3, 4, 5, 6, 7, 8], [8, 1, 1, 1, 1, 1, 1, 0]])
    np.testing.assert_allclose(iqm(rows, axis=1), [4.5, 1.0])


def test_iqm_of_nothing_is_an_error() -> None:
    with pytest.raises(MentorError):
        iqm([])


def test_bootstrap_ci_of_a_constant_is_that_constant() -> None:
    assert bootstrap_ci([np.full(20, 3.0)]) == (3.0, 3.0)
    assert bootstrap_ci([np.full(20, 3.0)], statistic=iqm) == (3.0, 3.0)


def test_bootstrap_ci_contains_the_true_mean_and_shrinks_with_more_data() -> None:
    rng = np.random.default_rng(123)
    small = rng.normal(5.0, 1.0, size=50)
    large = rng.normal(5.0, 1.0, size=800)
    low_small, high_small = bootstrap_ci([small])
    low_large, high_large = bootstrap_ci([large])
    assert low_small < 5.0 < high_small
    assert low_large < 5.0 < high_large
    # The width of a mean's interval goes as 1/sqrt(n): 16 times the data, about a quarter.
    ratio = (high_large - low_large) / (high_small - low_small)
    assert 0.15 < ratio < 0.4


def test_bootstrap_ci_brackets_the_sample_statistic() -> None:
    values = np.random.default_rng(7).exponential(size=100)
    low, high = bootstrap_ci([values], statistic=iqm, confidence=0.9)
    assert low < iqm(values) < high


def test_stratified_resampling_keeps_each_strata_count() -> None:
    # Every resample draws 30 zeros and 70 ones, so every resampled mean is exactly 0.7; the
    # plain bootstrap of the pooled values would let that proportion vary.
    zeros, ones = np.zeros(30), np.ones(70)
    low, high = bootstrap_ci([zeros, ones])
    assert low == pytest.approx(0.7)
    assert high == pytest.approx(0.7)
    pooled_low, pooled_high = bootstrap_ci([np.concatenate([zeros, ones])])
    assert pooled_high - pooled_low > 0.1


def test_stratified_ci_is_narrower_than_pooled_for_strata_with_different_means() -> None:
    rng = np.random.default_rng(0)
    easy = rng.normal(100.0, 0.1, size=50)
    hard = rng.normal(0.0, 0.1, size=50)
    stratified = bootstrap_ci([easy, hard])
    pooled = bootstrap_ci([np.concatenate([easy, hard])])
    assert stratified[1] - stratified[0] < (pooled[1] - pooled[0]) / 10


def test_same_seed_same_ci_and_other_seed_other_ci() -> None:
    values = np.random.default_rng(1).normal(size=60)
    assert bootstrap_ci([values], seed=3) == bootstrap_ci([values], seed=3)
    assert bootstrap_ci([values], seed=3) != bootstrap_ci([values], seed=4)


def test_higher_confidence_gives_a_wider_interval() -> None:
    values = np.random.default_rng(2).normal(size=60)
    low90, high90 = bootstrap_ci([values], confidence=0.9)
    low99, high99 = bootstrap_ci([values], confidence=0.99)
    assert low99 < low90 < high90 < high99


def test_statistic_without_axis_argument_gives_the_same_interval() -> None:
    values = np.random.default_rng(4).normal(size=40)
    vectorized = bootstrap_ci([values], statistic=np.median, num_resamples=300)
    one_by_one = bootstrap_ci([values], statistic=lambda v: float(np.median(v)), num_resamples=300)
    assert vectorized == one_by_one


def test_t_quantiles_match_the_tables() -> None:
    # Student's t quantiles as printed in tables (Abramowitz and Stegun 1964, table 26.10).
    assert _t_quantile(0.975, 1) == pytest.approx(12.7062, abs=1e-4)
    assert _t_quantile(0.975, 2) == pytest.approx(4.3027, abs=1e-4)
    assert _t_quantile(0.995, 5) == pytest.approx(4.0321, abs=1e-4)
    assert _t_quantile(0.975, 19) == pytest.approx(2.0930, abs=1e-4)
    assert _t_quantile(0.95, 30) == pytest.approx(1.6973, abs=1e-4)
    assert _t_quantile(0.975, 99) == pytest.approx(1.9842, abs=1e-4)
    assert _t_quantile(0.975, 100_000) == pytest.approx(1.95998, abs=1e-4)


def test_interval_of_a_normal_mean_is_as_wide_as_the_t_interval() -> None:
    # The expanded level is built so that for normal data the width matches the t interval's,
    # 2 * t * s / sqrt(n); BCa then shifts both ends with the sample's skew (here by 5% of the
    # half-width, up to 12% on other seeds), which leaves the width alone.
    values = np.random.default_rng(8).normal(10.0, 2.0, size=30)
    half = _t_quantile(0.975, 29) * values.std(ddof=1) / np.sqrt(30)
    low, high = bootstrap_ci([values], num_resamples=20_000)
    assert high - low == pytest.approx(2 * half, rel=0.03)
    assert (low + high) / 2 == pytest.approx(values.mean(), abs=0.15 * half)


def test_bootstrap_ci_rejects_bad_arguments() -> None:
    with pytest.raises(MentorError):
        bootstrap_ci([[]])
    with pytest.raises(MentorError):
        bootstrap_ci([[1.0, 2.0]], confidence=1.0)
    with pytest.raises(MentorError):
        bootstrap_ci([[1.0, 2.0]], num_resamples=0)
    # Strata of one value each cannot vary when resampled within: no interval, not a point.
    with pytest.raises(MentorError, match="single value"):
        bootstrap_ci([[1.0], [2.0], [3.0]])


def test_one_value_is_its_own_interval() -> None:
    assert bootstrap_ci([[4.0]]) == (4.0, 4.0)


def test_bootstrap_ci_is_fast() -> None:
    values = np.random.default_rng(5).normal(size=100)
    best = min(_seconds(lambda: bootstrap_ci([values], num_resamples=2000)) for _ in range(3))
    assert best < 0.05


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def test_summarize_reports_the_sample_and_its_intervals() -> None:
    returns = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 100.0])
    lengths = np.array([10, 20, 30, 40, 50, 60, 70, 80])
    summary = summarize(returns, lengths, success_threshold=5.0, confidence=0.9)
    assert summary.episodes == 8
    assert summary.return_mean == pytest.approx(16.0)
    assert summary.return_std == pytest.approx(np.std(returns))
    assert summary.return_iqm == pytest.approx(4.5)
    assert summary.return_min == 1.0
    assert summary.return_max == 100.0
    assert summary.length_mean == pytest.approx(45.0)
    assert summary.success_rate == pytest.approx(4 / 8)
    assert summary.success_threshold == 5.0
    assert summary.confidence == 0.9
    assert summary.return_ci_low < summary.return_mean < summary.return_ci_high
    assert summary.return_iqm_ci_low <= summary.return_iqm <= summary.return_iqm_ci_high
    expected = bootstrap_ci([returns], np.mean, confidence=0.9)
    assert (summary.return_ci_low, summary.return_ci_high) == expected


def test_summarize_uses_the_strata_labels() -> None:
    returns = np.array([0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    labels = np.array(["a", "a", "a", "b", "b", "b", "b", "b"])
    summary = summarize(returns, np.ones(8), strata=labels)
    # Each resample keeps 3 episodes of env a and 5 of env b, so the mean cannot move.
    assert summary.return_ci_low == pytest.approx(5 / 8)
    assert summary.return_ci_high == pytest.approx(5 / 8)


def test_summary_to_dict_is_plain_json() -> None:
    summary = summarize(np.arange(10.0), np.arange(10))
    data = summary.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert type(data["episodes"]) is int
    assert type(data["return_mean"]) is float
    assert data["success_rate"] is None
    # every field but the episodes' own returns, which a table row leaves out
    assert set(data) == set(EvalSummary.__dataclass_fields__) - {"returns"}
    assert summary.returns == tuple(float(r) for r in range(10))
    with_info = summarize(
        np.arange(4.0),
        np.ones(4),
        successes=[1, 0, 0, 1],
        info={"cost": np.array([1, 2, 3, 4], np.int64)},
    ).to_dict()
    assert json.loads(json.dumps(with_info)) == with_info
    assert with_info["info"] == {"cost": 2.5} and type(with_info["info"]["cost"]) is float
    assert with_info["success_from"] == "is_success"


def test_success_is_the_envs_is_success_when_every_episode_reports_it() -> None:
    # Returns say every episode succeeded (threshold 0); the env says two of four did.
    episodes = [
        Episode(0, 5.0, 10, {"is_success": 1.0, "cost": 2.0}),
        Episode(1, 6.0, 10, {"is_success": 0.0, "cost": 0.0}),
        Episode(0, 7.0, 10, {"is_success": 0.0, "cost": 1.0}),
        Episode(1, 8.0, 10, {"is_success": 1.0, "cost": 5.0}),
    ]
    summary = summarize_episodes(episodes, success_threshold=0.0)
    assert summary.success_rate == 0.5
    assert summary.success_from == "is_success" and summary.success_threshold is None
    assert summary.info == {"is_success": 0.5, "cost": 2.0}
    # Without is_success the threshold decides, as before; the other keys are still summarized.
    plain = [Episode(e.env_index, e.ret, e.length, {"cost": e.info["cost"]}) for e in episodes]
    summary = summarize_episodes(plain, success_threshold=6.5)
    assert summary.success_rate == 0.5
    assert summary.success_from == "threshold" and summary.success_threshold == 6.5
    assert summary.info == {"cost": 2.0}
    assert summarize_episodes(plain, None).success_rate is None


def test_an_evaluation_on_an_env_with_is_success_reports_its_verdicts() -> None:
    venv = VecEnv.make(
        "mentor.envs.testing:InfoEnv",
        {"length": 4, "success_at": 3},
        3,
        vectorization="sync",
        info_keys={"is_success": "last", "cost": "sum"},
    )
    rng = np.random.default_rng(0)
    try:
        episodes = run_episodes(lambda obs, _: rng.integers(0, 2, len(obs)), venv, 12, seed=3)
    finally:
        venv.close()
    verdicts = [e.info["is_success"] for e in episodes]
    assert len(episodes) == 12 and 0 < sum(verdicts) < 12  # some succeed, not all
    assert [e.env_index for e in episodes] == [0] * 4 + [1] * 4 + [2] * 4  # the quota per copy
    summary = summarize_episodes(episodes, success_threshold=0.0)  # every return is >= 0
    assert summary.success_rate == pytest.approx(np.mean(verdicts))
    assert summary.info["cost"] == pytest.approx(np.mean([e.info["cost"] for e in episodes]))


def test_summarize_rejects_empty_or_mismatched_input() -> None:
    with pytest.raises(MentorError, match="zero episodes"):
        summarize([], [])
    with pytest.raises(MentorError, match="lengths"):
        summarize([1.0, 2.0], [10])
    with pytest.raises(MentorError, match="strata"):
        summarize([1.0, 2.0], [10, 10], strata=["a"])
    with pytest.raises(MentorError, match="NaN"):
        summarize([1.0, float("nan")], [10, 10])


def _layout(episodes: int, copies: int) -> np.ndarray:
    """The env copy of each episode, as run_episodes shares episodes among copies."""
    quota = np.full(copies, episodes // copies)
    quota[: episodes % copies] += 1
    return np.repeat(np.arange(copies), quota)


@pytest.mark.parametrize(("episodes", "copies"), [(20, 10), (100, 25)])
def test_95_percent_interval_of_the_mean_covers_95_percent_of_the_time(
    episodes: int, copies: int
) -> None:
    # 1,000 simulated evaluations of N(0, 1) returns at the default layouts (validation: 20
    # episodes on 10 copies; final evaluation: 100 on 25), summarized as evaluations are. The
    # binomial standard error at 1,000 trials is 0.7 points. Over simulation seeds 0-9 (the
    # seed below is 0; benchmarks/bootstrap_coverage.py, normal rows, draws the same) coverage
    # was min 94.3%, median 94.7%, max 95.9% at 20 episodes and min 94.0%, median 95.1%, max
    # 95.9% at 100 (seed 0: 94.3% and 95.5%): at least 1.0 point from 93% and 1.1 from 97%.
    # Stratified by env copy, as before issue 10, seed 0 gives 80.3% and 90.7%. The plain
    # percentile interval gives 92.2-94.3% (median 93.0%) at 20 episodes, too near the bound
    # for this test to tell; the t-interval test above catches that one.
    rng = np.random.default_rng([0, episodes])
    values = rng.normal(size=(1000, episodes))
    labels = _layout(episodes, copies)
    covered = 0
    for row in values:
        summary = summarize_episodes(played(row, labels), None)
        covered += summary.return_ci_low <= 0.0 <= summary.return_ci_high
    assert 930 <= covered <= 970


def test_one_episode_per_env_copy_still_gives_an_interval() -> None:
    # mentor eval RUN --episodes 20 plays them on 20 copies, one episode each.
    returns = np.random.default_rng(9).normal(170.0, 18.0, size=20)
    summary = summarize_episodes(played(returns, np.arange(20)), None)
    assert summary.return_ci_high - summary.return_ci_low > 10.0
    assert summary.return_iqm_ci_high - summary.return_iqm_ci_low > 10.0
    assert summary.return_ci_low < summary.return_mean < summary.return_ci_high
    # The copies are not strata: the same interval as the episodes pooled.
    expected = bootstrap_ci([returns])
    assert (summary.return_ci_low, summary.return_ci_high) == expected


def test_interval_of_the_mean_is_never_a_point_when_episodes_differ() -> None:
    # Few episodes, many ties (returns from a handful of values), one outlier among constants.
    rng = np.random.default_rng(10)
    samples = [rng.integers(0, 3, size=n).astype(float) for n in range(2, 41) for _ in range(5)]
    samples += [np.r_[np.full(n - 1, 500.0), 20.0] for n in (2, 5, 20, 100, 1000)]
    for returns in samples:
        if np.ptp(returns) == 0:
            continue
        summary = summarize(returns, np.ones(returns.size))
        assert summary.return_ci_low < summary.return_ci_high, returns


def test_summarize_gives_the_same_intervals_for_the_same_seed() -> None:
    returns = np.random.default_rng(11).exponential(size=50)
    first = summarize(returns, np.ones(50), seed=5)
    assert summarize(returns, np.ones(50), seed=5) == first
    assert summarize(returns, np.ones(50), seed=6) != first
