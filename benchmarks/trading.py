"""The trading example walk-forward (issue 18): PPO on Alphabet's daily bars (2009-2018, the
gym-anytrading package's series), 3 folds x 5 seeds, each trained on its fold's training bars,
its checkpoint picked on the validation bars, and tested once on the test bars, beside
buy-and-hold, random play (a seed each) and a 10/30-bar moving-average crossover.

No target on profit: the table is what it is, and the env's look-ahead test guards it.

    python benchmarks/trading.py                                   # examples/trading.yaml
    python benchmarks/trading.py --set env.kwargs.reward=sharpe    # any field of the experiment
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from mentor.experiment import build
from mentor.walkforward import per_fold, run_walk_forward, table

EXAMPLE = Path(__file__).parents[1] / "examples" / "trading.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="mentor-trading-")
    overrides = [f"backtest.seeds={args.seeds}", f"output_dir={folder}", *args.overrides]
    experiment = build(file=str(EXAMPLE), overrides=overrides)
    result = run_walk_forward(experiment, say=lambda text: None)
    cfg = experiment.backtest
    steps = experiment.stopping.total_steps
    print(f"{experiment.env.kwargs['data']}, {cfg.folds} folds x {len(args.seeds)} seeds, "
          f"{steps:,} env steps per run; runs under {folder}\n")  # fmt: skip
    print(f"Test periods, mean [{cfg.confidence:.0%} bootstrap interval] over folds and seeds:\n")
    print(table(result, cfg.confidence))
    print("\nPer fold (median over seeds):\n")
    print(per_fold(result))


if __name__ == "__main__":
    main()
