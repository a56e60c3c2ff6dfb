"""Meta-learning on 2-D point navigation (issue 20): the return of the episode after 2
adaptation episodes on held-out goals (uniform in MAML's square [-0.5, 0.5]^2, 20-step episodes
of ``mentor/PointNav-v0``), for

    RL²          PPO + a GRU on ``mentor/Trials-v0`` wrapping PointNav, 3 episodes a trial, its
                 memory kept through the trial; scored by ``last_return`` (the third episode's)
                 with sampled actions, over ``--tasks`` new trials
    Reptile      the ``reptile`` preset: a meta-learned initial MLP policy, adapted by one
                 REINFORCE step on 2 episodes of the goal, then one episode with its mean action
                 (the run's final evaluation, ``--tasks`` held-out goals)
    from scratch a random initial policy adapted the same way on the same 2 episodes (the Reptile
                 run's validation before training, on ``--tasks`` held-out goals)
    multi-task   PPO without memory trained across random goals (``region: square``): it cannot
                 tell goals apart, so it is scored on any episode (mean action)

with references computed here: staying at the origin (what a non-adaptive policy can do best
for goals centred on it) and an oracle that knows the goal (straight to it at full speed).

Each learner trains ``--seeds`` seeds, each in a fresh process, for its own budget; the table
gives each seed's score, their median, and a 95% bootstrap confidence interval of the mean over
seeds (``mentor.evaluation.statistics.bootstrap_ci``). Target: a meta-learner above both
baselines, its interval clear of theirs.

    python benchmarks/point_nav.py --seeds 5
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import report, run_worker, table

GOALS = "{goal_x: [-0.5, 0.5], goal_y: [-0.5, 0.5]}"
QUIET = ["logging.progress=false", "logging.tensorboard=false", "checkpoints.keep_best=false"]


def rl2_worker(seed: int, steps: int, tasks: int) -> dict:
    from mentor import api
    from mentor.experiment import build

    experiment = build(method="ppo", env_id="mentor/Trials-v0", overrides=[
        f"seed={seed}", f"output_dir={tempfile.mkdtemp(prefix='mentor-bench-')}",
        f"env.kwargs={{env: mentor/PointNav-v0, params: {GOALS}, episodes: 3}}",
        "env.info_keys={last_return: last}", "env.num_envs=16", "env.normalize_reward=true",
        "agent.network={memory: {cell: gru, hidden_size: 64}, hidden_sizes: [64]}",
        "method.num_steps=60", "method.num_minibatches=4", "method.learning_rate=1e-3",
        "exploration.entropy_coef=0.0", f"stopping.total_steps={steps}",
        f"validation.every_steps={steps}", "validation.episodes=20",
        f"evaluation.episodes={tasks}", "evaluation.num_envs=20",
        "evaluation.deterministic=false", *QUIET,
    ])  # fmt: skip
    result = api.train(experiment)
    evaluation = json.loads((result.run_dir / "evaluation.json").read_text())
    return {"score": evaluation["info"]["last_return"], "seconds": result.train_seconds,
            "steps": result.total_steps}  # fmt: skip


def reptile_worker(seed: int, steps: int, tasks: int) -> dict:
    from mentor import api
    from mentor.experiment import build

    experiment = build(method="reptile", env_id="mentor/PointNav-v0", overrides=[
        f"seed={seed}", f"output_dir={tempfile.mkdtemp(prefix='mentor-bench-')}",
        f"stopping.total_steps={steps}", "validation.at_start=true",
        f"validation.every_steps={steps}", f"validation.episodes={tasks}",
        f"evaluation.episodes={tasks}", *QUIET,
    ])  # fmt: skip
    result = api.train(experiment)
    evaluation = json.loads((result.run_dir / "evaluation.json").read_text())
    with open(result.run_dir / "validation.csv") as f:
        first = next(csv.DictReader(f))
    assert int(first["step"]) == 0
    return {"score": evaluation["return_mean"], "scratch": float(first["return_mean"]),
            "seconds": result.train_seconds, "steps": result.total_steps}  # fmt: skip


def multitask_worker(seed: int, steps: int, tasks: int) -> dict:
    from mentor import api
    from mentor.experiment import build

    experiment = build(method="ppo", env_id="mentor/PointNav-v0", overrides=[
        f"seed={seed}", f"output_dir={tempfile.mkdtemp(prefix='mentor-bench-')}",
        "env.kwargs={region: square, size: 0.5}", "env.num_envs=8",
        "agent.network.hidden_sizes=[64, 64]", f"stopping.total_steps={steps}",
        f"validation.every_steps={steps}", "validation.episodes=20",
        f"evaluation.episodes={tasks}", "evaluation.num_envs=20", *QUIET,
    ])  # fmt: skip
    result = api.train(experiment)
    evaluation = json.loads((result.run_dir / "evaluation.json").read_text())
    return {"score": evaluation["return_mean"], "seconds": result.train_seconds,
            "steps": result.total_steps}  # fmt: skip


WORKERS = {"rl2": rl2_worker, "reptile": reptile_worker, "multitask": multitask_worker}


def references(tasks: int = 2000, steps: int = 20, max_step: float = 0.1) -> dict[str, float]:
    """Staying at the origin, and an oracle heading straight for the goal at full speed."""
    goals = np.random.default_rng(12345).uniform(-0.5, 0.5, (tasks, 2))
    stay = -steps * np.linalg.norm(goals, axis=1).mean()
    position, oracle = np.zeros_like(goals), np.zeros(tasks)
    for _ in range(steps):
        position = position + np.clip(goals - position, -max_step, max_step)
        oracle -= np.linalg.norm(position - goals, axis=1)
    return {"stay at the origin": float(stay), "oracle (knows the goal)": float(oracle.mean())}


def summary(name: str, scores: list[float], runs: list[dict] | None) -> list[str]:
    from mentor.evaluation.statistics import bootstrap_ci

    low, high = bootstrap_ci([np.array(scores)], np.mean)
    steps = f"{statistics.median(r['steps'] for r in runs):,.0f}" if runs else "0"
    seconds = f"{statistics.median(r['seconds'] for r in runs):.0f}" if runs else ""
    return [name, " ".join(f"{s:.2f}" for s in scores), f"{statistics.median(scores):.2f}",
            f"[{low:.2f}, {high:.2f}]", steps, seconds]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--rl2-steps", type=int, default=250_000)
    parser.add_argument("--reptile-steps", type=int, default=200_000)
    parser.add_argument("--multitask-steps", type=int, default=50_000)
    parser.add_argument("--worker", choices=sorted(WORKERS))
    parser.add_argument("--steps", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.worker:
        report(WORKERS[args.worker](args.seed, args.steps, args.tasks))
        return
    budgets = {"rl2": args.rl2_steps, "reptile": args.reptile_steps,
               "multitask": args.multitask_steps}  # fmt: skip
    runs: dict[str, list[dict]] = {}
    for name, steps in budgets.items():
        runs[name] = []
        for seed in range(args.seeds):
            r = run_worker(__file__, ["--worker", name, "--seed", str(seed), "--steps", str(steps),
                                      "--tasks", str(args.tasks)])  # fmt: skip
            print(f"  {name} seed {seed}: {r}", file=sys.stderr, flush=True)
            runs[name].append(r)
    rows = [
        summary("RL² (PPO + GRU, trials of 3)", [r["score"] for r in runs["rl2"]], runs["rl2"]),
        summary("Reptile (1 step on 2 episodes)", [r["score"] for r in runs["reptile"]],
                runs["reptile"]),
        summary("from scratch (same adaptation)", [r["scratch"] for r in runs["reptile"]], None),
        summary("multi-task PPO (no memory)", [r["score"] for r in runs["multitask"]],
                runs["multitask"]),
    ]  # fmt: skip
    for name, value in references().items():
        rows.append([f"{name} (here)", "", f"{value:.2f}", "", "", ""])
    print(f"\nPoint navigation, goals in [-0.5, 0.5]^2, 20 steps: return of the episode after 2 "
          f"adaptation episodes, {args.tasks} held-out goals per seed")  # fmt: skip
    print(table(rows, ["learner", "by seed", "median", "95% CI (mean)", "train steps", "train s"]))


if __name__ == "__main__":
    main()
