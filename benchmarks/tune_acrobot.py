"""Tuning that pays: `mentor tune` on PPO/Acrobot-v1 for a fixed time, then the winner against the
shipped preset (RL Zoo's values) on fresh seeds, and the cost of tuning itself.

1. ``mentor tune examples/tune-acrobot.yaml`` for ``--minutes`` (15 by default) of search, then its
   re-check of the top trials on fresh seeds (its own best.yaml).
2. The preset and best.yaml each train on 5 seeds no trial saw, validating every 5,000 env steps
   (10 episodes) until the validation mean reaches Acrobot's threshold (-100) or 300,000 steps:
   the env steps to the threshold, median and a 95% bootstrap CI of the median, per config.
3. The tuning overhead: per complete trial, the seconds beyond its runs' training (setup,
   validation envs, storage, the reports), as a share of the trial's wall time.

    python benchmarks/tune_acrobot.py                 # 15 minutes of search
    python benchmarks/tune_acrobot.py --minutes 3 --seeds 2
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import run_worker, table

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "tune-acrobot.yaml"
THRESHOLD = -100.0
BUDGET = 300_000
FRESH = 2000  # the first of the comparison's seeds (the study used 0-2, its re-check 1000-1004)


def steps_worker(file: str | None, seed: int) -> dict:
    """Train the preset (file None) or a tuned experiment until the threshold."""
    from mentor import api
    from mentor.experiment import build

    out = tempfile.mkdtemp(prefix="mentor-bench-")
    overrides = [
        f"seed={seed}", f"output_dir={out}", f"stopping.total_steps={BUDGET}",
        f"stopping.target_return={THRESHOLD}", "validation.every_steps=5000",
        "validation.episodes=10", "validation.num_envs=10", "evaluation.episodes=0",
        "logging.progress=false", "logging.tensorboard=false", "checkpoints.keep_best=false",
    ]  # fmt: skip
    if file is None:
        experiment = build(method="ppo", env_id="Acrobot-v1", overrides=overrides)
    else:
        experiment = build(file=file, overrides=overrides)
    result = api.train(experiment)
    solved = result.stop_reason.startswith("target")
    return {"solved": solved, "steps": result.total_steps if solved else None,
            "seconds": result.train_seconds}  # fmt: skip


def median_ci(values: list[float]) -> tuple[float, float, float]:

    from mentor.evaluation.statistics import bootstrap_ci

    median = statistics.median(values)
    if len(values) < 2:
        return median, median, median
    low, high = bootstrap_ci(
        [values], statistic=lambda x, axis=-1: __import__("numpy").median(x, axis=axis)
    )
    return median, low, high


def overhead(folder: Path) -> dict[str, float]:
    """Where the search's time went, from trials.csv: the study's wall time from its first
    trial's start to its last trial's end, the runs' whole time (api.train: setup, training,
    validation, final evaluation) and their training alone. What is left beyond the runs is the
    tuning's own cost: sampling, storage, scoring, trial bookkeeping."""
    from datetime import datetime

    starts, ends, runs, train, validation = [], [], 0.0, 0.0, 0.0
    with open(folder / "trials.csv") as f:
        for row in csv.DictReader(f):
            if row["start"]:
                starts.append(datetime.fromisoformat(row["start"]))
            if row["end"]:
                ends.append(datetime.fromisoformat(row["end"]))
            runs += float(row["run_seconds"] or 0.0)
            train += float(row["train_seconds"] or 0.0)
            validation += float(row.get("validation_seconds") or 0.0)
    wall = (max(ends) - min(starts)).total_seconds()
    return {"wall": wall, "runs": runs, "train": train, "validation": validation,
            "tuning": (wall - runs) / wall}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--folder", type=Path, default=None)
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--file")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(steps_worker(args.file, args.seed)))
        return

    folder = args.folder or Path(tempfile.mkdtemp(prefix="mentor-tune-")) / "acrobot"
    tic = time.perf_counter()
    command = [
        sys.executable, "-m", "mentor.cli", "tune", str(EXAMPLE), "--folder", str(folder),
        "--name", "acrobot", "--timeout", f"{args.minutes * 60:.0f}", "--trials", "1000",
    ]  # fmt: skip
    subprocess.run(command, check=True)
    tuning = time.perf_counter() - tic
    best = folder / "best.yaml"
    print(f"\ntuning and re-check: {tuning / 60:.1f} min; best: {best}", flush=True)

    rows, medians = [], {}
    for label, file in (("preset (RL Zoo)", None), ("mentor tune's best", str(best))):
        results = []
        for seed in range(FRESH, FRESH + args.seeds):
            flags = ["--worker", "--seed", str(seed), *([] if file is None else ["--file", file])]
            r = run_worker(__file__, flags)
            print(f"  {label} seed {seed}: {r}", flush=True)
            results.append(r)
        steps = [r["steps"] if r["solved"] else BUDGET for r in results]
        median, low, high = median_ci([float(s) for s in steps])
        medians[label] = median
        solved = sum(r["solved"] for r in results)
        ci = f"[{low:,.0f}, {high:,.0f}]"
        per_seed = ", ".join(f"{s:,}" for s in steps)
        rows.append([label, f"{median:,.0f}", ci, f"{solved}/{len(results)}", per_seed])
    print(f"\nenv steps to a validation mean >= {THRESHOLD:g} on Acrobot-v1 (10 episodes every "
          f"5,000 steps; unsolved counted as the {BUDGET:,}-step budget), seeds {FRESH}-"
          f"{FRESH + args.seeds - 1}")  # fmt: skip
    print(table(rows, ["config", "median steps", "95% CI", "solved", "per seed"]))
    spent = overhead(folder)
    wall = spent["wall"]
    rest = spent["runs"] - spent["train"] - spent["validation"]
    print(f"\nthe search's {wall:.0f} s: training {spent['train'] / wall:.1%}, validating "
          f"{spent['validation'] / wall:.1%} (the trials' scores), the runs' setup, checkpoints "
          f"and final evaluations {rest / wall:.1%}, beyond the runs (sampling, storage, "
          f"scoring): {spent['tuning']:.1%}")  # fmt: skip
    recheck = json.loads((folder / "best.json").read_text())
    print(f"best trial {recheck['trial']}: {recheck['values']}")


if __name__ == "__main__":
    main()
