"""Walk-forward training and testing of a trading agent: `mentor backtest` (issue 18, items 5-8).

The experiment's env is the market env (``mentor.envs.trading:TradingEnv``) and its
``backtest`` section says how to cut the series. For each fold (``evaluation/backtest.py``'s
``walk_forward``: consecutive blocks, each train / validation / test in time order, no bar in two
folds) and each seed, one run:

1. trains on the fold's training bars (``env.kwargs.start/end``), its features scaled with the
   training bars' statistics only (``scale``);
2. validates on the fold's validation bars (``validation.env``: the whole period, one
   deterministic episode), which picks the run's best checkpoint;
3. loads that checkpoint and plays the test bars once, deterministically: the only time any
   run meets them.

The baselines (buy-and-hold, random, moving-average crossover) play the same test bars through
the same fills and costs. Every test's metrics (``envs/finance.py``) are kept per fold and seed
and aggregated over them: the mean with a bootstrap interval (``evaluation/statistics.py``,
plain bootstrap over the runs) and the median. The folder gets ``walk_forward.json`` (periods
with their dates, each test's metrics, equity curve and positions), ``walk_forward.csv`` (a row
per method, fold and seed), ``summary.md`` (the tables) and the plots (``report/trading.py``).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mentor import api
from mentor.envs.finance import trading_metrics
from mentor.envs.resolve import env_class, is_entry_point
from mentor.envs.trading import TradingEnv
from mentor.errors import ConfigError
from mentor.evaluation.backtest import BASELINES, Fold, backtest, walk_forward
from mentor.evaluation.statistics import bootstrap_ci
from mentor.experiment import Experiment, parse
from mentor.experiment.schema import BacktestConfig
from mentor.report.trading import plot_walk_forward

# The metrics in the printed table, with how each is shown.
SHOWN = {
    "total_return": "{:+.1%}",
    "sharpe": "{:+.2f}",
    "max_drawdown": "{:.1%}",
    "calmar": "{:+.2f}",
    "turnover": "{:.3f}",
    "trades": "{:.0f}",
    "exposure": "{:.0%}",
}


@dataclass
class Test:
    """One play of the test period: the agent of one fold and seed, or a baseline."""

    method: str
    fold: int
    seed: int
    metrics: dict[str, float]
    equity: list[float]
    positions: list[Any]
    run: str = ""


@dataclass
class WalkForward:
    folder: Path
    folds: list[Fold]
    dates: list[dict[str, list[str]]]
    tests: list[Test] = field(default_factory=list)

    def summary(self, confidence: float = 0.95) -> dict[str, dict[str, dict[str, float]]]:
        """method -> metric -> {mean, low, high, median} over its folds and seeds."""
        out: dict[str, dict[str, dict[str, float]]] = {}
        for method in dict.fromkeys(t.method for t in self.tests):
            mine = [t for t in self.tests if t.method == method]
            out[method] = {}
            for key in mine[0].metrics:
                values = np.array([t.metrics[key] for t in mine], dtype=np.float64)
                values = values[np.isfinite(values)]
                if not len(values):
                    out[method][key] = dict.fromkeys(("mean", "low", "high", "median"), math.nan)
                    continue
                low, high = bootstrap_ci([values], np.mean, confidence) if len(values) > 1 else (
                    float(values[0]), float(values[0]))  # fmt: skip
                out[method][key] = {"mean": float(values.mean()), "low": low, "high": high,
                                    "median": float(np.median(values))}  # fmt: skip
        return out


def check_market(experiment: Experiment) -> TradingEnv:
    """The experiment's market env, made once to check it and read its bars."""
    env_id = experiment.env.id
    if not (is_entry_point(env_id) and issubclass(env_class(env_id), TradingEnv)):
        raise ConfigError(f"backtest: env.id '{env_id}' is not the market env; walk-forward "
                          "backtests train on mentor.envs.trading:TradingEnv")  # fmt: skip
    kwargs = {k: v for k, v in experiment.env.kwargs.items() if k not in ("start", "end")}
    return TradingEnv(**kwargs)


def run_walk_forward(
    experiment: Experiment,
    overwrite: bool = False,
    say: Callable[[str], None] = print,
) -> WalkForward:
    """Train, validate and test each fold and seed, then the baselines (module docstring)."""
    cfg = experiment.backtest or BacktestConfig()
    market = check_market(experiment)
    bars = len(market.closes)
    folds = walk_forward(bars, market.window, cfg.folds, tuple(cfg.shares))
    if market.episode_bars is not None:
        shortest = min(f.train[1] - f.train[0] for f in folds)
        if market.episode_bars > shortest:
            raise ConfigError(f"backtest: episode_bars {market.episode_bars} is longer than a "
                              f"fold's training period ({shortest} steps): give at most "
                              f"{shortest}, or fewer folds")  # fmt: skip
    folder = Path(experiment.output_dir) / experiment.run_name
    if folder.exists() and any(folder.iterdir()) and not overwrite:
        raise ConfigError(f"backtest: {folder} exists; give --overwrite to replace it or "
                          "another --name")  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    dates = market.data.dates.astype("datetime64[D]").astype(str)
    periods = [{name: [dates[a], dates[b]] for name, (a, b) in
                (("train", f.train), ("validation", f.validation), ("test", f.test))}
               for f in folds]  # fmt: skip
    result = WalkForward(folder, folds, periods)
    base = experiment.model_dump(mode="json")
    kwargs = dict(experiment.env.kwargs)
    for fold in folds:
        say(f"fold {fold.index}: train {periods[fold.index]['train']}, validation "
            f"{periods[fold.index]['validation']}, test {periods[fold.index]['test']}")  # fmt: skip
        tested = {**kwargs, "start": fold.test[0], "end": fold.test[1],
                  "scale": list(fold.train), "episode_bars": None}  # fmt: skip
        for seed in cfg.seeds:
            run = _fold_experiment(base, kwargs, fold, seed, folder)
            trained = api.train(parse(run, f"fold {fold.index}, seed {seed}"), overwrite)
            agent = api.load(trained.run_dir)  # the checkpoint best on validation
            metrics, equity, held = _play(TradingEnv(**tested), _acting(agent), cfg)
            result.tests.append(
                Test("agent", fold.index, seed, metrics, equity, held, str(trained.run_dir))
            )
            say(
                f"  seed {seed}: test Sharpe {metrics['sharpe']:+.2f}, return "
                f"{metrics['total_return']:+.1%}, max drawdown {metrics['max_drawdown']:.1%}"
            )
        for name in cfg.baselines:
            for seed in cfg.seeds if name == "random" else cfg.seeds[:1]:
                test = _play(TradingEnv(**tested), BASELINES[name](seed), cfg)
                result.tests.append(Test(name, fold.index, seed, *test))
    write(result, cfg)
    return result


