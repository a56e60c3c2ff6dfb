"""A simulated market for one instrument (issue 18): OHLCV data, causal features, orders that
fill after the bar they were decided on, costs, and a portfolio in ``info``.

**Time.** Step t is decided on bar t's close: the observation holds what is known then (bars
``t - window + 1 .. t``), and the order fills at bar t+1's open (``fill: open``) or close
(``fill: close``). The reward of step t is the portfolio's change from bar t's close to bar
t+1's close, so it depends on prices up to bar t+1 and on nothing later; the observation of step
t on nothing after bar t (tested by changing the future and comparing the past).

**Positions** are shares of equity: -1 fully short, 0 flat, 1 fully long (``short: false``
limits them to [0, 1]). Actions: ``discrete`` {0 sell, 1 hold, 2 buy} (sell goes to the lowest
position, buy to the highest, hold keeps it), or ``continuous``, a target position in [-1, 1].
Between bar t's close and the fill the old position earns the price move; at the fill the
position becomes the target, paying ``cost`` and ``slippage`` (each a share of the value
traded: slippage as a fill price that much worse); from the fill to bar t+1's close the new
position earns. Equity starts at 1.

**Features** (each from bars up to t only): the last ``window`` log returns of the close, their
standard deviation, the close's gap to its ``window``-bar mean, and the log change of volume;
then the portfolio: position, unrealised return since the last trade, bars held (a share of
``window``).

**Rewards**: ``log_return`` (log E_{t+1}/E_t), ``pnl`` (E_{t+1} - E_t), or ``sharpe``, the
differential Sharpe ratio of Moody & Saffell (2001) with decay ``sharpe_eta``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from mentor.errors import ConfigError

COLUMNS = ("date", "open", "high", "low", "close", "volume")
SELL, HOLD, BUY = 0, 1, 2


@dataclass
class MarketData:
    """Bars of one instrument, oldest first: dates and OHLCV arrays of one length."""

    dates: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return len(self.close)

    @classmethod
    def from_csv(cls, path: str | Path, columns: dict[str, str] | None = None) -> MarketData:
        """A CSV with a header; ``columns`` maps mentor's names (date, open, ...) to the file's.
        ``ConfigError`` names a missing column, the first non-increasing date, or the first
        missing or non-positive price (row and column)."""
        import csv

        names = {name: (columns or {}).get(name, name) for name in COLUMNS}
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            missing = [f"{mine} (as '{theirs}')" if mine != theirs else mine
                       for mine, theirs in names.items() if theirs not in header]  # fmt: skip
            if missing:
                raise ConfigError(f"{path}: no column {', '.join(missing)}; the file has "
                                  f"{', '.join(header) or 'no header'}")  # fmt: skip
            rows = list(reader)
        dates = np.array([row[names["date"]] for row in rows], dtype="datetime64[ns]")
        values = {}
        for name in COLUMNS[1:]:
            column = np.array([_number(row[names[name]]) for row in rows], dtype=np.float64)
            bad = np.flatnonzero(~np.isfinite(column) | (column <= 0 if name != "volume"
                                                          else column < 0))  # fmt: skip
            if len(bad):
                raise ConfigError(f"{path}: row {bad[0] + 2} has {names[name]} "
                                  f"'{rows[bad[0]][names[name]]}': prices must be numbers "
                                  "above 0, volumes numbers of at least 0")  # fmt: skip
            values[name] = column
        backwards = np.flatnonzero(np.diff(dates) <= np.timedelta64(0, "ns"))
        if len(backwards):
            i = backwards[0] + 1
            raise ConfigError(f"{path}: row {i + 2} has date {dates[i]}, not after the row "
                              f"before's {dates[i - 1]}: dates must increase")  # fmt: skip
        return cls(dates, **values)

    @classmethod
    def synthetic(cls, bars: int, seed: int, drift: float = 0.0002) -> MarketData:
        """A seeded series for tests and a first run: log returns with two volatility regimes
        (calm 1% a bar, turbulent 3%, switching with probability 2% a bar), volatility
        clustering (GARCH(1,1)-like), and intraday open/high/low around the closes."""
        rng = np.random.default_rng(seed)
        regime, variance = 0, 0.01**2
        log_returns = np.empty(bars)
        for t in range(bars):
            if rng.random() < 0.02:
                regime = 1 - regime
            base = (0.01, 0.03)[regime] ** 2
            shock = log_returns[t - 1] ** 2 if t else base
            variance = 0.05 * base + 0.1 * shock + 0.85 * variance
            log_returns[t] = drift + math.sqrt(variance) * rng.standard_normal()
        close = 100.0 * np.exp(np.cumsum(log_returns))
        previous = np.concatenate([[100.0], close[:-1]])
        gap = np.exp(0.2 * log_returns * rng.standard_normal(bars))
        open_ = previous * gap
        high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.005, bars)))
        low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.005, bars)))
        volume = np.exp(rng.normal(12, 0.3, bars) + 20 * np.abs(log_returns))
        dates = np.datetime64("2000-01-03") + np.arange(bars).astype("timedelta64[D]")
        return cls(dates, open_, high, low, close, volume)


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def features(data: MarketData, window: int) -> np.ndarray:
    """(bars, window + 3): each bar's features from bars up to it only (module docstring);
    the first ``window`` bars have too little history and are 0."""
    close, volume = data.close, data.volume
    log_returns = np.concatenate([[0.0], np.diff(np.log(close))])
    volume_change = np.concatenate([[0.0], np.diff(np.log(volume + 1.0))])
    out = np.zeros((len(close), window + 3), dtype=np.float32)
    for t in range(window, len(close)):
        recent = log_returns[t - window + 1 : t + 1]
        out[t, :window] = recent
        out[t, window] = recent.std()
        out[t, window + 1] = close[t] / close[t - window + 1 : t + 1].mean() - 1.0
        out[t, window + 2] = volume_change[t]
    return out


class TradingEnv(gym.Env):
    """One instrument's market from bar ``start`` to bar ``end`` (module docstring)."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(
        self,
        data: MarketData | None = None,
        window: int = 20,
        actions: str = "discrete",
        short: bool = True,
        cost: float = 0.001,
        slippage: float = 0.0,
        fill: str = "open",
        reward: str = "log_return",
        sharpe_eta: float = 0.01,
        start: int | None = None,
        end: int | None = None,
        synthetic_bars: int = 1000,
        seed: int = 0,
    ) -> None:
        if actions not in ("discrete", "continuous"):
            raise ConfigError(f"trading: actions '{actions}'; expected discrete or continuous")
        if fill not in ("open", "close"):
            raise ConfigError(f"trading: fill '{fill}'; expected open or close")
        if reward not in ("log_return", "pnl", "sharpe"):
            raise ConfigError(f"trading: reward '{reward}'; expected log_return, pnl or sharpe")
        if cost < 0 or slippage < 0:
            raise ConfigError(f"trading: cost {cost} and slippage {slippage} must be >= 0")
        self.data = data if data is not None else MarketData.synthetic(synthetic_bars, seed)
        self.window, self.short, self.fill = window, short, fill
        self.cost, self.slippage, self.reward_kind, self.eta = cost, slippage, reward, sharpe_eta
        self.start = window if start is None else max(start, window)
        self.end = len(self.data) - 1 if end is None else min(end, len(self.data) - 1)
        if self.end - self.start < 1:
            raise ConfigError(
                f"trading: {len(self.data)} bars leave no step for a window of {window} between "
                f"bars {self.start} and {self.end}: give more bars or a smaller window"
            )
        self.features = features(self.data, window)
        self.low = -1.0 if short else 0.0
        self.action_space: spaces.Space = (
            spaces.Discrete(3) if actions == "discrete"
            else spaces.Box(-1.0, 1.0, (1,), np.float32)
        )  # fmt: skip
        self.observation_space = spaces.Box(-np.inf, np.inf, (window + 6,), np.float32)
        self.t = self.start
        self.position = 0.0
        self.equity = 1.0
        self.entry_equity = 1.0  # at the last trade: the unrealised return's base
        self.held = 0  # bars since the last trade
        self.sharpe_a = self.sharpe_b = 0.0  # the differential Sharpe ratio's moving moments

    # --- the Gymnasium API ----------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple:
        super().reset(seed=seed)
        self.t, self.position, self.held = self.start, 0.0, 0
        self.equity = self.entry_equity = 1.0
        self.sharpe_a = self.sharpe_b = 0.0
        return self._observe(), self._info()

    def step(self, action: Any) -> tuple:
        target = self._target(action)
        d, t = self.data, self.t
        before = self.equity
        fill_at = d.open[t + 1] if self.fill == "open" else d.close[t + 1]
        equity = before * (1.0 + self.position * (fill_at / d.close[t] - 1.0))  # old position
        traded = abs(target - self.position)
        equity *= 1.0 - (self.cost + self.slippage) * traded  # paid on the value traded
        equity *= 1.0 + target * (d.close[t + 1] / fill_at - 1.0)  # new position, to the close
        if traded > 0:
            self.entry_equity, self.held = equity, 0
        self.position, self.equity, self.held, self.t = target, equity, self.held + 1, t + 1
        reward = self._reward(before, equity)
        terminated = self.equity <= 0.0
        truncated = self.t >= self.end and not terminated
        return self._observe(), reward, terminated, truncated, self._info()

    # --- pieces ---------------------------------------------------------------------------------

    def _target(self, action: Any) -> float:
        if isinstance(self.action_space, spaces.Discrete):
            a = int(action)
            return self.low if a == SELL else (1.0 if a == BUY else self.position)
        return float(np.clip(np.asarray(action, dtype=np.float64).reshape(-1)[0], self.low, 1.0))

    def _reward(self, before: float, after: float) -> float:
        if self.reward_kind == "pnl":
            return after - before
        r = math.log(max(after, 1e-12) / before)
        if self.reward_kind == "log_return":
            return r
        a, b, eta = self.sharpe_a, self.sharpe_b, self.eta  # Moody & Saffell's D_t
        variance = b - a * a
        d = 0.0 if variance <= 1e-12 else (b * (r - a) - 0.5 * a * (r * r - b)) / variance**1.5
        self.sharpe_a, self.sharpe_b = a + eta * (r - a), b + eta * (r * r - b)
        return float(d)

    def _observe(self) -> np.ndarray:
        state = [self.position, self.equity / self.entry_equity - 1.0, self.held / self.window]
        return np.concatenate([self.features[self.t], state]).astype(np.float32)

    def _info(self) -> dict[str, Any]:
        return {"equity": self.equity, "position": self.position, "bar": self.t}
