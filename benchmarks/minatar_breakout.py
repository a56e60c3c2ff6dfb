"""The small image benchmark (issue 19): PPO on MinAtar Breakout (MinAtar/Breakout-v1, 10 x 10
boards of 4 object planes), mentor's preset against SB3's PPO with the same network and
hyperparameters, at equal env steps, in one invocation.

Both: 8 envs x 128 steps, 4 epochs, minibatches of 256, lr 2.5e-4 linear to 0, clip 0.2,
entropy 0.01, value 0.5, gae_lambda 0.95, gamma 0.99, grad norm 0.5; the network of the MinAtar
paper (Young & Tian 2019): one 3 x 3 convolution of 16 channels (shared by actor and critic),
then 128 ReLU units for each. Reported: training seconds and steps/s (evaluation excluded),
and the mean return of a final deterministic evaluation of 50 episodes (other seeds).

Target: return and steps/s against SB3's PPO at equal steps.

    python benchmarks/minatar_breakout.py                        # 3 seeds, 300,000 steps each
    python benchmarks/minatar_breakout.py --seeds 1 --steps 50000 --no-sb3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import has_sb3, report, run_worker, table

ENV_ID, EPISODES = "MinAtar/Breakout-v1", 50
HEADER = ["library", "seed", "return", "train s", "env steps", "steps/s", "RSS MB"]


def mentor_worker(seed: int, steps: int) -> dict:
    from mentor import api
    from mentor.experiment import build

    out = tempfile.mkdtemp(prefix="mentor-bench-")
    experiment = build(method="ppo", env_id=ENV_ID, overrides=[
        f"seed={seed}", f"output_dir={out}", f"stopping.total_steps={steps}",
        f"validation.every_steps={steps}", "validation.episodes=1", "validation.num_envs=1",
        f"evaluation.episodes={EPISODES}", "logging.progress=false", "logging.tensorboard=false",
        "checkpoints.keep_best=false",
    ])  # fmt: skip
    result = api.train(experiment)
    evaluation = json.loads((result.run_dir / "evaluation.json").read_text())
    return {"return": evaluation["return_mean"], "seconds": result.train_seconds,
            "steps": result.total_steps}  # fmt: skip


def sb3_worker(seed: int, steps: int) -> dict:
    import gymnasium as gym
    import torch
    from minatar.gym import register_envs
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
    from torch import nn

    class MinAtarCNN(BaseFeaturesExtractor):
        """One 3 x 3 convolution of 16 channels over the (10, 10, C) planes, flattened."""

        def __init__(self, space: gym.spaces.Box) -> None:
            height, width, channels = space.shape
            super().__init__(space, 16 * (height - 2) * (width - 2))
            self.conv = nn.Sequential(nn.Conv2d(channels, 16, 3), nn.ReLU(), nn.Flatten())

        def forward(self, obs: torch.Tensor) -> torch.Tensor:
            return self.conv(obs.permute(0, 3, 1, 2).float())

    torch.set_num_threads(1)
    register_envs()
    env = make_vec_env(ENV_ID, n_envs=8, seed=seed)
    model = PPO(
        "MlpPolicy", env, n_steps=128, batch_size=256, n_epochs=4, gamma=0.99, gae_lambda=0.95,
        learning_rate=lambda remaining: remaining * 2.5e-4, clip_range=0.2, ent_coef=0.01,
        vf_coef=0.5, max_grad_norm=0.5, seed=seed, device="cpu",
        policy_kwargs={"features_extractor_class": MinAtarCNN, "activation_fn": nn.ReLU,
                       "net_arch": {"pi": [128], "vf": [128]}},
    )  # fmt: skip
    tic = time.perf_counter()
    model.learn(steps)
    seconds = time.perf_counter() - tic
    eval_env = make_vec_env(ENV_ID, n_envs=10, seed=seed + 1_000_000)
    mean, _ = evaluate_policy(model, eval_env, EPISODES, deterministic=True)
    return {"return": float(mean), "seconds": seconds, "steps": int(model.num_timesteps)}


def rows_of(library: str, seed: int, r: dict) -> list[str]:
    return [library, str(seed), f"{r['return']:.1f}", f"{r['seconds']:.1f}", f"{r['steps']:,}",
            f"{r['sps']:,.0f}", f"{r['rss_mb']:.0f}"]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=300_000)
    parser.add_argument("--no-sb3", action="store_true")
    parser.add_argument("--worker", choices=["mentor", "sb3"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.worker:
        worker = mentor_worker if args.worker == "mentor" else sb3_worker
        report(worker(args.seed, args.steps))
        return
    libraries = ["mentor"] + (["sb3"] if has_sb3() and not args.no_sb3 else [])
    results: dict[str, list[dict]] = {lib: [] for lib in libraries}
    for seed in range(args.seeds):  # the libraries alternate: a machine's drift falls on both
        for lib in libraries:
            r = run_worker(__file__, ["--worker", lib, "--seed", str(seed),
                                      "--steps", str(args.steps)])  # fmt: skip
            results[lib].append(r)
            print(f"  {lib} seed {seed}: {r}", file=sys.stderr, flush=True)
    rows = [rows_of(lib, seed, r) for lib in libraries for seed, r in enumerate(results[lib])]
    for lib in libraries:
        med = {k: statistics.median(r[k] for r in results[lib]) for k in results[lib][0]}
        rows.append([f"**{lib} median**", "", f"{med['return']:.1f}",
                     f"{med['seconds']:.1f}", f"{med['steps']:,.0f}", f"{med['sps']:,.0f}",
                     f"{med['rss_mb']:.0f}"])  # fmt: skip
    print(f"\nPPO {ENV_ID}, {args.steps:,} env steps: deterministic {EPISODES}-episode mean "
          "return at the end, training time (evaluation excluded)")  # fmt: skip
    print(table(rows, HEADER))
    if "sb3" in results:
        sps = {lib: statistics.median(r["sps"] for r in results[lib]) for lib in libraries}
        print(f"median steps/s, mentor / SB3: {sps['mentor'] / sps['sb3']:.1f}x")


if __name__ == "__main__":
    main()
