"""Tests of the Mann-Kendall plateau test that decides when validation stopped improving."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mentor.errors import ConfigError, NonFiniteError
from mentor.evaluation.convergence import (
    PlateauDetector,
    is_plateau,
    mann_kendall_s,
    mann_kendall_variance,
    trend_pvalue,
)


def _upper_tail(z: float) -> float:
    return 0.5 * (1.0 - math.erf(z / math.sqrt(2.0)))


def test_strictly_increasing_five_values() -> None:
    values = [1, 2, 3, 4, 5]
    # All 10 pairs rise; var = 5 * 4 * 15 / 18 = 50 / 3; z = (10 - 1) / sqrt(50 / 3) ≈ 2.2045.
    assert mann_kendall_s(values) == 10
    assert mann_kendall_variance(values) == pytest.approx(50.0 / 3.0)
    assert trend_pvalue(values) == pytest.approx(0.013743, abs=1e-6)
    assert trend_pvalue(values) == pytest.approx(_upper_tail(9.0 / math.sqrt(50.0 / 3.0)))


def test_strictly_decreasing_is_the_mirror_image() -> None:
    assert mann_kendall_s([5, 4, 3, 2, 1]) == -10
    assert trend_pvalue([5, 4, 3, 2, 1]) == pytest.approx(1.0 - 0.013743, abs=1e-6)


def test_ties_reduce_the_variance() -> None:
    values = [1, 2, 2, 3]
    # Pairs: 1<2, 1<2, 1<3, 2=2, 2<3, 2<3, so S = 5. The tie group of two removes
    # 2 * 1 * 9 / 18 = 1 from 4 * 3 * 13 / 18 = 26 / 3, leaving 23 / 3.
    assert mann_kendall_s(values) == 5
    assert mann_kendall_variance(values) == pytest.approx(23.0 / 3.0)
    assert trend_pvalue(values) == pytest.approx(_upper_tail(4.0 / math.sqrt(23.0 / 3.0)))
    assert trend_pvalue(values) == pytest.approx(0.07428, abs=1e-5)


def test_no_trend_gives_one_half() -> None:
    # Pairs: 1<2, 1=1, 2>1, so S = 0 and z = 0.
    assert mann_kendall_s([1, 2, 1]) == 0
    assert trend_pvalue([1, 2, 1]) == 0.5


def test_constant_or_too_short_sequences_give_one() -> None:
    assert trend_pvalue([3.0, 3.0, 3.0, 3.0]) == 1.0
    assert trend_pvalue([3.0]) == 1.0


def test_s_matches_the_definition_on_random_data() -> None:
    x = np.random.default_rng(0).integers(0, 5, size=25)  # small range: many ties
    expected = sum(int(np.sign(x[j] - x[i])) for i in range(len(x)) for j in range(i + 1, len(x)))
    assert mann_kendall_s(x) == expected


def test_non_finite_values_are_refused() -> None:
    with pytest.raises(NonFiniteError):
        trend_pvalue([1.0, float("nan"), 2.0])


def test_noise_around_a_constant_is_a_plateau() -> None:
    noise = 100.0 + np.random.default_rng(42).normal(0.0, 5.0, size=20)
    assert is_plateau(noise, window=20)


def test_a_clear_upward_trend_is_not_a_plateau() -> None:
    rising = np.arange(20.0) + np.random.default_rng(42).normal(0.0, 1.0, size=20)
    assert not is_plateau(rising, window=20)


def test_is_plateau_needs_a_full_window_and_looks_only_at_it() -> None:
    assert not is_plateau([5.0, 5.0, 5.0], window=10)
    rising_then_flat = [*range(30), *([30.0, 29.0, 30.0, 31.0, 30.0, 29.0, 30.0, 31.0] * 2)]
    assert not is_plateau(rising_then_flat, window=40)
    assert is_plateau(rising_then_flat, window=12)


def test_detector_waits_for_min_evaluations() -> None:
    detector = PlateauDetector(window=5, alpha=0.05, min_evaluations=8)
    decisions = [detector.update(v) for v in [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]]
    assert decisions == [False] * 7 + [True]


def test_detector_keeps_going_while_the_return_rises() -> None:
    detector = PlateauDetector(window=6, alpha=0.05, min_evaluations=0)
    assert not any(detector.update(float(v)) for v in range(20))
    assert detector.history == [float(v) for v in range(20)]


def test_detector_state_round_trips_through_json() -> None:
    detector = PlateauDetector(window=5, min_evaluations=5)
    for value in [1.0, 2.0, 3.0, 3.5]:
        detector.update(value)
    state = json.loads(json.dumps(detector.state_dict()))
    restored = PlateauDetector(window=5, min_evaluations=5)
    restored.load_state_dict(state)
    assert restored.history == detector.history
    assert restored.update(3.5) == detector.update(3.5)


def test_detector_refuses_a_window_too_short_to_ever_see_a_trend() -> None:
    # Even 1, 2, 3 has p ≈ 0.148, so a window of 3 would declare a plateau on every run.
    with pytest.raises(ConfigError, match="too short"):
        PlateauDetector(window=3, alpha=0.05)
    PlateauDetector(window=4, alpha=0.05)  # 1, 2, 3, 4 has p ≈ 0.045
    with pytest.raises(ConfigError):
        PlateauDetector(window=10, alpha=0.0)


def test_detector_refuses_non_finite_returns() -> None:
    with pytest.raises(NonFiniteError):
        PlateauDetector(window=5).update(float("inf"))
