"""PPO on CartPole-v1: mentor's preset against Stable-Baselines3 with RL Zoo's hyperparameters.

For each seed, in a fresh process each: time-to-solve (seconds of training until a deterministic
100-episode evaluation, run every ``--eval-every`` env steps, reaches 475), env steps, steps/s,
updates/s and peak RSS. Then the whole `mentor train ppo CartPole-v1` command (imports
included; ``--command-runs`` runs, their median), and training steps/s with 64 envs against raw
random-action stepping of those envs.

    python benchmarks/ppo_cartpole.py            # 5 seeds, SB3 side by side when installed
    python benchmarks/ppo_cartpole.py --seeds 2 --no-sb3 --set method.num_epochs=10
    python benchmarks/ppo_cartpole.py --only-command --command-runs 5
    MENTOR_FAST_KERNELS=0 python benchmarks/ppo_cartpole.py --no-sb3   # mentor on nn.Tanh

Every mentor process here (workers, the whole command) inherits ``MENTOR_FAST_KERNELS``; the
output says which kernels ran. ``benchmarks/kernels.py`` times the kernels alone.
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

sys.path.insert(0, str(Path(__file__).parent))
from common import (
    HEADER,
    compare,
    has_sb3,
    kernels,
    mentor_time_to_solve,
    report,
    run_worker,
    sb3_time_to_solve,
    table,
    time_ratio,
)

TARGET = 475.0
BUDGET = 100_000
EVAL_EPISODES = 100


def sb3_worker(seed: int, eval_every: int) -> dict:
    """SB3 PPO with RL Zoo's CartPole-v1 hyperparameters (rl-baselines3-zoo, ppo.yml)."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    torch.set_num_threads(1)

    def linear(start: float):
        return lambda remaining: remaining * start

    env = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
    eval_env = make_vec_env("CartPole-v1", n_envs=20, seed=seed + 1_000_000)
    model = PPO(
        "MlpPolicy", env, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20,
        ent_coef=0.0, learning_rate=linear(1e-3), clip_range=linear(0.2), seed=seed, device="cpu",
    )  # fmt: skip
    return sb3_time_to_solve(model, eval_env, TARGET, eval_every, EVAL_EPISODES, BUDGET)


def whole_command() -> dict:
    """`mentor train ppo CartPole-v1`, imports included, as a user runs it."""
    with tempfile.TemporaryDirectory() as folder:
        result = run_worker(__file__, ["--worker", "command", "--set", folder])
        manifest = json.loads(next(Path(folder, "runs").glob("*/manifest.json")).read_text())
    return {**result, "stop": manifest["stop_reason"]}


def whole_command_table(runs: int) -> str:
    """The whole command ``runs`` times, one after another: the median seconds (a single run
    moves by a few tenths with the machine's load), the range, and the largest peak RSS."""
    results = [whole_command() for _ in range(runs)]
    seconds = sorted(r["seconds"] for r in results)
    stops = sorted({r["stop"] for r in results})
    return table([[
        f"`mentor train ppo CartPole-v1`, whole process, {runs} runs",
        f"{statistics.median(seconds):.2f} s (median)", f"{seconds[0]:.2f}-{seconds[-1]:.2f} s",
        f"{max(r['command_rss_mb'] for r in results):.0f} MB RSS (max)", "; ".join(stops),
    ]], ["measure", "value", "range", "memory", "stopped by"])  # fmt: skip


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


