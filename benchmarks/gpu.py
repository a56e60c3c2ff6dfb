"""The GPU path, checked (issue 19): mentor's presets on CUDA against the same machine's CPU.

- PPO CartPole-v1, SAC and TD3 Pendulum-v1: time to solve (as ``ppo_cartpole.py`` and
  ``offpolicy.py`` measure it) with ``device: cuda`` and ``device: cpu``, seed by seed.
- PPO on Atari Breakout (``ALE/Breakout-v5``, its preset: 8 envs, the Nature CNN): training
  steps/s over a fixed number of env steps on CUDA, on the CPU with mentor's default of one
  torch thread, and with all the machine's threads.

Each run is a fresh process; ``--parallel`` runs several at once (the time-to-solve rows then
share the machine: compare them within this table only).

    python benchmarks/gpu.py                       # all of it: needs a CUDA GPU
    python benchmarks/gpu.py --parts atari --atari-steps 4096 --devices cpu   # the CPU rows
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import mentor_time_to_solve, report, run_worker, table

# name: (method, env id, target, evaluation episodes, evaluate every, budget)
SOLVE = {
    "ppo": ("ppo", "CartPole-v1", 475.0, 100, 2048, 100_000),
    "sac": ("sac", "Pendulum-v1", -200.0, 20, 1000, 20_000),
    "td3": ("td3", "Pendulum-v1", -200.0, 20, 1000, 20_000),
}
ATARI = "ALE/Breakout-v5"


def atari_worker(device: str, threads: int | None, steps: int) -> dict:
    """The Atari PPO preset for ``steps`` env steps: training steps/s, no validation."""
    import torch

    from mentor import api
    from mentor.experiment import build

    out = tempfile.mkdtemp(prefix="mentor-bench-")
    experiment = build(method="ppo", env_id=ATARI, overrides=[
        f"device={device}", f"num_threads={threads if threads else 'null'}",
        f"stopping.total_steps={steps}", f"validation.every_steps={10 * steps}",
        "evaluation.episodes=0", "logging.progress=false", "logging.tensorboard=false",
        f"output_dir={out}", "checkpoints.keep_best=false",
    ])  # fmt: skip
    result = api.train(experiment)
    return {"seconds": result.train_seconds, "steps": result.total_steps,
            "threads": torch.get_num_threads()}  # fmt: skip


def solve_args(task: str, device: str, seed: int) -> list[str]:
    return ["--worker", "solve", "--task", task, "--device", device, "--seed", str(seed)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--parts", nargs="+", choices=["solve", "atari"], default=["solve", "atari"]
    )
    parser.add_argument("--tasks", nargs="+", choices=list(SOLVE), default=list(SOLVE))
    parser.add_argument("--devices", nargs="+", choices=["cuda", "cpu"], default=["cuda", "cpu"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--atari-steps", type=int, default=16_384)
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--worker", choices=["solve", "atari"])
    parser.add_argument("--task", choices=list(SOLVE))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="0: all of the machine's")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.worker == "solve":
        method, env_id, target, episodes, every, budget = SOLVE[args.task]
        report(mentor_time_to_solve(method, env_id, args.seed, target, every, episodes, budget,
                                    [f"device={args.device}"]))  # fmt: skip
        return
    if args.worker == "atari":
        report(atari_worker(args.device, args.threads, args.atari_steps))
        return

    import torch

    if "cuda" in args.devices:
        if not torch.cuda.is_available():
            sys.exit("error: no CUDA GPU here; use --devices cpu")
        print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    pool = ThreadPoolExecutor(args.parallel)
    if "solve" in args.parts:
        jobs = {(task, device, seed): pool.submit(run_worker, __file__,
                                                  solve_args(task, device, seed))
                for seed in range(args.seeds) for task in args.tasks
                for device in args.devices}  # fmt: skip
        rows = []
        for task in args.tasks:
            for device in args.devices:
                runs = [jobs[task, device, seed].result() for seed in range(args.seeds)]
                seconds = [f"{r['seconds']:.1f}" for r in runs]
                solved = sum(r["solved"] for r in runs)
                median = {k: statistics.median(r[k] for r in runs) for k in ("seconds", "steps")}
                rows.append([task, SOLVE[task][1], device, f"{solved}/{len(runs)}",
                             " / ".join(seconds), f"{median['seconds']:.1f}",
                             f"{median['steps']:,.0f}"])  # fmt: skip
        print(f"\ntime to solve, seeds 0-{args.seeds - 1}, {args.parallel} run(s) at a time")
        print(table(rows, ["method", "env", "device", "solved", "train s per seed",
                           "median s", "median steps"]))  # fmt: skip
    if "atari" in args.parts:
        configs = [("cuda", 1)] if "cuda" in args.devices else []
        configs += [("cpu", 1), ("cpu", 0)] if "cpu" in args.devices else []
        rows = []
        for device, threads in configs:  # one at a time: these are rates
            r = run_worker(__file__, ["--worker", "atari", "--device", device,
                                      "--threads", str(threads),
                                      "--atari-steps", str(args.atari_steps)])  # fmt: skip
            rows.append([device, str(r["threads"]), f"{r['steps']:,}", f"{r['seconds']:.1f}",
                         f"{r['sps']:,.0f}", f"{r['rss_mb']:.0f}"])  # fmt: skip
            print(f"  atari {device} threads {r['threads']}: {r}", file=sys.stderr, flush=True)
        print(f"\nPPO {ATARI} (its preset: 8 envs, Nature CNN), training steps/s")
        print(table(rows, ["device", "torch threads", "env steps", "train s", "steps/s",
                           "RSS MB"]))  # fmt: skip


if __name__ == "__main__":
    main()
