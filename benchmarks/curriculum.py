"""Curricula (issue 15): a staged DoorKey curriculum against training on the last stage directly,
and what the teacher costs per env step.

1. PPO on ``MiniGrid-DoorKey-8x8-v0`` directly (the DoorKey preset) and through the staged
   5x5 -> 6x6 -> 8x8 curriculum of ``examples/curriculum-doorkey.yaml`` (promotion after two
   validations at >= 90%, after one, and 5x5 -> 8x8 after one), all validated on 8x8 every
   8,192 env steps (20 episodes): env steps until the 8x8 validation first succeeds in >= 90% of
   its episodes, every step counted (the earlier stages' too); the run stops there
   (stopping.target_success). Each run in a fresh process; medians over seeds, and how many
   reached it within the budget.
2. DoorKey-16x16 through 5x5 -> 8x8 -> 16x16 (``examples/curriculum-doorkey16.yaml``), the same
   measure with validation every 32,768 env steps, budget 2M (``--direct16`` adds 16x16 alone).
3. An MLP on MiniGrid's one-hot view against the GridCNN (``agent.network.kind: cnn``): env
   steps and seconds to 90% success on DoorKey-5x5 (and 8x8 with a budget above 200k).
4. The teacher's overhead: env steps/s of a sync vector env of CartPole and of DoorKey (8
   copies, random actions) bare, with a teacher giving the same task every episode (TaskEnv's
   indirection and the teacher's calls at every episode end) and with one drawing a parameter
   (the pole's length) or a level each episode.

    python benchmarks/curriculum.py                      # 5 seeds, budget 1M env steps
    python benchmarks/curriculum.py --only doorkey --budget 600000
    python benchmarks/curriculum.py --only doorkey16     # 5x5 -> 8x8 -> 16x16, budget 2M
    python benchmarks/curriculum.py --only network --budget 600000  # MLP or CNN, 5x5 and 8x8
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
EXAMPLE16 = ROOT / "examples" / "curriculum-doorkey16.yaml"
TARGET = 0.9


# What each DoorKey run trains on: (label, example file or None for the env alone, env id,
# evaluations a promotion needs, stages kept). Validation every CADENCE env steps, 20 episodes.
VARIANTS = {
    "direct": ("DoorKey-8x8 directly", None, "MiniGrid-DoorKey-8x8-v0", None, None),
    "staged": ("5x5 -> 6x6 -> 8x8, 2 evaluations", EXAMPLE, None, 2, None),
    "staged1": ("5x5 -> 6x6 -> 8x8, 1 evaluation", EXAMPLE, None, 1, None),
    "skip1": ("5x5 -> 8x8, 1 evaluation", EXAMPLE, None, 1, [0, 2]),
    "direct16": ("DoorKey-16x16 directly", None, "MiniGrid-DoorKey-16x16-v0", None, None),
    "staged16": ("5x5 -> 8x8 -> 16x16, 2 evaluations", EXAMPLE16, None, 2, None),
    "mlp5": ("DoorKey-5x5, MLP on the one-hot view", None, "MiniGrid-DoorKey-5x5-v0", None, None),
    "cnn5": ("DoorKey-5x5, GridCNN on the view", None, "MiniGrid-DoorKey-5x5-v0", None, None),
    "mlp8": ("DoorKey-8x8, MLP on the one-hot view", None, "MiniGrid-DoorKey-8x8-v0", None, None),
    "cnn8": ("DoorKey-8x8, GridCNN on the view", None, "MiniGrid-DoorKey-8x8-v0", None, None),
}
CADENCE = {"direct16": 32768, "staged16": 32768, "mlp5": 4096, "cnn5": 4096}
EXTRA = {"cnn5": ["agent.network.kind=cnn"], "cnn8": ["agent.network.kind=cnn"]}


def variant_file(kind: str, folder: str) -> str:
    """The example with its promotions' evaluations and its stages as the variant asks."""
    import yaml

    _, example, _, evaluations, keep = VARIANTS[kind]
    spec = yaml.safe_load(Path(example).read_text())
    stages = spec["curriculum"]["stages"]
    if keep is not None:
        stages = [stages[i] for i in keep]
    for stage in stages[:-1]:
        stage["promote"]["evaluations"] = evaluations
    spec["curriculum"]["stages"] = stages
    path = Path(folder) / f"{kind}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def doorkey_worker(kind: str, seed: int, budget: int) -> dict:
    from mentor import api
    from mentor.experiment import build

    out = tempfile.mkdtemp(prefix="mentor-bench-")
    # Each run stops at the first validation on the last stage with >= 90% success.
    overrides = [f"seed={seed}", f"output_dir={out}", f"stopping.total_steps={budget}",
                 f"stopping.target_success={TARGET}", "evaluation.episodes=0",
                 "logging.progress=false", "logging.tensorboard=false",
                 "checkpoints.keep_best=false", f"validation.every_steps={CADENCE.get(kind, 8192)}",
                 *EXTRA.get(kind, [])]  # fmt: skip
    _, example, env_id, _, _ = VARIANTS[kind]
    if example is not None:
        experiment = build(file=variant_file(kind, out), overrides=overrides)
    else:
        experiment = build(method="ppo", env_id=env_id, overrides=overrides)
    tic = time.perf_counter()
    result = api.train(experiment)
    wall = time.perf_counter() - tic
    rows = list(csv.DictReader((result.run_dir / "validation.csv").open()))
    reached = next((int(r["step"]) for r in rows if float(r["success_rate"]) >= TARGET), None)
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    promotions = [e["step"] for e in manifest.get("curriculum_events", [])]
    return {"steps_to_target": reached, "train_seconds": result.train_seconds, "wall": wall,
            "final_success": float(rows[-1]["success_rate"]) if rows else None,
            "promotions": promotions}  # fmt: skip


