"""Backtests of a trading policy (issue 18): walk-forward folds, one run through the market env,
and the baselines every agent is shown beside.

**Folds.** The bars after the features' first ``window`` are cut into ``folds`` consecutive
blocks of equal length, and each block into train, validation and test periods in time order
(``shares``, 0.6 / 0.2 / 0.2 by default): no two folds share a bar, and within a fold the
validation period follows the training one and the test period follows both, so a model chosen
on validation meets its test bars once, after everything it learned from.

**A backtest** plays a policy through ``TradingEnv`` from a period's first bar to its last and
returns the equity curve (one value per bar, starting at 1) and the position held over each
step: the numbers ``envs/finance.py`` turns into Sharpe, drawdowns and the rest.

**Baselines**, on the same periods and through the same fills and costs: ``buy_and_hold`` (long
from the first bar), ``random`` (a uniformly random action each bar, seeded), and
``ma_crossover`` (long while the ``fast``-bar mean of the closes up to now is above the
``slow``-bar mean, else the lowest position the env allows).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from mentor.envs.trading import BUY, SELL, TradingEnv
from mentor.errors import ConfigError

Policy = Callable[[np.ndarray, TradingEnv], object]  # (observation, env) -> an action


@dataclass(frozen=True)
class Fold:
    index: int
    train: tuple[int, int]  # first and last bar, inclusive
    validation: tuple[int, int]
    test: tuple[int, int]


def walk_forward(
    bars: int, window: int, folds: int, shares: tuple[float, float, float] = (0.6, 0.2, 0.2)
) -> list[Fold]:
    """The folds of a series of ``bars`` bars (module docstring). ``ConfigError`` when a period
    would have fewer than 2 bars (one step), naming what would fit."""
    if folds < 1 or len(shares) != 3 or min(shares) <= 0:
        raise ConfigError(f"walk-forward: {folds} folds with shares {shares}; expected at least "
                          "1 fold and three shares above 0 (train, validation, test)")  # fmt: skip
    usable = bars - window
    block = usable // folds
    total = sum(shares)
    sizes = [int(block * share / total) for share in shares[:2]]
    sizes.append(block - sum(sizes))
    if min(sizes) < 2:
        need = window + folds * int(np.ceil(2 * total / min(shares)))
        raise ConfigError(
            f"walk-forward: {bars} bars, a window of {window} and {folds} folds leave periods of "
            f"{sizes} bars; each needs at least 2: give about {need} bars or fewer folds"
        )
    out = []
    for k in range(folds):
        start = window + k * block
        train = (start, start + sizes[0] - 1)
        validation = (train[1] + 1, train[1] + sizes[1])
        test = (validation[1] + 1, start + block - 1)
        out.append(Fold(k, train, validation, test))
    return out


def backtest(env: TradingEnv, policy: Policy) -> tuple[np.ndarray, np.ndarray]:
    """The equity curve (its start, 1, then one value per step) and the positions held over
    each step (one column per instrument when there are several), ``policy`` acting from the
    env's first bar to its last."""
    obs, info = env.reset(seed=0)
    equity, positions = [info["equity"]], []
    while True:
        obs, _, terminated, truncated, info = env.step(policy(obs, env))
        equity.append(info["equity"])
        positions.append(env.positions.copy())
        if terminated or truncated:
            held = np.array(positions)
            return np.array(equity), held[:, 0] if held.shape[1] == 1 else held


def _target(env: TradingEnv, long: np.ndarray) -> object:
    """The action that makes each instrument's position long (True) or the lowest allowed, in
    either action space."""
    long = np.asarray(long, dtype=bool).reshape(-1)
    if isinstance(env.action_space, spaces.Box):
        return np.where(long, 1.0, env.low / env.limit).astype(np.float32)
    actions = np.where(long, BUY, SELL)
    return int(actions[0]) if isinstance(env.action_space, spaces.Discrete) else actions


def buy_and_hold(obs: np.ndarray, env: TradingEnv) -> object:
    return _target(env, np.ones(len(env.market), dtype=bool))


def random_policy(seed: int) -> Policy:
    rng = np.random.default_rng(seed)

    def act(obs: np.ndarray, env: TradingEnv) -> object:
        k = len(env.market)
        if isinstance(env.action_space, spaces.Box):
            return rng.uniform(env.low / env.limit, 1.0, (k,)).astype(np.float32)
        actions = rng.integers(3, size=k)  # sell, hold or buy, per instrument
        return int(actions[0]) if isinstance(env.action_space, spaces.Discrete) else actions

    return act


def ma_crossover(fast: int = 10, slow: int = 30) -> Policy:
    def act(obs: np.ndarray, env: TradingEnv) -> object:
        closes = env.closes[: env.t + 1]  # up to the decision bar: nothing later
        if len(closes) < slow:
            return _target(env, np.zeros(closes.shape[1], dtype=bool))
        return _target(env, closes[-fast:].mean(axis=0) > closes[-slow:].mean(axis=0))

    return act


BASELINES: dict[str, Callable[[int], Policy]] = {
    "buy_and_hold": lambda seed: buy_and_hold,
    "random": random_policy,
    "ma_crossover": lambda seed: ma_crossover(),
}
