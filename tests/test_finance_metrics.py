"""Trading metrics against hand-computed series (mentor/envs/finance.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mentor.envs import finance

# Returns +10%, -10%, +20%: mean 1/15, std (ddof 1) sqrt(0.046667 / 2) = 0.152753.
EQUITY = np.array([100.0, 110.0, 99.0, 118.8])


def test_returns_volatility_sharpe_and_sortino_of_a_known_series() -> None:
    np.testing.assert_allclose(finance.period_returns(EQUITY), [0.1, -0.1, 0.2])
    assert finance.total_return(EQUITY) == pytest.approx(0.188)
    assert finance.annualised_return(EQUITY, periods_per_year=3) == pytest.approx(0.188)
    assert finance.annualised_return(EQUITY, periods_per_year=6) == pytest.approx(1.188**2 - 1)
    assert finance.volatility(EQUITY, 1) == pytest.approx(0.152753, rel=1e-5)
    assert finance.volatility(EQUITY, 4) == pytest.approx(2 * 0.152753, rel=1e-5)
    assert finance.sharpe(EQUITY, 1) == pytest.approx((1 / 15) / 0.152753, rel=1e-5)
    assert finance.sharpe(EQUITY, 1, risk_free=0.01) == pytest.approx(
        (1 / 15 - 0.01) / 0.152753, rel=1e-5)  # fmt: skip
    # Downside deviation: sqrt((0 + 0.01 + 0) / 3) = 0.057735 -> (1/15) / 0.057735 = 1.1547
    assert finance.sortino(EQUITY, 1) == pytest.approx(1.154700, rel=1e-5)


def test_drawdown_and_calmar_of_a_known_series() -> None:
    np.testing.assert_allclose(finance.drawdowns(EQUITY), [0.0, 0.0, 0.1, 0.0], atol=1e-12)
    assert finance.max_drawdown(EQUITY) == pytest.approx(0.1)
    assert finance.calmar(EQUITY, periods_per_year=3) == pytest.approx(1.88)
    # Two troughs: 120 -> 90 (25%) is deeper than 100 -> 95 (5%).
    assert finance.max_drawdown(np.array([100, 95, 120, 90, 130.0])) == pytest.approx(0.25)


def test_turnover_trades_and_exposure_count_from_flat() -> None:
    """[1, 1, -1]: traded 1 (enter), 0, 2 (long to short) -> turnover 3/3, 2 trades."""
    assert finance.turnover(np.array([1.0, 1.0, -1.0])) == pytest.approx(1.0)
    assert finance.trades(np.array([1.0, 1.0, -1.0])) == 2
    assert finance.exposure(np.array([1.0, 1.0, -1.0])) == 1.0
    assert finance.turnover(np.array([0.0, 0.5, 0.0])) == pytest.approx(1 / 3)
    assert finance.trades(np.array([0.0, 0.5, 0.0])) == 2
    assert finance.exposure(np.array([0.0, 0.5, 0.0])) == pytest.approx(1 / 3)
    metrics = finance.trading_metrics(EQUITY, np.array([1.0, 1.0, -1.0]), periods_per_year=3)
    assert metrics["max_drawdown"] == pytest.approx(0.1) and metrics["trades"] == 2.0


def test_a_ratio_without_a_denominator_is_nan_and_bad_curves_are_refused() -> None:
    flat = np.array([100.0, 100.0, 100.0])
    assert math.isnan(finance.sharpe(flat)) and math.isnan(finance.calmar(flat))
    assert math.isnan(finance.sortino(np.array([100.0, 101.0, 102.0])))  # no downside
    with pytest.raises(ValueError, match="above 0"):
        finance.period_returns(np.array([100.0, 0.0, 5.0]))
    with pytest.raises(ValueError, match="at least 2"):
        finance.period_returns(np.array([100.0]))
    with pytest.raises(ValueError, match="2 positions for 3 periods"):
        finance.trading_metrics(EQUITY, np.array([1.0, 0.0]))