# 64-env throughput: each vectorization of the same 64 CartPoles, each rollout shape.
THROUGHPUT_TITLE = (
    "64 envs, steps/s (targets, issue 19: training at least 3x SB3's PPO at the same shape, and "
    "at least 80% of the bound composed from mentor's collection alone and update alone)"
)
THROUGHPUT_ENVS, THROUGHPUT_STEPS = 64, 65_536
SHAPES = {  # name -> overrides on the CartPole preset
    "preset": [],  # 32 steps x 64 envs, 10 epochs of one full-batch gradient step
    "defaults": ["method.num_steps=128", "method.num_epochs=4", "method.num_minibatches=4"],
}
# Each shape as SB3's PPO takes it (n_steps, n_epochs, batch_size), the preset's gamma,
# gae_lambda and clip range.
SB3_SHAPES = {"preset": (32, 10, 32 * 64), "defaults": (128, 4, 128 * 64 // 4)}
EPOCHS = {"preset": 10, "defaults": 4}


def sb3_throughput_worker(shape: str) -> dict:
    """SB3's PPO on the same 64 CartPoles (its DummyVecEnv: one process, as mentor's sync),
    each rollout shape, one torch thread as mentor: training steps/s."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    torch.set_num_threads(1)
    n_steps, n_epochs, batch_size = SB3_SHAPES[shape]
    env = make_vec_env("CartPole-v1", n_envs=THROUGHPUT_ENVS, seed=0)
    model = PPO("MlpPolicy", env, n_steps=n_steps, n_epochs=n_epochs, batch_size=batch_size,
                gamma=0.98, gae_lambda=0.8, learning_rate=3e-3, seed=0, device="cpu")  # fmt: skip
    tic = time.perf_counter()
    model.learn(THROUGHPUT_STEPS)
    return {"train": model.num_timesteps / (time.perf_counter() - tic)}


def throughput_worker(vectorization: str) -> dict:
    """For 64 envs vectorized one way: raw random-action stepping, mentor's collection alone,
    the PPO update alone (one epoch, one full-batch step per rollout: the cheapest PPO update),
    and whole training with each rollout shape in ``SHAPES``, all in steps/s."""
    import numpy as np
    import torch

    from mentor import api
    from mentor.agent import Agent
    from mentor.core.normalize import RewardScaler
    from mentor.core.returns import gae
    from mentor.core.storage import RolloutStorage
    from mentor.core.vec_env import VecEnv, make_vector_env
    from mentor.experiment import build
    from mentor.methods.ppo import collect, ppo_update

    num_envs, steps = THROUGHPUT_ENVS, THROUGHPUT_STEPS
    env = make_vector_env("CartPole-v1", {}, num_envs, vectorization)
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 2, size=(steps // num_envs, num_envs))
    tic = time.perf_counter()
    for row in actions:
        env.step(row)
    out = {"raw": steps / (time.perf_counter() - tic)}
    env.close()

    venv = VecEnv.make("CartPole-v1", {}, num_envs, vectorization=vectorization)
    experiment = build(method="ppo", env_id="CartPole-v1")
    agent = Agent.build(experiment, venv.observation_space, venv.action_space)
    dist, cpu, length = agent.policy.dist, torch.device("cpu"), experiment.method.num_steps
    storage = RolloutStorage(length, num_envs, venv.obs_shape, torch.float32, dist.action_shape,
                             dist.action_dtype)  # fmt: skip
    obs, scaler = venv.reset(seed=0), RewardScaler(num_envs, 0.99, enabled=False)
    tic = time.perf_counter()
    for _ in range(steps // (length * num_envs)):
        obs, last_value = collect(agent.policy, venv, storage, obs, scaler, cpu)
    out["collect"] = steps / (time.perf_counter() - tic)
    venv.close()

    cfg = experiment.method.model_copy(update={"num_epochs": 1, "num_minibatches": 1})
    optimizer = torch.optim.Adam(agent.policy.parameters(), lr=1e-4, fused=True)
    next_values = torch.cat([storage.values[1:], last_value.unsqueeze(0)])
    advantages, returns = gae(storage.rewards, storage.values, next_values, storage.terminated,
                              storage.truncated, cfg.gamma, cfg.gae_lambda)  # fmt: skip
    generator, rounds = torch.Generator().manual_seed(0), 50
    tic = time.perf_counter()
    for _ in range(rounds):
        ppo_update(agent.policy, optimizer, storage, advantages, returns, cfg, 0.2, 0.0, generator)
    out["update"] = rounds * length * num_envs / (time.perf_counter() - tic)

    for shape, overrides in SHAPES.items():
        folder = tempfile.mkdtemp(prefix="mentor-bench-")
        experiment = build(method="ppo", env_id="CartPole-v1", overrides=[
            f"env.num_envs={num_envs}", f"env.vectorization={vectorization}",
            f"output_dir={folder}", f"stopping.total_steps={steps}", "stopping.target_return=null",
            f"validation.every_steps={10 * steps}", "evaluation.episodes=0",
            "logging.progress=false", "logging.tensorboard=false", *overrides,
        ])  # fmt: skip
        result = api.train(experiment)
        out[f"train_{shape}"] = result.total_steps / result.train_seconds
    return out


def throughput_table(with_sb3: bool) -> str:
    """The 64-env table: every rate, its share of raw stepping of the same envs, training
    against the bound composed from collection alone and the update alone (a sample costs
    1/collect + epochs/update seconds), and SB3's PPO at the same shape (sync)."""
    rows = []
    sb3 = {}
    if with_sb3:
        sb3 = {shape: run_worker(__file__, ["--worker", "sb3-throughput", "--set", shape])["train"]
               for shape in SHAPES}  # fmt: skip
    labels = {
        "raw": "raw random-action stepping",
        "collect": "mentor's collection alone (policy, sampling, storage, checks)",
        "update": "PPO update alone, 1 epoch x 1 full-batch step per rollout",
        "train_preset": "training, preset (32 steps, 10 epochs x 1 minibatch)",
        "train_defaults": "training, defaults (128 steps, 4 epochs x 4 minibatches)",
    }
    for vectorization in ("native", "sync"):
        rates = run_worker(__file__, ["--worker", "throughput", "--set", vectorization])
        raw = rates["raw"]
        for key, label in labels.items():
            share = "" if key == "raw" else f"{100 * rates[key] / raw:.1f}%"
            extra = ["", ""]
            if key.startswith("train_"):
                shape = key.removeprefix("train_")
                bound = 1 / (1 / rates["collect"] + EPOCHS[shape] / rates["update"])
                versus = f"{rates[key] / sb3[shape]:.1f}x SB3" if shape in sb3 else ""
                extra = [f"{100 * rates[key] / bound:.0f}% of {bound:,.0f}", versus]
            rows.append([vectorization, label, f"{rates[key]:,.0f}", share, *extra])
    for shape, rate in sb3.items():
        rows.append(["sb3 (sync)", f"SB3 PPO training, {shape} shape", f"{rate:,.0f}", "", "",
                     ""])  # fmt: skip
    return table(rows, ["envs", "64 CartPoles", "steps/s", "of raw", "of the composed bound",
                        "against SB3"])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--eval-every", type=int, default=2048)
    parser.add_argument("--no-sb3", action="store_true")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument(
        "--worker", choices=["mentor", "sb3", "throughput", "sb3-throughput", "command"]
    )
    parser.add_argument("--only-throughput", action="store_true", help="the 64-env table alone")
    parser.add_argument("--only-command", action="store_true", help="the whole command alone")
    parser.add_argument("--command-runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.worker == "mentor":
        report(mentor_time_to_solve("ppo", "CartPole-v1", args.seed, TARGET, args.eval_every,
                                    EVAL_EPISODES, BUDGET, args.overrides))  # fmt: skip
        return
    if args.worker == "sb3":
        report(sb3_worker(args.seed, args.eval_every))
        return
    if args.worker == "command":
        print(json.dumps(command_worker(args.overrides[0])))
        return
    if args.worker == "throughput":
        print(json.dumps(throughput_worker(args.overrides[0])))
        return
    if args.worker == "sb3-throughput":
        print(json.dumps(sb3_throughput_worker(args.overrides[0])))
        return
    if args.only_command:
        print(whole_command_table(args.command_runs))
        return
    with_sb3 = has_sb3() and not args.no_sb3
    if args.only_throughput:
        print(THROUGHPUT_TITLE)
        print(throughput_table(with_sb3))
        return

    libraries = ["mentor", "sb3"] if with_sb3 else ["mentor"]

    def args_for(lib: str, seed: int) -> list[str]:
        extra = [f"--set={o}" for o in args.overrides] if lib == "mentor" else []
        return ["--worker", lib, "--seed", str(seed), "--eval-every", str(args.eval_every), *extra]

    results, rows = compare(__file__, libraries, args.seeds, args_for)
    print("\nPPO CartPole-v1: time to a deterministic 100-episode mean return >= 475")
    print(f"mentor with {kernels()}")
    print(table(rows, HEADER))
    if "sb3" in results:
        ratio = time_ratio(results["sb3"], results["mentor"])
        print(f"\nmedian time-to-solve, SB3 / mentor: {ratio:.1f}x")

    print()
    print(whole_command_table(args.command_runs))
    print("\n" + THROUGHPUT_TITLE)
    print(throughput_table(with_sb3))


if __name__ == "__main__":
    main()
