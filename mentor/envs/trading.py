"""A simulated market (issue 18): one or several instruments' bars (``envs/market.py``), causal
features, orders that fill after the bar they were decided on, costs, position limits, and the
portfolio and its trading metrics in ``info``.

**Time.** Step t is decided on bar t's close: the observation holds what is known then (bars up
to t), and the order fills at bar t+1's open (``fill: open``) or close (``fill: close``). The
reward of step t is the portfolio's change from bar t's close to bar t+1's close, so it depends
on prices up to bar t+1 and on nothing later; the observation of step t on nothing after bar t
(tested by changing the future and comparing the past).

**Positions** are shares of equity per instrument, each within ``position_limit`` (by default
1 / the number of instruments, so the whole book is at most 1: no leverage): from
``-position_limit`` (short) through 0 to ``position_limit`` (long); ``short: false`` makes the
lowest 0. Actions: ``discrete``, per instrument {0 sell, 1 hold, 2 buy} (sell goes to the lowest
position, buy to the highest, hold keeps it; ``Discrete(3)`` for one instrument, else
``MultiDiscrete``), or ``continuous``, a target in [-1, 1] per instrument, a share of the
limit. Between bar t's close and the fill the old positions earn the price move; at the fill
they become the targets, paying ``cost`` and ``slippage`` (each a share of the value traded:
slippage as a fill price that much worse); from the fill to bar t+1's close the new positions
earn. A position is a constant share of equity: held, it is rebalanced at no cost. Equity
starts at 1.

**Features** (per instrument, each from bars up to t only; ``features`` picks them):
``returns`` the last ``window`` log returns of the close, ``volatility`` their standard
deviation, ``ma_gap`` the close's gap to its ``window``-bar mean, ``volume_change`` the log change
of volume. ``scale: [first, last]`` standardizes each feature with its mean and standard
deviation over those bars only: give the training period, so that validation and test bars
never inform the scaler. Then the portfolio: each position, the cash share (1 - the sum of
|positions|), the return since the last trade, bars held since (a share of ``window``).

**Episodes** run from bar ``start`` to bar ``end``; with ``episode_bars`` each episode is that
many steps from a start drawn in [start, end - episode_bars] (the env's seeded generator), so
the copies of a training env see different stretches.

**Rewards**: ``log_return`` (log E_{t+1}/E_t), ``pnl`` (E_{t+1} - E_t), or ``sharpe``, the
differential Sharpe ratio of Moody & Saffell (2001) with decay ``sharpe_eta``; minus
``drawdown_penalty`` times the step's deepening of the drawdown (its sum over an episode is at
least the maximum drawdown).

**info**: ``equity``, ``position`` (the net: sum of positions), ``bar``, ``drawdown`` (below
the episode's peak) and ``drawdown_increase`` (the step's deepening of it: a cost for a
drawdown budget under ``experiment.constraint``) every step; at an episode's last step also its
``total_return``, ``sharpe``, ``max_drawdown``, ``turnover``, ``trades`` and ``exposure``
(``envs/finance.py``; an undefined Sharpe, of a flat book, is 0 here) — declare them in
``env.info_keys`` and they are in the run's metrics.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from mentor.envs.finance import trading_metrics
from mentor.envs.market import MarketData, load_market
from mentor.envs.snapshot import SnapshotAttributes
from mentor.errors import ConfigError

SELL, HOLD, BUY = 0, 1, 2
FEATURES = ("returns", "volatility", "ma_gap", "volume_change")
EPISODE_METRICS = ("total_return", "sharpe", "max_drawdown", "turnover", "trades", "exposure")

__all__ = ["BUY", "FEATURES", "HOLD", "SELL", "MarketData", "TradingEnv", "compute_features"]


def compute_features(
    data: MarketData, window: int, names: tuple[str, ...] = FEATURES
) -> np.ndarray:
    """(bars, columns): each bar's features from bars up to it only (module docstring); the
    first ``window`` bars have too little history and are 0."""
    unknown = [n for n in names if n not in FEATURES]
    if unknown or not names:
        raise ConfigError(f"trading: features {list(names)}; choose one or more of "
                          f"{', '.join(FEATURES)}")  # fmt: skip
    close, volume = data.close, data.volume
    log_returns = np.concatenate([[0.0], np.diff(np.log(close))])
    volume_change = np.concatenate([[0.0], np.diff(np.log(volume + 1.0))])
    width = {"returns": window, "volatility": 1, "ma_gap": 1, "volume_change": 1}
    out = np.zeros((len(close), sum(width[n] for n in names)), dtype=np.float32)
    for t in range(window, len(close)):
        recent = log_returns[t - window + 1 : t + 1]
        values = {"returns": recent, "volatility": [recent.std()],
                  "ma_gap": [close[t] / close[t - window + 1 : t + 1].mean() - 1.0],
                  "volume_change": [volume_change[t]]}  # fmt: skip
        out[t] = np.concatenate([values[n] for n in names])
    return out


class TradingEnv(SnapshotAttributes, gym.Env):
    """A market of one or several instruments from bar ``start`` to bar ``end`` (module
    docstring). ``data``: anything ``envs/market.py``'s ``load_market`` takes."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}
    state_attributes = ("t", "first", "last", "positions", "held", "equity", "entry_equity",
                        "peak", "sharpe_a", "sharpe_b", "curve", "book", "_np_random",
                        "_np_random_seed")  # fmt: skip

    def __init__(
        self,
        data: Any = None,
        window: int = 20,
        actions: str = "discrete",
        short: bool = True,
        position_limit: float | None = None,
        cost: float = 0.001,
        slippage: float = 0.0,
        fill: str = "open",
        reward: str = "log_return",
        sharpe_eta: float = 0.01,
        drawdown_penalty: float = 0.0,
        features: list[str] | tuple[str, ...] = FEATURES,
        scale: list[int] | tuple[int, int] | None = None,
        start: int | None = None,
        end: int | None = None,
        episode_bars: int | None = None,
        synthetic_bars: int = 1000,
        seed: int = 0,
    ) -> None:
        if actions not in ("discrete", "continuous"):
            raise ConfigError(f"trading: actions '{actions}'; expected discrete or continuous")
        if fill not in ("open", "close"):
            raise ConfigError(f"trading: fill '{fill}'; expected open or close")
        if reward not in ("log_return", "pnl", "sharpe"):
            raise ConfigError(f"trading: reward '{reward}'; expected log_return, pnl or sharpe")
        if cost < 0 or slippage < 0 or drawdown_penalty < 0:
            raise ConfigError(f"trading: cost {cost}, slippage {slippage} and drawdown_penalty "
                              f"{drawdown_penalty} must be >= 0")  # fmt: skip
        if window < 1:
            raise ConfigError(f"trading: window {window}; expected at least 1 bar")
        market = load_market({"synthetic": synthetic_bars} if data is None else data, seed)
        self.market = market
        self.data = market[0]  # the first instrument (the baselines' crossover reads it)
        k = len(market)
        self.window, self.short, self.fill = window, short, fill
        self.cost, self.slippage, self.reward_kind, self.eta = cost, slippage, reward, sharpe_eta
        self.drawdown_penalty = drawdown_penalty
        self.limit = 1.0 / k if position_limit is None else float(position_limit)
        if not 0 < self.limit <= 1:
            raise ConfigError(f"trading: position_limit {position_limit}; expected a share of "
                              "equity above 0 and at most 1")  # fmt: skip
        self.low = -self.limit if short else 0.0
        self.opens = np.stack([d.open for d in market], axis=1)  # (bars, instruments)
        self.closes = np.stack([d.close for d in market], axis=1)
        bars = len(self.closes)
        self.start = window if start is None else max(start, window)
        self.end = bars - 1 if end is None else min(end, bars - 1)
        if self.end - self.start < 1:
            raise ConfigError(
                f"trading: {bars} bars leave no step for a window of {window} between "
                f"bars {self.start} and {self.end}: give more bars or a smaller window"
            )
        if episode_bars is not None and not 1 <= episode_bars <= self.end - self.start:
            raise ConfigError(f"trading: episode_bars {episode_bars}; expected 1 to "
                              f"{self.end - self.start}, the steps from bar {self.start} to "
                              f"{self.end}")  # fmt: skip
        self.episode_bars = episode_bars
        self.features = np.concatenate([compute_features(d, window, tuple(features))
                                        for d in market], axis=1)  # fmt: skip
        if scale is not None:
            self.features = self._standardized(self.features, scale)
        self.action_space: spaces.Space
        if actions == "discrete":
            self.action_space = spaces.Discrete(3) if k == 1 else spaces.MultiDiscrete([3] * k)
        else:
            self.action_space = spaces.Box(-1.0, 1.0, (k,), np.float32)
        width = self.features.shape[1] + k + 3
        self.observation_space = spaces.Box(-np.inf, np.inf, (width,), np.float32)
        self.first, self.last = self.start, self.end  # this episode's
        self._begin(self.start)

    def _standardized(self, values: np.ndarray, scale: Any) -> np.ndarray:
        try:
            first, last = (int(b) for b in scale)
        except (TypeError, ValueError):
            first, last = -1, -1
        first = max(first, self.window)
        if not 0 <= first < last < len(values):
            raise ConfigError(f"trading: scale {scale}; expected [first, last] bars with "
                              f"{self.window} <= first < last < {len(values)}")  # fmt: skip
        fit = values[first : last + 1].astype(np.float64)
        spread = fit.std(axis=0)
        spread[spread < 1e-12] = 1.0
        return ((values - fit.mean(axis=0)) / spread).astype(np.float32)

    def _begin(self, first: int) -> None:
        k = self.closes.shape[1]
        self.first = first
        self.last = self.end if self.episode_bars is None else first + self.episode_bars
        self.t, self.positions, self.held = first, np.zeros(k), 0
        self.equity = self.entry_equity = self.peak = 1.0
        self.sharpe_a = self.sharpe_b = 0.0  # the differential Sharpe ratio's moving moments
        self.curve, self.book = [1.0], []  # the episode's equity and positions

    # --- the Gymnasium API ----------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple:
        super().reset(seed=seed)
        first = self.start
        if self.episode_bars is not None:
            first = int(self.np_random.integers(self.start, self.end - self.episode_bars + 1))
        self._begin(first)
        return self._observe(), self._info(False, 0.0)

    def step(self, action: Any) -> tuple:
        target = self._target(action)
        t, before = self.t, self.equity
        fill_at = self.opens[t + 1] if self.fill == "open" else self.closes[t + 1]
        equity = before * (1.0 + self.positions @ (fill_at / self.closes[t] - 1.0))  # old book
        traded = float(np.abs(target - self.positions).sum())
        equity *= 1.0 - (self.cost + self.slippage) * traded  # paid on the value traded
        equity *= 1.0 + target @ (self.closes[t + 1] / fill_at - 1.0)  # new book, to the close
        if traded > 0:
            self.entry_equity, self.held = equity, 0
        drawdown_before = 1.0 - before / self.peak
        self.peak = max(self.peak, equity)
        self.positions, self.equity, self.held, self.t = target, equity, self.held + 1, t + 1
        self.curve.append(equity)
        self.book.append(target)
        reward = self._reward(before, equity)
        deepening = max(0.0, (1.0 - equity / self.peak) - drawdown_before)
        reward -= self.drawdown_penalty * deepening
        terminated = self.equity <= 0.0
        truncated = self.t >= self.last and not terminated
        info = self._info(terminated or truncated, deepening)
        return self._observe(), reward, terminated, truncated, info

    # --- pieces ---------------------------------------------------------------------------------

    def _target(self, action: Any) -> np.ndarray:
        if isinstance(self.action_space, spaces.Box):
            a = np.asarray(action, dtype=np.float64).reshape(-1) * self.limit
            return np.clip(a, self.low, self.limit)
        a = np.asarray(action).reshape(-1)
        return np.where(a == SELL, self.low, np.where(a == BUY, self.limit, self.positions))

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
        state = [*self.positions, 1.0 - np.abs(self.positions).sum(),
                 self.equity / self.entry_equity - 1.0, self.held / self.window]  # fmt: skip
        return np.concatenate([self.features[self.t], state]).astype(np.float32)

    def _info(self, final: bool, deepening: float) -> dict[str, Any]:
        info = {"equity": self.equity, "position": float(self.positions.sum()), "bar": self.t,
                "drawdown": 1.0 - self.equity / self.peak,
                "drawdown_increase": deepening}  # fmt: skip
        if final and self.equity > 0:
            metrics = trading_metrics(np.array(self.curve), np.array(self.book))
            info.update({key: float(np.nan_to_num(metrics[key])) for key in EPISODE_METRICS})
        return info


def cap_position(obs: np.ndarray, action: Any, env: gym.Env, cap: float = 0.5) -> np.ndarray:
    """A shield for the market env's continuous actions (``mentor.envs.safety:Safe``): no
    instrument's target beyond ``cap``, a share of equity, long or short. Discrete actions jump
    to the position limit and cannot be capped: give the env a ``position_limit`` instead."""
    market = env.unwrapped
    if not isinstance(market, TradingEnv) or not isinstance(market.action_space, spaces.Box):
        raise ConfigError("cap_position shields the market env's continuous actions; for "
                          "discrete ones set the env's position_limit")  # fmt: skip
    bound = min(1.0, cap / market.limit)  # actions are shares of the limit
    return np.clip(np.asarray(action, dtype=np.float32), -bound, bound)
