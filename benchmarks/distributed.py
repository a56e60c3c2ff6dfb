"""Training on Ray: how collection scales with rollout workers, and what Ray costs on a fast env.

1. Collection on ``mentor.envs.testing:SlowEnv`` (each step waits 1 ms: a simulator or a server
   answering), 8 env copies in all: env steps/s of PPO's collection (policy, storage, scoring)
   in one process without Ray, and split across 1, 2 and 4 Ray workers. Waiting is not
   CPU-bound, so workers scale past this machine's 2 cores.
2. Time-to-solve PPO on the same env (a validation mean >= 15 of 16) without Ray and with 1, 2
   and 4 workers: seconds of training, and Ray's start-up apart.
3. CartPole-v1 (a fast env, PPO's preset) to 475: no Ray against ``--workers 1``, what one
   worker's round trips cost where the env costs nothing. Beside it, RLlib's PPO (Ray 2.60's
   new API stack, 8 envs in all) with 0, 1 and 2 env runners, run in its own venv by
   ``benchmarks/peers/rllib_ppo.py`` (``make bench-rllib`` makes the venv).
4. A step time that varies (``async``): SlowEnv whose steps stall 30 ms more one time in 50,
   4 workers, PPO synchronous (every update waits for the slowest worker's rollout) against
   asynchronous (``distributed.mode=async``: the first 4 rollouts to arrive, V-trace for the
   lag): time-to-solve and env steps/s of training.
5. Off-policy on workers (``offpolicy``): DQN on SlowEnv (1 ms a step), 8 copies, to a
   validation mean >= 15: one process against 2 and 4 workers feeding the learner's buffer.

Each configuration runs in a fresh process (its own Ray); medians over seeds.

    python benchmarks/distributed.py                 # 3 seeds
    python benchmarks/distributed.py --seeds 1 --only collect
    python benchmarks/distributed.py --only cartpole --rllib ''   # without RLlib
    python benchmarks/distributed.py --only async
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import run_worker, table

SLOW = "mentor.envs.testing:SlowEnv"
COPIES = 8
STEPS = 64  # per copy per rollout
ROOT = Path(__file__).resolve().parent.parent
RLLIB_SCRIPT = ROOT / "benchmarks" / "peers" / "rllib_ppo.py"
RLLIB_PYTHON = ROOT / ".venv-rllib" / "bin" / "python"


def rllib_run(python: str, runners: int, seed: int, target: float) -> dict:
    """RLlib's PPO on CartPole-v1 to ``target`` in its own venv's fresh process."""
    args = ["--env-runners", str(runners), "--seed", str(seed), "--target", str(target)]
    r = run_worker(str(RLLIB_SCRIPT), args, python, f"RLlib {runners} env runners seed {seed}")
    return {"solved": r["solved"], "steps": r["env_steps"], "seconds": r["train_seconds"],
            "startup": r["startup_seconds"]}  # fmt: skip


def collect_worker(workers: int, rollouts: int) -> dict:
    """Env steps/s of ``rollouts`` collections of 8 x 64 steps (after one to warm up)."""
    import torch

    from mentor.core.networks import ActorCritic
    from mentor.core.normalize import RewardScaler
    from mentor.core.rollout import collect
    from mentor.core.storage import RolloutStorage
    from mentor.core.vec_env import VecEnv
    from mentor.sections import NetworkConfig

    torch.set_num_threads(1)
    tic = time.perf_counter()
    if workers == 0:
        venv = VecEnv.make(SLOW, {}, COPIES, vectorization="sync")
    else:
        from mentor.distributed.rollouts import RayVecEnv

        venv = RayVecEnv.make(SLOW, {}, COPIES, workers=workers, address=None, seed=0,
                              vectorization="sync")  # fmt: skip
    policy = ActorCritic(venv.observation_space, venv.action_space, NetworkConfig())
    if workers:
        venv.set_policy(policy)
    obs = venv.reset(seed=0)
    startup = time.perf_counter() - tic
    storage = RolloutStorage(STEPS, COPIES, venv.obs_shape, torch.float32, (), torch.int64)
    scaler = RewardScaler(COPIES, 0.99, False)

    def once(obs):
        if workers:
            return venv.collect(policy, storage, scaler)[0]
        return collect(policy, venv, storage, obs, scaler, torch.device("cpu"))[0]

    obs = once(obs)
    tic = time.perf_counter()
    for _ in range(rollouts):
        obs = once(obs)
    seconds = time.perf_counter() - tic
    venv.close()
    weights = sum(t.numel() * t.element_size() for t in policy.state_dict().values())
    names = ("obs", "actions", "log_probs", "values", "rewards", "terminated", "truncated", "valid")
    block = sum(getattr(storage, n).numel() * getattr(storage, n).element_size() for n in names)
    return {"sps": rollouts * STEPS * COPIES / seconds, "startup": startup,
            "weights_bytes": weights, "rollout_bytes": block}  # fmt: skip


STALLS = 'env.kwargs={"delay": 0.001, "stall": 0.1, "stall_chance": 0.01}'
BUDGET = ["stopping.target_return=null", "stopping.total_steps=16384", "evaluation.episodes=20",
          "validation.every_steps=100000"]  # fmt: skip


def solve_worker(
    env_id: str, workers: int, seed: int, target: float, method: str = "ppo",
    extra: tuple[str, ...] = (),
) -> dict:  # fmt: skip
    import tempfile

    from mentor import api
    from mentor.experiment import build

    out = tempfile.mkdtemp(prefix="mentor-bench-")
    overrides = [
        f"seed={seed}", f"output_dir={out}", f"stopping.target_return={target}",
        "evaluation.episodes=0", "logging.progress=false", "logging.tensorboard=false",
        "checkpoints.keep_best=false",
    ]  # fmt: skip
    if env_id == SLOW and method == "dqn":
        overrides += [f"env.num_envs={COPIES}", "env.vectorization=sync",
                      "method.learning_starts=512", "method.train_freq=8",
                      "method.gradient_steps=2", "method.learning_rate=3e-3",
                      "method.target_update_freq=256", "distributed.actor_steps=16",
                      "validation.every_steps=1024", "validation.episodes=10",
                      "stopping.total_steps=50000"]  # fmt: skip
    elif env_id == SLOW:
        overrides += [f"env.num_envs={COPIES}", f"method.num_steps={STEPS}",
                      "method.num_minibatches=4", "env.vectorization=sync",
                      "validation.every_steps=1024", "validation.episodes=10",
                      "stopping.total_steps=50000"]  # fmt: skip
    else:
        overrides += ["validation.every_steps=4096", "validation.episodes=20",
                      "stopping.total_steps=200000"]  # fmt: skip
    if workers:
        overrides.append(f"distributed.workers={workers}")
    experiment = build(method=method, env_id=env_id, overrides=[*overrides, *extra])
    tic = time.perf_counter()
    if workers:
        from mentor.distributed.rollouts import connect

        connect(workers, None)
    startup = time.perf_counter() - tic
    result = api.train(experiment)
    evaluation = result.evaluation
    return {"solved": result.stop_reason.startswith("target"), "steps": result.total_steps,
            "seconds": result.train_seconds, "startup": startup,
            "sps": result.total_steps / result.train_seconds,
            "eval": None if evaluation is None else evaluation.return_mean}  # fmt: skip


def solve_row(name: str, runs: list[dict]) -> list[str]:
    """A table row of time-to-solve runs: medians over seeds, and how many solved."""
    return [
        name, f"{statistics.median(r['seconds'] for r in runs):.1f}",
        f"{statistics.median(r['steps'] for r in runs):,.0f}",
        f"{sum(r['solved'] for r in runs)}/{len(runs)}",
        f"{statistics.median(r['startup'] for r in runs):.1f}",
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", choices=["collect", "solve", "cartpole", "async", "offpolicy"])
    parser.add_argument("--method", default="ppo")
    parser.add_argument("--set", nargs="*", default=[])
    parser.add_argument("--worker", choices=["collect", "solve"])
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--env", default=SLOW)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", type=float, default=15.0)
    parser.add_argument("--rollouts", type=int, default=10)
    parser.add_argument(
        "--rllib",
        metavar="PATH_TO_PYTHON",
        default=str(RLLIB_PYTHON) if RLLIB_PYTHON.exists() else None,
        help="the python of RLlib's venv (default: .venv-rllib's, if made); '' skips it",
    )
    args = parser.parse_args()
    if args.worker == "collect":
        print(json.dumps(collect_worker(args.workers, args.rollouts)))
        return
    if args.worker == "solve":
        print(json.dumps(solve_worker(args.env, args.workers, args.seed, args.target,
                                      args.method, tuple(args.set))))  # fmt: skip
        return

    if args.only in (None, "cartpole"):
        if args.rllib is None:
            print("RLlib skipped: no .venv-rllib (`make bench-rllib` makes it)", flush=True)
        elif args.rllib and shutil.which(args.rllib) is None:
            parser.error(f"--rllib {args.rllib}: no such program")

    configs = [0, 1, 2, 4]
    label = {0: "one process, no Ray", 1: "1 Ray worker", 2: "2 Ray workers", 4: "4 Ray workers"}
    if args.only in (None, "collect"):
        rows = []
        for workers in configs:
            runs = [run_worker(__file__, ["--worker", "collect", "--workers", str(workers)])
                    for _ in range(args.seeds)]  # fmt: skip
            sps = statistics.median(r["sps"] for r in runs)
            rows.append(
                [
                    label[workers],
                    f"{sps:,.0f}",
                    f"{statistics.median(r['startup'] for r in runs):.1f}",
                ]
            )
            print(f"  collect {label[workers]}: {runs}", flush=True)
        one = float(rows[1][1].replace(",", ""))
        for row in rows:
            row.append(f"{float(row[1].replace(',', '')) / one:.2f}x")
        print(f"\nPPO's collection on SlowEnv (1 ms a step), {COPIES} copies in all, rollouts of "
              f"{STEPS} steps: env steps/s, median of {args.seeds}")  # fmt: skip
        print(table(rows, ["", "env steps/s", "start-up s", "vs 1 worker"]))
        weights, block = runs[-1]["weights_bytes"], runs[-1]["rollout_bytes"]
        print(f"per rollout: the weights, {weights:,} bytes, to each worker; the rollout, "
              f"{block:,} bytes in all ({block / (STEPS * COPIES):.0f} a step), back")  # fmt: skip
    for env_id, target, only in ((SLOW, 15.0, "solve"), ("CartPole-v1", 475.0, "cartpole")):
        if args.only not in (None, only):
            continue
        rows = []
        variants = [(label[w], w, []) for w in (configs if env_id == SLOW else [0, 1])]
        if env_id != SLOW:  # the learner updates while the worker collects the next rollout
            variants.append(("1 Ray worker, async", 1, ["distributed.mode=async"]))
        for name, workers, extra in variants:
            runs = []
            for seed in range(args.seeds):
                flags = ["--worker", "solve", "--env", env_id, "--workers", str(workers),
                         "--seed", str(seed), "--target", str(target), "--set", *extra]  # fmt: skip
                runs.append(run_worker(__file__, flags))
            print(f"  {env_id} {name}: {runs}", flush=True)
            rows.append(solve_row(name, runs))
        if env_id == "CartPole-v1" and args.rllib:
            for runners in (0, 1, 2):
                runs = [rllib_run(args.rllib, runners, seed, target) for seed in range(args.seeds)]
                name = f"RLlib PPO, {runners} env runner{'' if runners == 1 else 's'}"
                print(f"  {env_id} {name}: {runs}", flush=True)
                rows.append(solve_row(name, runs))
        print(f"\nPPO to a validation mean >= {target:g} on {env_id}: median of {args.seeds} seeds")
        print(table(rows, ["", "train s", "env steps", "solved", "Ray start-up s"]))
        if env_id == "CartPole-v1" and args.rllib:
            print("RLlib: its tuned CartPole settings, 8 envs in all; solved at a mean >= "
                  f"{target:g} of 20 greedy evaluation episodes after each 4,000-step "
                  "iteration (not in its train s); its start-up is Ray's and building the "
                  "algorithm")  # fmt: skip

    variants = {
        "async": ("PPO on SlowEnv stalling 100 ms one step in 100, 4 Ray workers, 16,384 env "
                  "steps", "ppo", [
            ("4 workers, sync", 4, [STALLS, *BUDGET]),
            ("4 workers, async (max_staleness 1)", 4, [STALLS, *BUDGET, "distributed.mode=async"]),
            ("4 workers, async (max_staleness 2)", 4,
             [STALLS, *BUDGET, "distributed.mode=async", "distributed.max_staleness=2"]),
        ]),
        "offpolicy": ("DQN on SlowEnv (1 ms a step), 8 copies", "dqn", [
            ("one process, no Ray", 0, []), ("2 Ray workers", 2, []), ("4 Ray workers", 4, []),
        ]),
    }  # fmt: skip
    for only, (title, method, rows_of) in variants.items():
        if args.only not in (None, only):
            continue
        rows = []
        for name, workers, extra in rows_of:
            runs = []
            for seed in range(args.seeds):
                flags = ["--worker", "solve", "--env", SLOW, "--workers", str(workers),
                         "--seed", str(seed), "--target", "15", "--method", method,
                         "--set", *extra]  # fmt: skip
                runs.append(run_worker(__file__, flags))
            print(f"  {only} {name}: {runs}", flush=True)
            final = [r["eval"] for r in runs if r["eval"] is not None]
            rows.append([*solve_row(name, runs),
                         f"{statistics.median(r['sps'] for r in runs):,.0f}",
                         f"{statistics.median(final):.1f}" if final else "-"])  # fmt: skip
        goal = "a fixed budget" if only == "async" else "a validation mean >= 15"
        print(f"\n{title}, to {goal}: median of {args.seeds} seeds")
        print(table(rows, ["", "train s", "env steps", "solved", "Ray start-up s", "env steps/s",
                           "final eval"]))  # fmt: skip


if __name__ == "__main__":
    main()
