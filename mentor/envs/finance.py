"""Trading metrics of an equity curve and its positions (issue 18's evaluation of a backtest).

An equity curve is the portfolio's value at the end of each period (``E_0`` the start, before
any trade), positions the exposure held over each period (a share of equity: -1 short, 0 flat,
1 long; one column per instrument when there are several). ``periods_per_year`` converts to
yearly figures (252 trading days, 52 weeks, ...).
With period returns ``r_t = E_t / E_{t-1} - 1`` (n of them):

    total return        E_n / E_0 - 1
    annualised return   (E_n / E_0) ^ (periods_per_year / n) - 1
    volatility          std(r, ddof=1) * sqrt(periods_per_year)
    Sharpe              mean(r - rf) / std(r, ddof=1) * sqrt(periods_per_year)
    Sortino             mean(r - target) / sqrt(mean(min(r - target, 0)^2)) * sqrt(ppy)
                        (the downside deviation over every period, Sortino & Price 1994)
    maximum drawdown    max_t (1 - E_t / max_{s <= t} E_s), a share of the peak
    Calmar              annualised return / maximum drawdown
    turnover            sum_t |p_t - p_{t-1}| / n, from flat (p_0 = 0): position traded per period
                        (summed over the instruments)
    trades              the number of periods in which a position differs from the one before
    exposure            the share of periods with any position other than 0

A ratio whose denominator is 0 (no variation, no downside, no drawdown) is undefined: NaN, not
an infinity that would win every comparison.
"""

from __future__ import annotations

import math

import numpy as np

TRADING_DAYS = 252


def period_returns(equity: np.ndarray) -> np.ndarray:
    equity = np.asarray(equity, dtype=np.float64)
    if equity.ndim != 1 or len(equity) < 2:
        raise ValueError(f"an equity curve needs at least 2 values (the start and one period), "
                         f"got shape {equity.shape}")  # fmt: skip
    if np.any(equity <= 0):
        raise ValueError("an equity curve must stay above 0 (a ruined portfolio has no returns)")
    return equity[1:] / equity[:-1] - 1.0


def total_return(equity: np.ndarray) -> float:
    equity = np.asarray(equity, dtype=np.float64)
    return float(equity[-1] / equity[0] - 1.0)


def annualised_return(equity: np.ndarray, periods_per_year: float = TRADING_DAYS) -> float:
    n = len(period_returns(equity))
    return float((1.0 + total_return(equity)) ** (periods_per_year / n) - 1.0)


def volatility(equity: np.ndarray, periods_per_year: float = TRADING_DAYS) -> float:
    r = period_returns(equity)
    return float(np.std(r, ddof=1) * math.sqrt(periods_per_year)) if len(r) > 1 else math.nan


def sharpe(
    equity: np.ndarray, periods_per_year: float = TRADING_DAYS, risk_free: float = 0.0
) -> float:
    """``risk_free``: the risk-free return per period."""
    r = period_returns(equity)
    spread = np.std(r, ddof=1) if len(r) > 1 else 0.0
    if spread == 0:
        return math.nan
    return float(np.mean(r - risk_free) / spread * math.sqrt(periods_per_year))


def sortino(
    equity: np.ndarray, periods_per_year: float = TRADING_DAYS, target: float = 0.0
) -> float:
    """``target``: the minimum acceptable return per period."""
    excess = period_returns(equity) - target
    downside = math.sqrt(float(np.mean(np.minimum(excess, 0.0) ** 2)))
    if downside == 0:
        return math.nan
    return float(np.mean(excess) / downside * math.sqrt(periods_per_year))


def drawdowns(equity: np.ndarray) -> np.ndarray:
    """Each period's drawdown, ``1 - E_t / max_{s <= t} E_s`` (0 at a new peak)."""
    equity = np.asarray(equity, dtype=np.float64)
    return 1.0 - equity / np.maximum.accumulate(equity)


def max_drawdown(equity: np.ndarray) -> float:
    return float(np.max(drawdowns(equity)))


def calmar(equity: np.ndarray, periods_per_year: float = TRADING_DAYS) -> float:
    deepest = max_drawdown(equity)
    return math.nan if deepest == 0 else annualised_return(equity, periods_per_year) / deepest


def _held(positions: np.ndarray) -> np.ndarray:
    """Positions as (periods, instruments): one instrument's (n,) becomes (n, 1)."""
    held = np.asarray(positions, dtype=np.float64)
    return held.reshape(len(held), -1)


def turnover(positions: np.ndarray) -> float:
    held = _held(positions)
    return (
        float(np.sum(np.abs(np.diff(held, axis=0, prepend=0.0))) / len(held)) if len(held) else 0.0
    )


def trades(positions: np.ndarray) -> int:
    """Periods in which any instrument's position changed."""
    held = _held(positions)
    return int(np.count_nonzero(np.any(np.diff(held, axis=0, prepend=0.0) != 0, axis=1)))


def exposure(positions: np.ndarray) -> float:
    """The share of periods with any position open."""
    held = _held(positions)
    return float(np.mean(np.any(held != 0, axis=1))) if len(held) else 0.0


def trading_metrics(
    equity: np.ndarray, positions: np.ndarray, periods_per_year: float = TRADING_DAYS
) -> dict[str, float]:
    """Every metric of the module docstring, by name. ``positions``: one per period."""
    if len(positions) != len(equity) - 1:
        raise ValueError(f"{len(positions)} positions for {len(equity) - 1} periods: give the "
                         "position held over each period")  # fmt: skip
    ppy = periods_per_year
    return {
        "total_return": total_return(equity),
        "annualised_return": annualised_return(equity, ppy),
        "volatility": volatility(equity, ppy),
        "sharpe": sharpe(equity, ppy),
        "sortino": sortino(equity, ppy),
        "max_drawdown": max_drawdown(equity),
        "calmar": calmar(equity, ppy),
        "turnover": turnover(positions),
        "trades": float(trades(positions)),
        "exposure": exposure(positions),
    }