def doorkey_table(kinds: list[str], seeds: int, budget: int, title: str) -> None:
    rows = []
    for kind in kinds:
        runs = []
        for seed in range(seeds):
            flags = ["--worker", "doorkey", "--kind", kind, "--seed", str(seed),
                     "--budget", str(budget)]  # fmt: skip
            runs.append(run_worker(__file__, flags))
            print(f"  {kind} seed {seed}: {runs[-1]}", flush=True)
        reached = [r["steps_to_target"] for r in runs if r["steps_to_target"] is not None]
        # A run that does not get there counts as the budget in the median (a lower bound).
        steps = sorted(r["steps_to_target"] or budget for r in runs)
        first = [r["promotions"][0] for r in runs if r["promotions"]]
        rows.append([
            VARIANTS[kind][0],
            f"{statistics.median(steps):,.0f}" + ("" if len(reached) == len(runs) else "+"),
            f"{len(reached)}/{len(runs)}",
            " ".join(f"{r['steps_to_target'] or 0:,}" for r in runs),
            f"{statistics.median(first):,.0f}" if first else "-",
            f"{statistics.median(r['train_seconds'] for r in runs):.0f}",
        ])  # fmt: skip
    print(f"\n{title}, budget {budget:,}: median of {seeds} seeds (a run that does not get there "
          f"counts as the budget: '+')")  # fmt: skip
    print(table(rows, ["", "env steps", "reached", "per seed (0: not)", "first promotion",
                       "train s"]))  # fmt: skip


OVERHEAD_MODES = ("bare", "same", "draw")


