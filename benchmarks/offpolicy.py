"""DQN on CartPole-v1, SAC and TD3 on Pendulum-v1, SAC with gSDE on MountainCarContinuous-v0:
mentor's presets against Stable-Baselines3 with RL Zoo's hyperparameters, time-to-solve per
seed and median, in one invocation.

- DQN, CartPole-v1: until a deterministic 100-episode evaluation (every 1,000 steps) reaches 475.
- SAC and TD3, Pendulum-v1: until a deterministic 20-episode evaluation (every 1,000 steps)
  reaches -200.
- sac_sde, MountainCarContinuous-v0: until a deterministic 20-episode evaluation (every 5,000
  steps) reaches 90, within RL Zoo's 50,000 steps (issue 19: every seed, faster than SB3).

    python benchmarks/offpolicy.py                       # all three, 5 seeds, SB3 if installed
    python benchmarks/offpolicy.py --methods sac --seeds 3 --no-sb3
    python benchmarks/offpolicy.py --dqn-variants --seeds 20   # DQN's options one at a time
    python benchmarks/offpolicy.py --dqn-variants --variants "prioritized replay"
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import (
    compare,
    has_sb3,
    mentor_time_to_solve,
    report,
    run_worker,
    sb3_time_to_solve,
    solve_table,
    table,
)

# name: (env id, target, evaluation episodes, evaluate every, SB3's RL Zoo budget)
TASKS = {
    "dqn": ("CartPole-v1", 475.0, 100, 1000, 50_000),
    "sac": ("Pendulum-v1", -200.0, 20, 1000, 20_000),
    "td3": ("Pendulum-v1", -200.0, 20, 1000, 20_000),
    "sac_sde": ("MountainCarContinuous-v0", 90.0, 20, 5000, 50_000),
}
METHOD = {"sac_sde": "sac"}  # the method a task's name stands for, where they differ
# DQN's options, each changed alone on the CartPole preset (which has double-Q on).
DQN_VARIANTS = {
    "preset (double-Q)": [],
    "no double-Q": ["method.double_q=false"],
    "dueling": ["method.dueling=true"],
    "3-step returns": ["method.n_step=3"],
    "prioritized replay": ["method.prioritized=true"],
}


def sb3_model(method: str, seed: int):
    """SB3 with RL Zoo's hyperparameters for these tasks (rl-baselines3-zoo hyperparams/*.yml)."""
    import numpy as np
    import torch
    from stable_baselines3 import DQN, SAC, TD3
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.noise import NormalActionNoise

    torch.set_num_threads(1)
    env_id = TASKS[method][0]
    env = make_vec_env(env_id, n_envs=1, seed=seed)
    if method == "dqn":
        return DQN(
            "MlpPolicy", env, learning_rate=2.3e-3, batch_size=64, buffer_size=100_000,
            learning_starts=1000, gamma=0.99, target_update_interval=10, train_freq=256,
            gradient_steps=128, exploration_fraction=0.16, exploration_final_eps=0.04,
            policy_kwargs={"net_arch": [256, 256]}, seed=seed, device="cpu",
        )  # fmt: skip
    if method == "sac":
        return SAC("MlpPolicy", env, learning_rate=1e-3, seed=seed, device="cpu")
    if method == "sac_sde":
        return SAC(
            "MlpPolicy", env, learning_rate=3e-4, buffer_size=50_000, batch_size=512,
            ent_coef=0.1, train_freq=32, gradient_steps=32, gamma=0.9999, tau=0.01,
            learning_starts=0, use_sde=True,
            policy_kwargs={"log_std_init": -3.67, "net_arch": [64, 64]}, seed=seed, device="cpu",
        )  # fmt: skip
    return TD3(
        "MlpPolicy", env, gamma=0.98, buffer_size=200_000, learning_starts=10_000,
        action_noise=NormalActionNoise(np.zeros(1), 0.1 * np.ones(1)), gradient_steps=-1,
        train_freq=(1, "episode"), learning_rate=1e-3, policy_kwargs={"net_arch": [400, 300]},
        seed=seed, device="cpu",
    )  # fmt: skip


