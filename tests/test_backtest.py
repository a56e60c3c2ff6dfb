"""Walk-forward folds and baselines (mentor/evaluation/backtest.py)."""

from __future__ import annotations

import numpy as np
import pytest

from mentor.envs.market import MarketData
from mentor.envs.trading import TradingEnv
from mentor.errors import ConfigError
from mentor.evaluation.backtest import (
    BASELINES,
    backtest,
    buy_and_hold,
    ma_crossover,
    walk_forward,
)


def test_walk_forward_folds_are_in_time_order_and_never_share_a_bar() -> None:
    folds = walk_forward(1020, window=20, folds=4)
    bars = []
    for fold in folds:
        periods = (fold.train, fold.validation, fold.test)
        for first, last in periods:
            assert last - first + 1 >= 2
            bars += list(range(first, last + 1))
        # train < validation < test, each starting where the one before ended
        assert fold.train[1] + 1 == fold.validation[0] and fold.validation[1] + 1 == fold.test[0]
    assert len(bars) == len(set(bars))  # no bar in two periods or two folds
    assert min(bars) == 20 and max(bars) <= 1019
    assert [f.train[0] for f in folds] == sorted(f.train[0] for f in folds)
    assert folds[0].train == (20, 169) and folds[0].validation == (170, 219)  # 250-bar blocks


def test_too_few_bars_for_the_folds_are_refused_naming_what_would_fit() -> None:
    with pytest.raises(ConfigError, match="each needs at least 2: give about"):
        walk_forward(40, window=20, folds=5)


def test_buy_and_hold_earns_the_price_move_less_one_cost() -> None:
    data = MarketData.synthetic(300, seed=1)
    env = TradingEnv(data, window=20, cost=0.001)
    equity, positions = backtest(env, buy_and_hold)
    assert len(equity) == len(positions) + 1 == env.end - env.start + 1
    assert equity[-1] == pytest.approx(0.999 * data.close[-1] / data.open[env.start + 1])
    assert set(positions) == {1.0}


def test_the_crossover_decides_from_past_closes_only() -> None:
    data = MarketData.synthetic(200, seed=2)
    env = TradingEnv(data, window=20, cost=0.0)
    _, positions = backtest(env, ma_crossover(5, 15))
    for step, position in enumerate(positions):
        closes = data.close[: env.start + step + 1]
        assert position == (1.0 if closes[-5:].mean() > closes[-15:].mean() else -1.0)


def test_every_baseline_runs_and_the_random_one_replays_with_its_seed() -> None:
    data = MarketData.synthetic(150, seed=4)
    for name, make in BASELINES.items():
        first = backtest(TradingEnv(data, window=10), make(7))
        again = backtest(TradingEnv(data, window=10), make(7))
        np.testing.assert_array_equal(first[0], again[0], err_msg=name)
    other = backtest(TradingEnv(data, window=10), BASELINES["random"](8))
    assert not np.array_equal(other[1], backtest(TradingEnv(data, window=10),
                                                 BASELINES["random"](7))[1])  # fmt: skip
