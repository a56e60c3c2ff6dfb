"""The Box2D tasks users try after CartPole (issue 19): PPO on LunarLander-v3 and SAC on
LunarLanderContinuous-v3, mentor's presets against Stable-Baselines3 with RL Zoo's
hyperparameters, time to a deterministic 20-episode mean return of 200, in one invocation.

Targets: PPO LunarLander-v3 in less wall time than SB3 + RL Zoo, every seed solving; SAC
LunarLanderContinuous-v3 at least 3x faster than SB3 + RL Zoo.

    python benchmarks/box2d.py --tasks ppo --seeds 3
    python benchmarks/box2d.py --tasks sac --seeds 3 --no-sb3
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import (
    compare,
    has_sb3,
    mentor_time_to_solve,
    report,
    sb3_time_to_solve,
    solve_table,
)

# task: (method, env id, evaluate every, RL Zoo's budget)
TASKS = {
    "ppo": ("ppo", "LunarLander-v3", 32_768, 1_000_000),
    "sac": ("sac", "LunarLanderContinuous-v3", 10_000, 500_000),
}
TARGET, EPISODES = 200.0, 20


def sb3_worker(task: str, seed: int) -> dict:
    """SB3 with RL Zoo's values (ppo.yml and sac.yml, LunarLander(Continuous)-v2)."""
    import torch
    from stable_baselines3 import PPO, SAC
    from stable_baselines3.common.env_util import make_vec_env

    torch.set_num_threads(1)
    _, env_id, every, budget = TASKS[task]
    eval_env = make_vec_env(env_id, n_envs=EPISODES, seed=seed + 1_000_000)
    if task == "ppo":
        env = make_vec_env(env_id, n_envs=16, seed=seed)
        model = PPO("MlpPolicy", env, n_steps=1024, batch_size=64, gae_lambda=0.98, gamma=0.999,
                    n_epochs=4, ent_coef=0.01, seed=seed, device="cpu")  # fmt: skip
    else:
        env = make_vec_env(env_id, n_envs=1, seed=seed)

        def linear(start: float):
            return lambda remaining: remaining * start

        model = SAC("MlpPolicy", env, batch_size=256, learning_rate=linear(7.3e-4),
                    buffer_size=1_000_000, ent_coef="auto", gamma=0.99, tau=0.01, train_freq=1,
                    gradient_steps=1, learning_starts=10_000,
                    policy_kwargs={"net_arch": [400, 300]}, seed=seed, device="cpu")  # fmt: skip
    return sb3_time_to_solve(model, eval_env, TARGET, every, EPISODES, budget)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), default=list(TASKS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--no-sb3", action="store_true")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--worker", choices=["mentor", "sb3"])
    parser.add_argument("--task", choices=list(TASKS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.worker:
        method, env_id, every, _ = TASKS[args.task]
        if args.worker == "sb3":
            report(sb3_worker(args.task, args.seed))
        else:
            report(mentor_time_to_solve(method, env_id, args.seed, TARGET, every, EPISODES,
                                        overrides=args.overrides))  # fmt: skip
        return
    libraries = ["mentor", "sb3"] if has_sb3() and not args.no_sb3 else ["mentor"]
    for task in args.tasks:
        method, env_id, _, budget = TASKS[task]

        def args_for(lib: str, seed: int, task: str = task) -> list[str]:
            extra = [f"--set={o}" for o in args.overrides] if lib == "mentor" else []
            return ["--worker", lib, "--task", task, "--seed", str(seed), *extra]

        results, rows = compare(__file__, libraries, args.seeds, args_for, tag=f"{task} ")
        print(f"\n{method.upper()} {env_id}: time to a deterministic {EPISODES}-episode mean "
              f"return >= {TARGET:g} (RL Zoo's budget {budget:,} steps)")  # fmt: skip
        print(solve_table(rows, results))


if __name__ == "__main__":
    main()