def _fold_experiment(
    base: dict[str, Any], kwargs: dict[str, Any], fold: Fold, seed: int, folder: Path
) -> dict[str, Any]:
    """The run of one fold and seed: train on its training bars, validate on its validation
    bars (one deterministic episode over all of them), the scaler fitted on the training bars."""
    scale = list(fold.train)
    train = {**kwargs, "start": fold.train[0], "end": fold.train[1], "scale": scale}
    validate = {**kwargs, "start": fold.validation[0], "end": fold.validation[1],
                "scale": scale, "episode_bars": None}  # fmt: skip
    return {
        **base,
        "seed": seed,
        "name": f"fold{fold.index}-seed{seed}",
        "output_dir": str(folder),
        "backtest": None,
        "env": {**base["env"], "kwargs": train},
        "validation": {
            **base["validation"],
            "episodes": 1,
            "num_envs": 1,
            "deterministic": True,
            "env": {"id": None, "kwargs": validate},
        },
    }


def _acting(agent: Any) -> Callable[[np.ndarray, TradingEnv], Any]:
    return lambda obs, env: agent.act(obs)


def _play(env: TradingEnv, policy: Any, cfg: BacktestConfig) -> tuple:
    equity, positions = backtest(env, policy)
    metrics = trading_metrics(equity, positions, cfg.periods_per_year)
    return metrics, equity.tolist(), positions.tolist()


def table(result: WalkForward, confidence: float = 0.95) -> str:
    """The test periods' metrics: mean [bootstrap interval] over folds and seeds, per method."""
    summary = result.summary(confidence)
    header = ["method", "runs", *SHOWN]
    rows = []
    for method, metrics in summary.items():
        runs = sum(t.method == method for t in result.tests)
        cells = []
        for key, form in SHOWN.items():
            m = metrics[key]
            cells.append("n/a" if math.isnan(m["mean"]) else
                         f"{form.format(m['mean'])} [{form.format(m['low'])}, "
                         f"{form.format(m['high'])}]")  # fmt: skip
        rows.append([method, str(runs), *cells])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]  # fmt: skip
    lines += ["| " + " | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) + " |"
              for r in rows]  # fmt: skip
    return "\n".join(lines)


def per_fold(result: WalkForward) -> str:
    """Each fold's test Sharpe and maximum drawdown per method (the median over seeds)."""
    methods = list(dict.fromkeys(t.method for t in result.tests))
    lines = ["| fold | test period | " + " | ".join(f"{m} Sharpe / max DD" for m in methods) + " |",
             "|---|---|" + "---|" * len(methods)]  # fmt: skip
    for fold in result.folds:
        cells = []
        for m in methods:
            mine = [t.metrics for t in result.tests if t.method == m and t.fold == fold.index]
            sharpe = float(np.nanmedian([x["sharpe"] for x in mine]))
            drawdown = float(np.median([x["max_drawdown"] for x in mine]))
            cells.append(f"{sharpe:+.2f} / {drawdown:.1%}")
        period = " to ".join(result.dates[fold.index]["test"])
        lines.append(f"| {fold.index} | {period} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write(result: WalkForward, cfg: BacktestConfig) -> None:
    folder = result.folder
    payload = {
        "folds": [
            {
                "index": f.index,
                "bars": {"train": f.train, "validation": f.validation, "test": f.test},
                "dates": result.dates[f.index],
            }
            for f in result.folds
        ],
        "tests": [t.__dict__ for t in result.tests],
        "summary": result.summary(cfg.confidence),
    }
    (folder / "walk_forward.json").write_text(json.dumps(payload, indent=1, default=_plain))
    keys = list(result.tests[0].metrics)
    with open(folder / "walk_forward.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method", "fold", "seed", *keys])
        for t in result.tests:
            writer.writerow([t.method, t.fold, t.seed, *(t.metrics[k] for k in keys)])
    images = plot_walk_forward(result, folder)
    text = ["# Walk-forward backtest", "",
            f"Test periods, mean [{cfg.confidence:.0%} bootstrap interval] over folds and seeds:",
            "", table(result, cfg.confidence), "", "Per fold (median over seeds):", "",
            per_fold(result), "", *(f"![{p.stem}]({p.name})" for p in images), ""]  # fmt: skip
    (folder / "summary.md").write_text("\n".join(text))


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON")