def overhead_worker(env_id: str, steps: int, repeats: int = 5) -> dict:
    """Env steps/s of 8 sync copies under random actions: bare; with a teacher that gives the
    same task every episode (the plumbing: the teacher's calls, TaskEnv's reset); with one that
    draws (CartPole: the pole's length; DoorKey: a level). Interleaved ``repeats`` times in
    this process, the best of each kept (the machine's noise only slows a run down)."""
    import numpy as np

    from mentor.core.vec_env import VecEnv
    from mentor.curricula import make_teacher
    from mentor.experiment import build

    draw = 'curriculum.tasks={"seeds": [0, 1000]}'
    if env_id == "CartPole-v1":
        draw = 'curriculum.randomize={"length": {"uniform": [0.4, 0.6]}}'
    curricula = {"same": "curriculum.kind=uniform", "draw": draw}
    venvs = {}
    for mode in OVERHEAD_MODES:
        teacher = None
        if mode != "bare":
            teacher = make_teacher(build(method="ppo", env_id=env_id, overrides=[curricula[mode]]))
        venvs[mode] = VecEnv.make(env_id, {}, 8, vectorization="sync", teacher=teacher)
        venvs[mode].reset(seed=0)
    rng = np.random.default_rng(0)
    n = int(venvs["bare"].action_space.n)
    actions = [rng.integers(0, n, 8) for _ in range(1000)]
    best = dict.fromkeys(OVERHEAD_MODES, 0.0)
    episodes = dict.fromkeys(OVERHEAD_MODES, 0)
    for _ in range(repeats):
        for mode, venv in venvs.items():
            tic = time.perf_counter()
            for i in range(steps):
                venv.step(actions[i % 1000])
            best[mode] = max(best[mode], steps * 8 / (time.perf_counter() - tic))
            episodes[mode] += len(venv.pop_episodes())
    for venv in venvs.values():
        venv.close()
    return {"sps": best, "episodes": episodes, "steps": steps * 8 * repeats}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=1_000_000)
    parser.add_argument("--only", choices=["doorkey", "network", "doorkey16", "overhead"])
    parser.add_argument("--direct16", action="store_true", help="also 16x16 directly (slow)")
    parser.add_argument("--kinds", nargs="+", choices=list(VARIANTS),
                        help="run these variants only (in the table --only names)")  # fmt: skip
    parser.add_argument("--worker", choices=["doorkey", "overhead"])
    parser.add_argument("--kind", default="direct")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--env", default="CartPole-v1")
    args = parser.parse_args()
    if args.worker == "doorkey":
        print(json.dumps(doorkey_worker(args.kind, args.seed, args.budget)))
        return
    if args.worker == "overhead":
        steps = 10_000 if args.env == "CartPole-v1" else 1_000
        print(json.dumps(overhead_worker(args.env, steps)))
        return

    if args.only in (None, "overhead"):
        rows = []
        for env_id in ("CartPole-v1", "MiniGrid-DoorKey-8x8-v0"):
            runs = [run_worker(__file__, ["--worker", "overhead", "--env", env_id])
                    for _ in range(args.seeds)]  # fmt: skip
            rate = {m: statistics.median(r["sps"][m] for r in runs) for m in OVERHEAD_MODES}
            length = runs[0]["steps"] / max(runs[0]["episodes"]["bare"], 1)
            rows.append([env_id, f"{length:,.0f}", f"{rate['bare']:,.0f}",
                         f"{rate['same']:,.0f} ({(rate['bare'] / rate['same'] - 1) * 100:+.1f}%)",
                         f"{rate['draw']:,.0f} ({(rate['bare'] / rate['draw'] - 1) * 100:+.1f}%)",
                         ])  # fmt: skip
        print(f"\nA teacher's cost per env step, 8 sync copies, random actions (same: one task "
              f"every episode; draw: CartPole's pole length, DoorKey's level, per episode): "
              f"median of {args.seeds} processes, each the best of 5 interleaved runs")  # fmt: skip
        print(table(rows, ["", "steps/episode", "bare env steps/s", "same task", "drawn"]))

    if args.only in (None, "doorkey"):
        doorkey_table(args.kinds or ["direct", "staged", "staged1", "skip1"], args.seeds,
                      args.budget,
                      f"PPO, env steps until the 8x8 validation succeeds >= {TARGET:.0%} "
                      f"(every step counted; validation every 8,192)")  # fmt: skip
    if args.only in (None, "network"):
        small = [k for k in args.kinds or ["mlp5", "cnn5"] if k.endswith("5")]
        if small:
            doorkey_table(small, args.seeds, min(args.budget, 200_000),
                          f"PPO with an MLP or the GridCNN, env steps until the validation "
                          f"succeeds >= {TARGET:.0%} (validation every 4,096)")  # fmt: skip
        large = [k for k in args.kinds or ["mlp8", "cnn8"] if k.endswith("8")]
        if args.budget > 200_000 and large:
            doorkey_table(large, args.seeds, args.budget,
                          f"PPO with an MLP or the GridCNN, env steps until the validation "
                          f"succeeds >= {TARGET:.0%} (validation every 8,192)")  # fmt: skip
    if args.only in (None, "doorkey16"):
        doorkey_table(["staged16"] + (["direct16"] if args.direct16 else []), args.seeds,
                      max(args.budget, 2_000_000),
                      f"PPO, env steps until the 16x16 validation succeeds >= {TARGET:.0%} "
                      f"(every step counted; validation every 32,768)")  # fmt: skip


if __name__ == "__main__":
    main()
