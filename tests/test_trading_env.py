"""The market env (mentor/envs/trading.py): no look-ahead, fills and costs by hand, bad data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from mentor.envs.market import MarketData
from mentor.envs.trading import BUY, HOLD, SELL, TradingEnv
from mentor.errors import ConfigError


def bars(open_: list[float], close: list[float]) -> MarketData:
    n = len(close)
    dates = np.datetime64("2020-01-01") + np.arange(n).astype("timedelta64[D]")
    o, c = np.array(open_, float), np.array(close, float)
    return MarketData(dates, o, np.maximum(o, c), np.minimum(o, c), c, np.full(n, 1000.0))


def test_the_env_passes_gymnasiums_checker_with_either_kind_of_action() -> None:
    check_env(TradingEnv(synthetic_bars=200), skip_render_check=True)
    check_env(TradingEnv(synthetic_bars=200, actions="continuous"), skip_render_check=True)


def test_an_order_fills_at_the_next_open_and_pays_its_costs_as_computed_by_hand() -> None:
    """Buy on bar 1's close, fill at bar 2's open (105), 1% cost: 0.99 x 110/105. Hold: the bar's
    whole move, 121/110. Sell to short on bar 3: long to the open (120/121), 2% cost on a trade
    of 2, short from 120 to 110: x (1 + 10/120)."""
    env = TradingEnv(bars([100, 100, 105, 115, 120], [100, 100, 110, 121, 110]), window=1,
                     cost=0.01)  # fmt: skip
    env.reset(seed=0)
    expected = 0.99 * 110 / 105
    _, reward, _, truncated, info = env.step(BUY)
    assert info["equity"] == pytest.approx(expected) and reward == pytest.approx(math.log(expected))
    assert not truncated and info["position"] == 1.0
    expected *= 121 / 110
    _, _, _, _, info = env.step(HOLD)
    assert info["equity"] == pytest.approx(expected)
    expected *= (120 / 121) * 0.98 * (1 + 10 / 120)
    _, _, terminated, truncated, info = env.step(SELL)
    assert info["equity"] == pytest.approx(expected) and info["position"] == -1.0
    assert truncated and not terminated  # the last bar


def test_fills_at_the_close_and_long_only_positions() -> None:
    """fill=close: the old position earns the whole bar, the new one starts at its close; with
    short=false, sell means flat."""
    env = TradingEnv(bars([100, 100, 105, 115], [100, 100, 110, 121]), window=1, cost=0.0,
                     fill="close", short=False)  # fmt: skip
    env.reset(seed=0)
    _, _, _, _, info = env.step(BUY)  # filled at 110: nothing earned yet
    assert info["equity"] == pytest.approx(1.0)
    _, _, _, _, info = env.step(SELL)  # held 110 -> 121, then flat
    assert info["equity"] == pytest.approx(1.1) and info["position"] == 0.0


@pytest.mark.parametrize(("fill", "scale"), [("open", None), ("close", None), ("open", [10, 60])])
def test_no_observation_or_reward_depends_on_a_later_price(fill: str, scale: list | None) -> None:
    """Change every bar after bar k: the observations up to bar k and the rewards of the steps
    decided up to bar k - 1 (which see bar k) are the same; the first later reward differs.
    With a scaler fitted on bars 10-60 the same holds (fitted on all bars it would not)."""
    data = MarketData.synthetic(120, seed=3)
    k = 70
    columns = (data.dates, data.open, data.high, data.low, data.close, data.volume)
    future = MarketData(*(np.array(column, copy=True) for column in columns))
    shock = np.random.default_rng(0).uniform(0.5, 1.5, len(data) - k - 1)
    for prices in (future.open, future.high, future.low, future.close, future.volume):
        prices[k + 1 :] *= shock
    actions = np.random.default_rng(1).integers(0, 3, len(data))
    runs = []
    for market in (data, future):
        env = TradingEnv(market, window=10, fill=fill, reward="sharpe", scale=scale)
        obs, _ = env.reset(seed=0)
        seen, rewards = [(env.t, obs)], []
        for a in actions[: k - env.start + 2]:  # up to the step that sees bar k + 1
            obs, reward, terminated, truncated, _ = env.step(a)
            seen.append((env.t, obs))
            rewards.append(reward)
            if terminated or truncated:
                break
        runs.append((seen, rewards))
    (seen_a, rewards_a), (seen_b, rewards_b) = runs
    for (bar, a), (_, b) in zip(seen_a, seen_b, strict=True):
        if bar <= k:
            np.testing.assert_array_equal(a, b)
    first = seen_a[0][0]  # step i is decided on bar first + i and sees bar first + i + 1
    assert rewards_a[: k - first] == rewards_b[: k - first]
    assert rewards_a[k - first + 1] != rewards_b[k - first + 1]


def test_bad_data_is_refused_naming_the_row_and_column(tmp_path) -> None:
    header = "date,open,high,low,close,volume\n"
    cases = {
        "date,open,high,low,volume\n2020-01-01,1,1,1,1\n": "no column close",
        header + "2020-01-02,1,1,1,1,5\n2020-01-01,1,1,1,1,5\n": "row 3 has date",
        header + "2020-01-01,1,1,1,1,5\n2020-01-02,1,1,1,nan,5\n": "row 3 has close 'nan'",
    }
    for index, (text, message) in enumerate(cases.items()):
        path = tmp_path / f"bars{index}.csv"
        path.write_text(text)
        with pytest.raises(ConfigError, match=message):
            MarketData.from_csv(path)
    good = tmp_path / "good.csv"
    good.write_text("Day,O,H,L,C,V\n2020-01-01,1,2,1,2,5\n2020-01-02,2,3,2,3,5\n")
    data = MarketData.from_csv(good, {"date": "Day", "open": "O", "high": "H", "low": "L",
                                      "close": "C", "volume": "V"})  # fmt: skip
    assert list(data.close) == [2.0, 3.0]
    with pytest.raises(ConfigError, match="no step for a window of 20"):
        TradingEnv(data, window=20)


def test_two_instruments_share_the_book_within_their_limits_as_computed_by_hand() -> None:
    """Two instruments, each limited to half the equity. Buy both on bar 1's close: A fills at
    100 and closes at 110, B fills at 50 and closes at 45; 1% cost on the 1.0 traded. Then sell
    A to short (-0.5) and hold B: A from 110 to its open 121 long, 1% on the 1.0 traded, short
    from 121 to 110; B long from 45 to 54."""
    a = bars([100, 100, 100, 121], [100, 100, 110, 110])
    b = bars([50, 50, 50, 45], [50, 50, 45, 54])
    env = TradingEnv([a, b], window=1, cost=0.01)
    assert env.action_space.nvec.tolist() == [3, 3] and env.limit == 0.5
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([BUY, BUY]))
    expected = 0.99 * (1 + 0.5 * 0.1 + 0.5 * -0.1)
    assert info["equity"] == pytest.approx(expected) and info["position"] == 1.0
    _, _, _, _, info = env.step(np.array([SELL, HOLD]))
    to_fill = 1 + 0.5 * (121 / 110 - 1) + 0.5 * 0  # B opens at 45: no move before the fill
    after = 1 - 0.5 * (110 / 121 - 1) + 0.5 * (54 / 45 - 1)
    assert info["equity"] == pytest.approx(expected * to_fill * 0.99 * after)
    assert env.positions.tolist() == [-0.5, 0.5] and info["position"] == 0.0
    continuous = TradingEnv([a, b], window=1, actions="continuous", position_limit=0.3)
    continuous.reset(seed=0)
    continuous.step(np.array([1.0, -2.0], dtype=np.float32))  # shares of the limit, clipped
    assert continuous.positions.tolist() == pytest.approx([0.3, -0.3])


def test_the_drawdown_penalty_charges_each_deepening_of_the_drawdown() -> None:
    """Long from 100: up to 110 (a new peak, no penalty), down to 99 (drawdown 10%: penalty
    2 x 0.1), up to 104.5 (drawdown 5%, shallower: no penalty)."""
    env = TradingEnv(bars([100, 100, 100, 110, 99], [100, 100, 110, 99, 104.5]), window=1,
                     cost=0.0, drawdown_penalty=2.0)  # fmt: skip
    env.reset(seed=0)
    steps = [env.step(BUY) for _ in range(3)]
    rewards = [step[1] for step in steps]
    assert [step[4]["drawdown_increase"] for step in steps] == pytest.approx([0.0, 0.1, 0.0])
    assert rewards[0] == pytest.approx(math.log(1.1))
    assert rewards[1] == pytest.approx(math.log(0.9) - 2.0 * 0.1)
    assert rewards[2] == pytest.approx(math.log(104.5 / 99))


def test_an_episodes_last_info_holds_its_trading_metrics() -> None:
    from mentor.envs.finance import trading_metrics
    from mentor.evaluation.backtest import backtest, random_policy

    env = TradingEnv(MarketData.synthetic(150, seed=5), window=10)
    equity, positions = backtest(env, random_policy(3))
    final = env._info(True, 0.0)
    expected = trading_metrics(equity, positions)
    for key in ("total_return", "sharpe", "max_drawdown", "turnover", "trades", "exposure"):
        assert final[key] == pytest.approx(expected[key])
    env.reset(seed=0)
    assert "sharpe" not in env.step(HOLD)[4]  # only the last step's info has them


def test_episodes_of_a_set_length_start_where_the_seed_draws() -> None:
    env = TradingEnv(MarketData.synthetic(300, seed=0), window=10, episode_bars=50)
    starts = set()
    for seed in range(5):
        env.reset(seed=seed)
        starts.add(env.t)
        steps = 0
        while True:
            steps += 1
            if any(env.step(HOLD)[2:4]):
                break
        assert steps == 50 and 10 <= env.first <= 299 - 50
    assert len(starts) > 1
    with pytest.raises(ConfigError, match="episode_bars 400; expected 1 to 289"):
        TradingEnv(MarketData.synthetic(300, seed=0), window=10, episode_bars=400)


def test_the_scaler_uses_its_bars_only_and_features_can_be_chosen() -> None:
    data = MarketData.synthetic(200, seed=2)
    env = TradingEnv(data, window=10, scale=[10, 99], features=["returns", "ma_gap"])
    assert env.observation_space.shape == (10 + 1 + 1 + 3,)
    fitted = env.features[10:100]
    np.testing.assert_allclose(fitted.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(fitted.std(axis=0), 1.0, atol=1e-4)
    with pytest.raises(ConfigError, match="choose one or more of returns, volatility"):
        TradingEnv(data, window=10, features=["rsi"])
    with pytest.raises(ConfigError, match="scale \\[150, 120\\]"):
        TradingEnv(data, window=10, scale=[150, 120])
