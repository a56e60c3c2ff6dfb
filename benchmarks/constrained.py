"""Constrained RL on mentor's constrained tasks (issue 18): PPO without the limit, PPO-Lagrangian,
PPO with the PID-Lagrangian multiplier, SAC without the limit and Lagrangian SAC (Box actions
only), each the task's preset (`mentor/presets/ppo.yaml`, `sac.yaml`), then the final evaluation
(the sampled policy, 100 episodes): its mean episode cost against the limit, and its return
against the unconstrained agent's of the same method. "eval noise": the std of the mean cost of
10 more evaluations of the same agent (the spread across seeds that evaluation alone makes, the
seeds' policies all alike); "10x eval: std": the spread across seeds of those 10 evaluations'
mean (the evaluation's noise cut by sqrt(10): the policies' own spread).

Targets (median over seeds): the cost at most the limit and within 15% below it; its spread
across seeds (standard deviation) under 20% of the limit; the return within 20% of the
unconstrained agent's wherever the constraint allows it.

    python benchmarks/constrained.py --seeds 0 1 2 3 4 --parallel 2
    python benchmarks/constrained.py --tasks PointGoal --methods ppo_lag --set method.num_epochs=5
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import table

TASKS = ("PointGoal", "CartPoleSlow", "PendulumGentle")
FREE = ["constraint=null", "env.info_keys=[{cost: sum}]"]  # no limit, the cost still measured
METHODS = {  # name -> (method, overrides of its preset for the task, the unconstrained one)
    "ppo": ("ppo", FREE, "ppo"),
    "ppo_lag": ("ppo", [], "ppo"),
    "ppo_pid": ("ppo", ["constraint.multiplier=pid"], "ppo"),
    "sac": ("sac", FREE, "sac"),
    "sac_lag": ("sac", [], "sac"),
}
BOX_ONLY = ("sac", "sac_lag")  # CartPole's actions are discrete


def worker(task: str, method: str, seed: int, folder: str, overrides: list[str]) -> dict:
    from mentor import api
    from mentor.experiment import build

    env_id = f"mentor.envs.constrained:{task}"
    name, preset, _ = METHODS[method]
    experiment = build(method=name, env_id=env_id, overrides=[
        f"seed={seed}", f"output_dir={folder}", f"name={task}-{method}-{seed}",
        "logging.progress=false", "logging.tensorboard=false", *preset, *overrides,
    ])  # fmt: skip
    # The limit the constrained methods train under: the preset's, or a --set of it (the
    # unconstrained ones are measured against the same).
    limits = [o for o in overrides if o.startswith("constraint.limit=")]
    limit = build(method=name, env_id=env_id, overrides=limits).constraint.limit
    result = api.train(experiment)
    evaluation = json.loads((result.run_dir / "evaluation.json").read_text())
    # The evaluation's own noise: the evaluated agent plays 10 more sets of as many episodes
    # (other seeds); the std of their mean costs is what a set's mean cost varies by with the
    # policy fixed, and their mean is a 10x longer evaluation's.
    agent, episodes = api.load(result.run_dir), experiment.evaluation.episodes
    costs = [api.evaluate(agent, episodes=episodes, deterministic=False, seed=1000 + k).info["cost"]
             for k in range(10)]  # fmt: skip
    return {"task": task, "method": method, "seed": seed, "limit": limit,
            "return": evaluation["return_mean"], "cost": evaluation["info"]["cost"],
            "episodes": episodes, "eval_noise": statistics.stdev(costs),
            "cost_long": statistics.mean(costs), "seconds": result.train_seconds}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        task, method, seed, folder = args.worker
        print(json.dumps(worker(task, method, int(seed), folder, args.overrides)))
        return
    folder = tempfile.mkdtemp(prefix="mentor-constrained-")
    jobs = [(t, m, s) for t in args.tasks for m in args.methods for s in args.seeds
            if not (t == "CartPoleSlow" and m in BOX_ONLY)]  # fmt: skip
    results = []
    while jobs:
        batch, jobs = jobs[: args.parallel], jobs[args.parallel :]
        extra = [f"--set={o}" for o in args.overrides]
        procs = [subprocess.Popen([sys.executable, __file__, "--worker", t, m, str(s), folder,
                                   *extra], stdout=subprocess.PIPE, text=True)
                 for t, m, s in batch]  # fmt: skip
        for proc in procs:
            out, _ = proc.communicate()
            if proc.returncode:
                sys.exit(f"a worker failed (exit {proc.returncode})")
            results.append(json.loads(out.strip().splitlines()[-1]))
    print(f"seeds {args.seeds}, each task's preset; final evaluation: "
          f"{results[0]['episodes']} sampled episodes; runs under {folder}\n")  # fmt: skip
    rows = []
    for task in args.tasks:
        for method in args.methods:
            mine = [r for r in results if r["task"] == task and r["method"] == method]
            if not mine:
                continue
            baseline = METHODS[method][2]
            free = [r["return"] for r in results if r["task"] == task and r["method"] == baseline]
            costs = [r["cost"] for r in mine]
            limit, cost = mine[0]["limit"], statistics.median(costs)
            spread = statistics.stdev(costs) if len(costs) > 1 else 0.0
            ret = statistics.median(r["return"] for r in mine)
            vs_free = f"{ret / statistics.median(free):.0%}" if free else "n/a"
            noise = statistics.median(r["eval_noise"] for r in mine)
            long = [r["cost_long"] for r in mine]
            long_spread = statistics.stdev(long) if len(long) > 1 else 0.0
            rows.append([task, method, f"{limit:g}", f"{cost:.2f}", f"{cost / limit:.0%}",
                         *(f"{x:.2f} ({x / limit:.0%})" for x in (spread, noise, long_spread)),
                         f"{ret:.1f}", vs_free,
                         " ".join(f"{c:.1f}" for c in costs)])  # fmt: skip
    header = ["task", "method", "limit", "cost (median)", "of limit", "cost std (of limit)",
              "eval noise (of limit)", "10x eval: std", "return (median)", "of unconstrained",
              "cost by seed"]  # fmt: skip
    print(table(rows, header))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
