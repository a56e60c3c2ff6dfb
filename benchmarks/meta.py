"""Meta-learning (issue 20): RL² on the Bernoulli bandits of Duan et al. (2016), k = 5 arms,
n = 100 and n = 10 pulls a trial, with the preset (recurrent PPO, a GRU of 128), against the
references computed here on the same trials: random arms, Thompson sampling (Beta(1, 1) priors)
and UCB1; and the paper's published numbers (RL² 78.7 / 6.7, Gittins 78.3 / 6.6, Thompson
sampling 74.7 / 5.7, greedy 74.8 / 6.6, UCB1 with its constant tuned 78.0 / 6.7, random 49.9 / 5.0).

Each seed trains for ``--steps`` env steps (or ``--minutes``), then plays 1,000 new trials with
sampled actions: the mean return per trial.

Targets: with n = 10, RL² >= 6.5 (the issue's). With n = 100 the issue asked >= 77; proposed
instead, since no setting reached 77 at a budget this machine can give five seeds (RESULTS.md
says why): the median within 3 of Thompson sampling on the same trials, every seed above UCB1.
The script prints both verdicts under the table.

    python benchmarks/meta.py --pulls 100 --seeds 3 --steps 3000000
    python benchmarks/meta.py --pulls 10 --seeds 3 --steps 1000000
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import report, run_worker, table

PAPER = {  # Duan et al. 2016, table 1, k = 5 (its UCB1's constant was tuned; ours is sqrt(2))
    100: {"RL² (paper)": 78.7, "Gittins (paper)": 78.3, "UCB1, tuned (paper)": 78.0,
          "Thompson sampling (paper)": 74.7, "greedy (paper)": 74.8, "random (paper)": 49.9},
    10: {"RL² (paper)": 6.7, "Gittins (paper)": 6.6, "UCB1, tuned (paper)": 6.7,
         "Thompson sampling (paper)": 5.7, "greedy (paper)": 6.6, "random (paper)": 5.0},
}  # fmt: skip


def verdicts(pulls: int, scores: list[float], refs: dict[str, float]) -> list[str]:
    """The targets against the scores: the issue's (n = 100: 77; n = 10: 6.5) and, for 100
    pulls, the one proposed (the median within 3 of Thompson sampling, every seed above UCB1).
    Other pull counts have no target: no lines."""
    if pulls not in (10, 100):
        return []
    median = statistics.median(scores)
    issue = 77.0 if pulls == 100 else 6.5
    lines = [f"issue's target, median >= {issue:g}: {'met' if median >= issue else 'NOT met'} "
             f"({median:.1f})"]  # fmt: skip
    if pulls == 100:
        floor, ucb = refs["Thompson sampling"] - 3.0, refs["UCB1"]
        met = median >= floor and min(scores) > ucb
        lines.append(f"proposed target, median >= Thompson - 3 = {floor:.1f} and every seed > "
                     f"UCB1 {ucb:.1f}: {'met' if met else 'NOT met'} (median {median:.1f}, "
                     f"worst seed {min(scores):.1f})")  # fmt: skip
    return lines


def rl2_worker(seed: int, pulls: int, steps: int, minutes: float | None, sets: list[str]) -> dict:
    from mentor import api
    from mentor.experiment import build

    out = tempfile.mkdtemp(prefix="mentor-bench-")
    experiment = build(method="ppo", env_id="mentor/Bandit-v0", overrides=[
        f"seed={seed}", f"output_dir={out}", f"env.kwargs.pulls={pulls}",
        f"method.num_steps={pulls}", f"stopping.total_steps={steps}",
        *([f"stopping.max_seconds={minutes * 60}"] if minutes else []),
        "logging.progress=false", "logging.tensorboard=false", *sets,
    ])  # fmt: skip
    result = api.train(experiment)
    evaluation = json.loads((result.run_dir / "evaluation.json").read_text())
    return {"return": evaluation["return_mean"], "seconds": result.train_seconds,
            "steps": result.total_steps}  # fmt: skip


def references(pulls: int, trials: int = 1000, seed: int = 12345) -> dict[str, float]:
    """Random, Thompson sampling and UCB1 on ``trials`` bandits of 5 arms, means ~ U(0, 1)."""
    rng = np.random.default_rng(seed)
    totals = {"random": 0.0, "Thompson sampling": 0.0, "UCB1": 0.0}
    for _ in range(trials):
        means = rng.uniform(0, 1, 5)
        for name in totals:
            wins, pulled = np.zeros(5), np.zeros(5)
            for t in range(pulls):
                if name == "random":
                    arm = int(rng.integers(5))
                elif name == "Thompson sampling":
                    arm = int(np.argmax(rng.beta(wins + 1, pulled - wins + 1)))
                elif t < 5:
                    arm = t
                else:
                    arm = int(np.argmax(wins / pulled + np.sqrt(2 * np.log(t) / pulled)))
                reward = float(rng.random() < means[arm])
                wins[arm] += reward
                pulled[arm] += 1
                totals[name] += reward
    return {name: total / trials for name, total in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pulls", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3_000_000)
    parser.add_argument("--minutes", type=float, default=None)
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds-from", type=int, default=0, help="first seed")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an experiment override on top of the preset (repeatable)",
    )
    args = parser.parse_args()
    if args.worker:
        report(rl2_worker(args.seed, args.pulls, args.steps, args.minutes, args.set))
        return
    runs = []
    for seed in range(args.seeds_from, args.seeds_from + args.seeds):
        extra = ["--minutes", str(args.minutes)] if args.minutes else []
        extra += [f"--set={item}" for item in args.set]
        r = run_worker(__file__, ["--worker", "--seed", str(seed), "--pulls", str(args.pulls),
                                  "--steps", str(args.steps), *extra])  # fmt: skip
        print(f"  RL² seed {seed}: {r}", file=sys.stderr, flush=True)
        runs.append(r)
    # the preset's memory is a GRU; with overrides, the row names them instead
    label = f"RL² (mentor, {', '.join(args.set)})" if args.set else "RL² (mentor, PPO + GRU)"
    rows = [[label, " ".join(f"{r['return']:.1f}" for r in runs),
             f"{statistics.median(r['return'] for r in runs):.1f}",
             f"{statistics.median(r['steps'] for r in runs):,.0f}",
             f"{statistics.median(r['seconds'] for r in runs):.0f}"]]  # fmt: skip
    refs = references(args.pulls)
    for name, value in refs.items():
        rows.append([f"{name} (here)", "", f"{value:.1f}", "", ""])
    for name, value in PAPER.get(args.pulls, {}).items():
        rows.append([name, "", f"{value:.1f}", "", ""])
    print(f"\nBernoulli bandits, 5 arms, {args.pulls} pulls a trial: mean return of 1,000 trials")
    print(table(rows, ["player", "by seed", "median", "train steps", "train s"]))
    print("\n".join(verdicts(args.pulls, [r["return"] for r in runs], refs)))


if __name__ == "__main__":
    main()
