"""PPO on CartPole-v1: mentor's preset against Stable-Baselines3 with RL Zoo's hyperparameters.

For each seed, in a fresh process each (so peak RSS is that run's own):
- time-to-solve: seconds of *training* (validation time excluded) until a deterministic
  100-episode evaluation reaches 475, evaluating every ``--eval-every`` env steps;
- env steps used, training steps/s, peak RSS of the process.
Then the whole `mentor train ppo CartPole-v1` command (imports included), and training steps/s
with 64 envs against raw random-action stepping of the same 64 envs.

    python benchmarks/ppo_cartpole.py            # 5 seeds, SB3 side by side when installed
    python benchmarks/ppo_cartpole.py --seeds 2 --no-sb3 --set method.num_epochs=10
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 475.0
BUDGET = 100_000
EVAL_EPISODES = 100


def mentor_worker(seed: int, eval_every: int, overrides: list[str]) -> dict:
    from mentor import api
    from mentor.experiment import build

    out = tempfile.mkdtemp(prefix="mentor-bench-")
    experiment = build(
        method="ppo",
        env_id="CartPole-v1",
        overrides=[
            f"seed={seed}",
            f"output_dir={out}",
            f"stopping.total_steps={BUDGET}",
            f"stopping.target_return={TARGET}",
            f"validation.every_steps={eval_every}",
            f"validation.episodes={EVAL_EPISODES}",
            "validation.num_envs=20",
            "evaluation.episodes=0",
            "logging.progress=false",
            "logging.tensorboard=false",
            "checkpoints.keep_best=false",
            *overrides,
        ],
    )
    result = api.train(experiment)
    return {
        "solved": result.stop_reason.startswith("target"),
        "seconds": result.train_seconds,
        "steps": result.total_steps,
        "sps": result.total_steps / result.train_seconds,
    }


def sb3_worker(seed: int, eval_every: int) -> dict:
    """SB3 PPO with RL Zoo's CartPole-v1 hyperparameters (rl-baselines3-zoo, ppo.yml)."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    torch.set_num_threads(1)

    def linear(start: float):
        return lambda remaining: remaining * start

    env = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
    eval_env = make_vec_env("CartPole-v1", n_envs=20, seed=seed + 1_000_000)
    model = PPO(
        "MlpPolicy", env, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20,
        ent_coef=0.0, learning_rate=linear(1e-3), clip_range=linear(0.2), seed=seed, device="cpu",
    )  # fmt: skip

    class Solve(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.eval_seconds = 0.0
            self.next_eval = eval_every
            self.solved = False

        def _on_step(self) -> bool:
            if self.num_timesteps < self.next_eval:
                return True
            self.next_eval += eval_every
            tic = time.perf_counter()
            mean, _ = evaluate_policy(model, eval_env, EVAL_EPISODES, deterministic=True)
            self.eval_seconds += time.perf_counter() - tic
            self.solved = bool(mean >= TARGET)
            return not self.solved

    callback = Solve()
    tic = time.perf_counter()
    model.learn(BUDGET, callback=callback)
    seconds = time.perf_counter() - tic - callback.eval_seconds
    steps = model.num_timesteps
    return {"solved": callback.solved, "seconds": seconds, "steps": steps, "sps": steps / seconds}


def in_subprocess(args: list[str]) -> dict:
    """Run this script as a worker in a fresh process; returns its JSON result."""
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"worker {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(result: dict) -> str:
    """A worker's result as JSON, with the worker's own peak RSS."""
    return json.dumps(
        {**result, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    )


def whole_command() -> dict:
    """`mentor train ppo CartPole-v1`, imports included, as a user runs it."""
    with tempfile.TemporaryDirectory() as folder:
        result = in_subprocess(["--worker", "command", "--seed", "0", f"--set={folder}"])
        manifest = json.loads(next(Path(folder, "runs").glob("*/manifest.json")).read_text())
    return {**result, "stop": manifest["stop_reason"]}


def command_worker(folder: str) -> dict:
    """Times the command in a child; this process's only child, so its peak RSS is the command's."""
    tic = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "mentor", "train", "ppo", "CartPole-v1", "--quiet"],
        cwd=folder, capture_output=True, text=True,
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"seconds": time.perf_counter() - tic, "command_rss_mb": peak}


