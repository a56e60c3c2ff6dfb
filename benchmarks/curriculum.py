"""Curricula (issue 15): a staged DoorKey curriculum against training on the last stage directly,
and what the teacher costs per env step.

1. PPO on ``MiniGrid-DoorKey-8x8-v0`` directly (the DoorKey preset) and through the staged
   5x5 -> 6x6 -> 8x8 curriculum of ``examples/curriculum-doorkey.yaml``, both validated on 8x8
   every 16,384 env steps (20 episodes): env steps until the 8x8 validation first succeeds in
   >= 90% of its episodes, every step counted (the earlier stages' too). Each run in a fresh
   process; medians over seeds, and how many reached it within the budget.
2. The teacher's overhead: env steps/s of a sync vector env of CartPole (8 copies, random
   actions) bare, and with a teacher that draws each episode's task and a parameter (the pole's
   length): TaskEnv's indirection and the teacher's calls at every episode end.

    python benchmarks/curriculum.py                      # 5 seeds, budget 1M env steps
    python benchmarks/curriculum.py --seeds 3 --budget 600000
    python benchmarks/curriculum.py --only overhead
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import run_worker, table

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "curriculum-doorkey.yaml"
TARGET = 0.9


def doorkey_worker(kind: str, seed: int, budget: int) -> dict:
    from mentor import api
    from mentor.experiment import build

    out = tempfile.mkdtemp(prefix="mentor-bench-")
    overrides = [f"seed={seed}", f"output_dir={out}", f"stopping.total_steps={budget}",
                 "evaluation.episodes=0", "logging.progress=false", "logging.tensorboard=false",
                 "checkpoints.keep_best=false", "validation.every_steps=16384"]  # fmt: skip
    if kind == "staged":
        experiment = build(file=str(EXAMPLE), overrides=overrides)
    else:
        experiment = build(method="ppo", env_id="MiniGrid-DoorKey-8x8-v0", overrides=overrides)
    tic = time.perf_counter()
    result = api.train(experiment)
    wall = time.perf_counter() - tic
    rows = list(csv.DictReader((result.run_dir / "validation.csv").open()))
    reached = next((int(r["step"]) for r in rows if float(r["success_rate"]) >= TARGET), None)
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    return {"steps_to_target": reached, "train_seconds": result.train_seconds, "wall": wall,
            "final_success": float(rows[-1]["success_rate"]) if rows else None,
            "events": manifest.get("curriculum_events", [])}  # fmt: skip


def overhead_worker(env_id: str, teacher: bool, steps: int) -> dict:
    import numpy as np

    from mentor.core.vec_env import VecEnv
    from mentor.curricula import make_teacher
    from mentor.experiment import build

    # CartPole: a task and the pole's length drawn per episode; DoorKey: a level (seed).
    curriculum = 'curriculum.tasks={"seeds": [0, 1000]}'
    if env_id == "CartPole-v1":
        curriculum = 'curriculum.randomize={"length": {"uniform": [0.4, 0.6]}}'
    experiment = build(method="ppo", env_id=env_id, overrides=[curriculum])
    made = make_teacher(experiment) if teacher else None
    venv = VecEnv.make(env_id, {}, 8, vectorization="sync", teacher=made)
    venv.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = [rng.integers(0, int(venv.action_space.n), 8) for _ in range(1000)]
    for i in range(200):
        venv.step(actions[i % 1000])
    tic = time.perf_counter()
    for i in range(steps):
        venv.step(actions[i % 1000])
    seconds = time.perf_counter() - tic
    episodes = len(venv.pop_episodes())
    venv.close()
    return {"sps": steps * 8 / seconds, "episodes": episodes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=1_000_000)
    parser.add_argument("--only", choices=["doorkey", "overhead"])
    parser.add_argument("--worker", choices=["doorkey", "overhead"])
    parser.add_argument("--kind", default="direct")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--teacher", action="store_true")
    parser.add_argument("--env", default="CartPole-v1")
    args = parser.parse_args()
    if args.worker == "doorkey":
        print(json.dumps(doorkey_worker(args.kind, args.seed, args.budget)))
        return
    if args.worker == "overhead":
        steps = 20_000 if args.env == "CartPole-v1" else 2_000
        print(json.dumps(overhead_worker(args.env, args.teacher, steps)))
        return

    if args.only in (None, "overhead"):
        rows = []
        for env_id in ("CartPole-v1", "MiniGrid-DoorKey-8x8-v0"):
            rates = {}
            for teacher in (False, True):
                flags = ["--worker", "overhead", "--env", env_id] + (
                    ["--teacher"] if teacher else []
                )
                runs = [run_worker(__file__, flags) for _ in range(args.seeds)]
                rates[teacher] = statistics.median(r["sps"] for r in runs)
            cost = (rates[False] / rates[True] - 1) * 100
            rows.append([env_id, f"{rates[False]:,.0f}", f"{rates[True]:,.0f}", f"{cost:+.1f}%"])
        print(f"\nA teacher's cost per env step, 8 sync copies, random actions (CartPole: a task "
              f"and the pole's length drawn per episode; DoorKey: a level): median of "
              f"{args.seeds}")  # fmt: skip
        print(table(rows, ["", "bare env steps/s", "with a teacher", "cost"]))

    if args.only in (None, "doorkey"):
        rows = []
        for kind in ("direct", "staged"):
            runs = []
            for seed in range(args.seeds):
                flags = ["--worker", "doorkey", "--kind", kind, "--seed", str(seed),
                         "--budget", str(args.budget)]  # fmt: skip
                runs.append(run_worker(__file__, flags))
                print(f"  {kind} seed {seed}: {runs[-1]}", flush=True)
            reached = [r["steps_to_target"] for r in runs if r["steps_to_target"] is not None]
            rows.append([
                "DoorKey-8x8 directly" if kind == "direct" else "staged 5x5 -> 6x6 -> 8x8",
                f"{statistics.median(reached):,.0f}" if reached else "-",
                f"{len(reached)}/{len(runs)}",
                " ".join(f"{r['steps_to_target'] or 0:,}" for r in runs),
                f"{statistics.median(r['train_seconds'] for r in runs):.0f}",
            ])  # fmt: skip
        print(f"\nPPO, env steps until the 8x8 validation succeeds >= {TARGET:.0%} (every step "
              f"counted), budget {args.budget:,}: median of {args.seeds} seeds")  # fmt: skip
        print(table(rows, ["", "env steps", "reached", "per seed (0: not)", "train s"]))


if __name__ == "__main__":
    main()
