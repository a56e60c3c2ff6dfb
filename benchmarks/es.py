"""Evolution strategies (issue 20): OpenAI-ES and CMA-ES on CartPole-v1 (time to solve, every
seed), and OpenAI-ES next to SAC on Pendulum-v1 after the same minutes of training.

- cartpole: time to a deterministic 20-episode mean return of 475, validated every 20,000 env
  steps (the preset's), within 1,000,000 steps: the OpenAI-ES preset, and CMA-ES with a linear
  policy (16 members, sigma 0.5). Target: OpenAI-ES solves on every one of 5 seeds.
- pendulum: each method's preset trained for ``--minutes`` (the issue's 10), then a
  deterministic 20-episode evaluation: the returns side by side.
- ray: OpenAI-ES on a slow env (``mentor.envs.testing:SlowEnv``, 1 ms a step, 16 copies, 48
  members) for the same env steps in one process and on 2 Ray workers (8 copies each): the
  training seconds. Target: 2 workers take <= 0.6x the time of one process.

    python benchmarks/es.py --parts cartpole --seeds 5
    python benchmarks/es.py --parts pendulum --seeds 3 --minutes 10 --parallel 2
    python benchmarks/es.py --parts ray --seeds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import mentor_time_to_solve, report, run_worker, table

CMA = ["method.algorithm=cma", "method.population=16", "method.noise_std=0.5",
       "agent.network.hidden_sizes=[]"]  # fmt: skip
SEARCHES = {"openai-es": [], "cma-es": CMA}
SLOW = ["env.num_envs=16", "method.population=48", "agent.network.hidden_sizes=[16]",
        "stopping.total_steps=40000", "stopping.target_return=null",
        "validation.every_steps=40000", "validation.episodes=4", "validation.num_envs=4",
        "evaluation.episodes=0", "logging.progress=false", "logging.tensorboard=false"]  # fmt: skip


def slow_worker(workers: int, seed: int) -> dict:
    import ray

    from mentor import api
    from mentor.experiment import build

    out = tempfile.mkdtemp(prefix="mentor-bench-")
    extra = [f"distributed.workers={workers}"] if workers > 1 else []
    experiment = build(method="es", env_id="mentor.envs.testing:SlowEnv", overrides=[
        f"seed={seed}", f"output_dir={out}", *SLOW, *extra])  # fmt: skip
    try:
        result = api.train(experiment)
    finally:
        ray.shutdown()
    return {"seconds": result.train_seconds, "steps": result.total_steps,
            "best": result.best_return}  # fmt: skip


def pendulum_worker(method: str, seed: int, minutes: float) -> dict:
    from mentor import api
    from mentor.experiment import build

    out = tempfile.mkdtemp(prefix="mentor-bench-")
    experiment = build(method=method, env_id="Pendulum-v1", overrides=[
        f"seed={seed}", f"output_dir={out}", f"stopping.max_seconds={minutes * 60}",
        "stopping.total_steps=100000000", "stopping.target_return=null",
        "validation.every_steps=20000", "evaluation.episodes=20", "logging.progress=false",
        "logging.tensorboard=false",
    ])  # fmt: skip
    result = api.train(experiment)
    evaluation = json.loads((result.run_dir / "evaluation.json").read_text())
    return {"return": evaluation["return_mean"], "seconds": result.train_seconds,
            "steps": result.total_steps, "evaluated": result.evaluated}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=["cartpole", "pendulum", "ray"],
                        default=["cartpole", "pendulum", "ray"])  # fmt: skip
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--worker", choices=["solve", "pendulum", "slow"])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--search", choices=list(SEARCHES))
    parser.add_argument("--method", choices=["es", "sac"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.worker == "solve":
        report(mentor_time_to_solve("es", "CartPole-v1", args.seed, 475.0, 20_000, 20,
                                    1_000_000, SEARCHES[args.search]))  # fmt: skip
        return
    if args.worker == "pendulum":
        report(pendulum_worker(args.method, args.seed, args.minutes))
        return
    if args.worker == "slow":
        report(slow_worker(args.workers, args.seed))
        return
    pool = ThreadPoolExecutor(args.parallel)
    if "cartpole" in args.parts:
        rows = []
        for search in SEARCHES:  # one at a time: these are times
            runs = [run_worker(__file__, ["--worker", "solve", "--search", search, "--seed",
                                          str(seed)]) for seed in range(args.seeds)]  # fmt: skip
            for seed, r in enumerate(runs):
                print(f"  {search} seed {seed}: {r}", file=sys.stderr, flush=True)
            rows.append([search, f"{sum(r['solved'] for r in runs)}/{len(runs)}",
                         " ".join(f"{r['steps'] / 1000:.0f}k" for r in runs),
                         f"{statistics.median(r['steps'] for r in runs):,.0f}",
                         f"{statistics.median(r['seconds'] for r in runs):.1f}",
                         f"{statistics.median(r['sps'] for r in runs):,.0f}"])  # fmt: skip
        print(f"\nCartPole-v1: time to a deterministic 20-episode mean >= 475, seeds "
              f"0-{args.seeds - 1}")  # fmt: skip
        print(table(rows, ["search", "solved", "env steps by seed", "median steps",
                           "median train s", "steps/s"]))  # fmt: skip
    if "pendulum" in args.parts:
        jobs = {(method, seed): pool.submit(run_worker, __file__, [
            "--worker", "pendulum", "--method", method, "--seed", str(seed),
            "--minutes", str(args.minutes)]) for seed in range(args.seeds)
            for method in ("es", "sac")}  # fmt: skip
        rows = []
        for method in ("es", "sac"):
            runs = [jobs[method, seed].result() for seed in range(args.seeds)]
            rows.append([method, " ".join(f"{r['return']:.0f}" for r in runs),
                         f"{statistics.median(r['return'] for r in runs):.0f}",
                         f"{statistics.median(r['steps'] for r in runs):,.0f}"])  # fmt: skip
        print(
            f"\nPendulum-v1 after {args.minutes:g} minutes of training ({args.parallel} runs "
            "at a time): deterministic 20-episode mean return of the best validated weights"
        )
        print(table(rows, ["method", "return by seed", "median", "median env steps"]))
    if "ray" in args.parts:
        print("\n" + ray_table(args.seeds))


def ray_table(seeds: int) -> str:
    rows, times = [], {}
    for workers in (1, 2):
        runs = []
        for seed in range(seeds):
            r = run_worker(__file__, ["--worker", "slow", "--workers", str(workers), "--seed",
                                      str(seed)])  # fmt: skip
            print(f"  slow env, {workers} worker(s), seed {seed}: {r}", file=sys.stderr, flush=True)
            runs.append(r)
        times[workers] = statistics.median(r["seconds"] for r in runs)
        label = "one process" if workers == 1 else f"{workers} Ray workers"
        rows.append([label, " ".join(f"{r['seconds']:.1f}" for r in runs), f"{times[workers]:.1f}",
                     f"{statistics.median(r['best'] for r in runs):.1f}"])  # fmt: skip
    title = (f"OpenAI-ES on SlowEnv (1 ms a step), 40,000 env steps, seeds 0-{seeds - 1}: "
             f"2 workers / one process = {times[2] / times[1]:.2f}x the time")  # fmt: skip
    return title + "\n" + table(rows, ["where", "train s by seed", "median s",
                                       "median best return"])  # fmt: skip


if __name__ == "__main__":
    main()