def throughput_worker(num_envs: int, steps: int) -> dict:
    """Training steps/s of mentor's PPO against random-action stepping of the same envs (the
    native vectorized CartPole), and, to separate the two costs, mentor's collection alone."""
    import gymnasium as gym
    import numpy as np
    import torch

    from mentor import api
    from mentor.agent import Agent
    from mentor.core.normalize import RewardScaler
    from mentor.core.storage import RolloutStorage
    from mentor.core.vec_env import VecEnv
    from mentor.experiment import build
    from mentor.methods.ppo import collect

    torch.set_num_threads(1)
    env = gym.make_vec("CartPole-v1", num_envs, vectorization_mode="vector_entry_point")
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 2, size=(steps // num_envs, num_envs))
    tic = time.perf_counter()
    for row in actions:
        env.step(row)
    raw = steps / (time.perf_counter() - tic)

    venv = VecEnv.make("CartPole-v1", {}, num_envs)
    experiment = build(method="ppo", env_id="CartPole-v1")
    agent = Agent.build(experiment, venv.observation_space, venv.action_space)
    dist = agent.policy.dist
    storage = RolloutStorage(32, num_envs, venv.obs_shape, torch.float32, dist.action_shape,
                             dist.action_dtype)  # fmt: skip
    obs, scaler = venv.reset(seed=0), RewardScaler(num_envs, 0.99, enabled=False)
    tic = time.perf_counter()
    for _ in range(steps // (32 * num_envs)):
        obs, _ = collect(agent.policy, venv, storage, obs, scaler, torch.device("cpu"))
    collection = steps / (time.perf_counter() - tic)
    out = tempfile.mkdtemp(prefix="mentor-bench-")
    experiment = build(method="ppo", env_id="CartPole-v1", overrides=[
        f"env.num_envs={num_envs}", f"output_dir={out}", f"stopping.total_steps={steps}",
        "stopping.target_return=null", f"validation.every_steps={10 * steps}",
        "evaluation.episodes=0", "logging.progress=false", "logging.tensorboard=false",
    ])  # fmt: skip
    result = api.train(experiment)
    return {
        "raw_sps": raw,
        "collect_sps": collection,
        "train_sps": result.total_steps / result.train_seconds,
    }


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]

    def line(row: list) -> str:
        return "| " + " | ".join(str(x).rjust(w) for x, w in zip(row, widths, strict=True)) + " |"

    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
                      *map(line, rows)])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--eval-every", type=int, default=2048)
    parser.add_argument("--no-sb3", action="store_true")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--worker", choices=["mentor", "sb3", "throughput", "command"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.worker == "mentor":
        print(report(mentor_worker(args.seed, args.eval_every, args.overrides)))
        return
    if args.worker == "sb3":
        print(report(sb3_worker(args.seed, args.eval_every)))
        return
    if args.worker == "command":
        print(json.dumps(command_worker(args.overrides[0])))
        return
    if args.worker == "throughput":
        print(report(throughput_worker(64, 65_536)))
        return

    try:
        import stable_baselines3  # noqa: F401

        libraries = ["mentor"] if args.no_sb3 else ["mentor", "sb3"]
    except ImportError:
        libraries = ["mentor"]
    results: dict[str, list[dict]] = {lib: [] for lib in libraries}
    rows = []
    for seed in range(args.seeds):
        for lib in libraries:
            extra = args.overrides if lib == "mentor" else []
            worker = ["--worker", lib, "--seed", str(seed), "--eval-every", str(args.eval_every)]
            r = in_subprocess(worker + [f"--set={o}" for o in extra])
            results[lib].append(r)
            rows.append([lib, seed, "yes" if r["solved"] else "NO", f"{r['seconds']:.2f}",
                         f"{r['steps']:,}", f"{r['sps']:,.0f}", f"{r['rss_mb']:.0f}"])  # fmt: skip
            print(f"  {lib} seed {seed}: {r}", file=sys.stderr, flush=True)
    for lib in libraries:
        rs = results[lib]
        rows.append([f"{lib} median", "", f"{sum(r['solved'] for r in rs)}/{len(rs)}",
                     f"{statistics.median(r['seconds'] for r in rs):.2f}",
                     f"{statistics.median(r['steps'] for r in rs):,.0f}",
                     f"{statistics.median(r['sps'] for r in rs):,.0f}",
                     f"{statistics.median(r['rss_mb'] for r in rs):.0f}"])  # fmt: skip
    print("\nPPO CartPole-v1: time to a deterministic 100-episode mean return >= 475")
    print(table(rows, ["library", "seed", "solved", "train s", "env steps", "steps/s", "RSS MB"]))
    if "sb3" in results:
        ratio = statistics.median(r["seconds"] for r in results["sb3"]) / statistics.median(
            r["seconds"] for r in results["mentor"]
        )
        print(f"\nmedian time-to-solve, SB3 / mentor: {ratio:.1f}x")

    whole = whole_command()
    throughput = in_subprocess(["--worker", "throughput"])
    share = throughput["train_sps"] / throughput["raw_sps"]
    print()
    print(table([
        ["`mentor train ppo CartPole-v1`, whole process", f"{whole['seconds']:.2f} s",
         f"{whole['command_rss_mb']:.0f} MB RSS", whole["stop"]],
        ["64 envs: training / raw random stepping", f"{throughput['train_sps']:,.0f} steps/s",
         f"{throughput['raw_sps']:,.0f} steps/s", f"{100 * share:.1f}%"],
        ["64 envs: collection only / raw", f"{throughput['collect_sps']:,.0f} steps/s",
         f"{throughput['raw_sps']:,.0f} steps/s",
         f"{100 * throughput['collect_sps'] / throughput['raw_sps']:.1f}%"],
    ], ["measure", "value", "", ""]))  # fmt: skip


if __name__ == "__main__":
    main()
