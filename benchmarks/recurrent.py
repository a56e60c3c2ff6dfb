"""Memory in policies (issue 19): PPO with an LSTM against feed-forward PPO on a partially
observed task, CartPole observing position and angle only (mentor/CartPole-NoVelocity-v1), and
SB3-contrib's RecurrentPPO with RL Zoo's hyperparameters for the same task (CartPoleNoVel-v1),
in one invocation: time to a deterministic 20-episode mean return of 475, evaluated every
10,000 steps, within RL Zoo's 100,000 steps.

Target: the recurrent policy solves on every seed; the feed-forward one does not.

    python benchmarks/recurrent.py                 # 5 seeds, SB3-contrib where it installs
    python benchmarks/recurrent.py --seeds 3 --no-sb3
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import (
    HEADER,
    compare,
    mentor_time_to_solve,
    report,
    sb3_time_to_solve,
    table,
    time_ratio,
)

ENV_ID, TARGET, EPISODES, EVERY, BUDGET = (
    "mentor/CartPole-NoVelocity-v1",
    475.0,
    20,
    10_000,
    100_000,
)
FEED_FORWARD = ["agent.network.memory=null"]  # the same preset without the LSTM
LABELS = {"recurrent": "mentor lstm", "feed-forward": "mentor mlp", "sb3": "sb3-contrib lstm"}


def has_contrib() -> bool:
    try:
        import sb3_contrib  # noqa: F401
    except ImportError:
        return False
    return True


def sb3_worker(seed: int) -> dict:
    """RecurrentPPO with RL Zoo's CartPoleNoVel-v1 entry (sb3-contrib's hyperparameters)."""
    import torch
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize
    from torch import nn

    import mentor.envs.variants  # noqa: F401  (registers the env id)

    torch.set_num_threads(1)
    env = VecNormalize(make_vec_env(ENV_ID, n_envs=8, seed=seed), gamma=0.98)
    eval_env = VecNormalize(make_vec_env(ENV_ID, n_envs=EPISODES, seed=seed + 1_000_000),
                            training=False, norm_reward=False)  # fmt: skip

    def linear(start: float):
        return lambda remaining: remaining * start

    model = RecurrentPPO(
        "MlpLstmPolicy", env, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98,
        n_epochs=20, ent_coef=0.0, learning_rate=linear(1e-3), clip_range=linear(0.2),
        policy_kwargs={"ortho_init": False, "activation_fn": nn.ReLU, "lstm_hidden_size": 64,
                       "enable_critic_lstm": True, "net_arch": {"pi": [64], "vf": [64]}},
        seed=seed, device="cpu",
    )  # fmt: skip
    return sb3_time_to_solve(model, eval_env, TARGET, EVERY, EPISODES, BUDGET)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--no-sb3", action="store_true")
    parser.add_argument("--worker", choices=["recurrent", "feed-forward", "sb3"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.worker == "sb3":
        report(sb3_worker(args.seed))
        return
    if args.worker:
        extra = FEED_FORWARD if args.worker == "feed-forward" else []
        report(mentor_time_to_solve("ppo", ENV_ID, args.seed, TARGET, EVERY, EPISODES,
                                    overrides=extra))  # fmt: skip
        return
    kinds = ["recurrent", "feed-forward"] + (["sb3"] if has_contrib() and not args.no_sb3 else [])
    results, rows = compare(__file__, kinds, args.seeds,
                            lambda kind, seed: ["--worker", kind, "--seed", str(seed)],
                            LABELS.get)  # fmt: skip
    print(f"\nPPO {ENV_ID}: time to a deterministic {EPISODES}-episode mean return >= "
          f"{TARGET:g} (budget {BUDGET:,} steps)")  # fmt: skip
    print(table(rows, HEADER))
    solved = {kind: sum(r["solved"] for r in results[kind]) for kind in kinds}
    print("\nsolved: " + ", ".join(f"{LABELS[k]} {solved[k]}/{args.seeds}" for k in kinds))
    if "sb3" in results:
        ratio = time_ratio(results["sb3"], results["recurrent"])
        print(f"median time-to-solve, SB3-contrib / mentor: {ratio:.1f}x")


if __name__ == "__main__":
    main()