def sb3_worker(method: str, seed: int) -> dict:
    from stable_baselines3.common.env_util import make_vec_env

    env_id, target, episodes, every, budget = TASKS[method]
    model = sb3_model(method, seed)
    eval_env = make_vec_env(env_id, n_envs=min(episodes, 20), seed=seed + 1_000_000)
    return sb3_time_to_solve(model, eval_env, target, every, episodes, budget)


def steps_test(mine: list[dict], theirs: list[dict], draws: int = 20_000) -> str:
    """Is the difference in env steps to solve more than the seeds' spread? The medians and a
    two-sided permutation test of the difference in mean ranks (a Mann-Whitney test by
    permutation; unsolved runs rank last, at their budget)."""
    import numpy as np

    a = np.array([r["steps"] for r in mine], float)
    b = np.array([r["steps"] for r in theirs], float)
    both = np.concatenate([a, b])
    ranks = both.argsort().argsort() + 1.0
    for value in np.unique(both):  # ties share their mean rank
        ranks[both == value] = ranks[both == value].mean()
    observed = abs(ranks[: len(a)].mean() - ranks[len(a) :].mean())
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(draws):
        shuffled = rng.permutation(ranks)
        hits += abs(shuffled[: len(a)].mean() - shuffled[len(a) :].mean()) >= observed - 1e-12
    return (f"env steps to solve, median: mentor {np.median(a):,.0f}, SB3 {np.median(b):,.0f}; "
            f"permutation test of the rank difference, p = {hits / draws:.3f} "
            f"({len(a)} and {len(b)} seeds)")  # fmt: skip


def dqn_variants(seeds: int, names: list[str] | None = None) -> str:
    """DQN on CartPole-v1, the preset and each option changed alone (or those ``names``d):
    seeds solved, median env steps and seconds to solve."""
    rows = []
    for name, overrides in DQN_VARIANTS.items():
        if names and name not in names:
            continue
        results = [run_worker(__file__, ["--worker", "mentor", "--method", "dqn", "--seed",
                                         str(seed), *[f"--set={o}" for o in overrides]])
                   for seed in range(seeds)]  # fmt: skip
        print(f"  {name}: {[r['steps'] for r in results]}", file=sys.stderr, flush=True)
        rows.append([name, f"{sum(r['solved'] for r in results)}/{seeds}",
                     f"{statistics.median(r['steps'] for r in results):,.0f}",
                     f"{statistics.median(r['seconds'] for r in results):.2f}",
                     f"{statistics.median(r['sps'] for r in results):,.0f}"])  # fmt: skip
    title = f"DQN CartPole-v1, the preset's options one at a time, seeds 0-{seeds - 1}"
    return title + "\n" + table(rows, ["variant", "solved", "median env steps", "median train s",
                                       "steps/s"])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", choices=list(TASKS), default=list(TASKS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--no-sb3", action="store_true")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--dqn-variants", action="store_true")
    parser.add_argument("--variants", nargs="+", choices=list(DQN_VARIANTS),
                        help="with --dqn-variants: these alone")  # fmt: skip
    parser.add_argument("--worker", choices=["mentor", "sb3"])
    parser.add_argument("--method", choices=list(TASKS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.worker == "mentor":
        env_id, target, episodes, every, _ = TASKS[args.method]
        method = METHOD.get(args.method, args.method)
        report(mentor_time_to_solve(method, env_id, args.seed, target, every, episodes,
                                    overrides=args.overrides))  # fmt: skip
        return
    if args.worker == "sb3":
        report(sb3_worker(args.method, args.seed))
        return

    if args.dqn_variants:
        print(dqn_variants(args.seeds, args.variants))
        return
    libraries = ["mentor", "sb3"] if has_sb3() and not args.no_sb3 else ["mentor"]
    for method in args.methods:
        env_id, target, episodes, _, _ = TASKS[method]

        def args_for(lib: str, seed: int, method: str = method) -> list[str]:
            extra = [f"--set={o}" for o in args.overrides] if lib == "mentor" else []
            return ["--worker", lib, "--method", method, "--seed", str(seed), *extra]

        results, rows = compare(__file__, libraries, args.seeds, args_for, tag=f"{method} ")
        print(f"\n{method.upper()} {env_id}: time to a deterministic {episodes}-episode mean "
              f"return >= {target:g}")  # fmt: skip
        print(solve_table(rows, results))
        if "sb3" in results:
            print(steps_test(results["mentor"], results["sb3"]))


if __name__ == "__main__":
    main()
