"""RLlib's PPO on CartPole-v1 until an evaluation mean >= 475: one JSON line for distributed.py.

Runs in its own venv (``make bench-rllib``: ``ray[rllib]==2.60.0`` pins gymnasium 1.2 and more
that clash with mentor's venv) and imports nothing of mentor's.

Settings: RLlib's new API stack with its PPO defaults (train batch 4000, minibatch 128, clip
0.3, KL loss, lambda 1.0, gamma 0.99) plus what RLlib's tuned example
``rllib/tuned_examples/ppo/cartpole_ppo.py`` sets for CartPole: lr 3e-4, 6 epochs,
vf_loss_coeff 0.01, one hidden layer of 32 linear units shared by policy and value. Ours on top:
torch, CPU only, torch 1 thread, the seed, and 8 envs in all like mentor's preset
(``--env-runners`` 0: 8 envs sampled in the main process; 1: 8 on one runner; 2: 4 each).

Stop: after each training iteration (4000 env steps, close to mentor's validation every 4096),
RLlib's evaluation runs 20 greedy episodes in the main process (mentor's validation: 20
episodes); solved when their mean >= 475 (``evaluation/env_runners/episode_return_mean``, the
smoothing window set to those 20 episodes), else stop at 200,000 env steps sampled for
training. ``train_seconds`` leaves out the evaluation's time (timing RLlib's own evaluation
step), as mentor's train seconds leave out its validation; ``eval_seconds`` is that time and
``wall_seconds`` the two together. Ray's start-up and building the algorithm are
``startup_seconds``.

    .venv-rllib/bin/python benchmarks/peers/rllib_ppo.py --env-runners 1 --seed 0
"""

from __future__ import annotations

import argparse
import json
import os
import time

TARGET = 475.0
BUDGET = 200_000
ENVS = 8
EVAL_EPISODES = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-runners", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", type=float, default=TARGET)
    parser.add_argument("--budget", type=int, default=BUDGET)
    args = parser.parse_args()

    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    import ray
    import torch
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.utils.metrics import (
        ENV_RUNNER_RESULTS,
        EPISODE_RETURN_MEAN,
        EVALUATION_RESULTS,
        NUM_ENV_STEPS_SAMPLED_LIFETIME,
    )

    torch.set_num_threads(1)
    runners = args.env_runners
    tic = time.perf_counter()
    ray.init(
        num_cpus=runners + 1,
        num_gpus=0,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}},
    )
    config = (
        PPOConfig()
        .environment("CartPole-v1")
        .framework("torch")
        .env_runners(
            num_env_runners=runners,
            num_envs_per_env_runner=ENVS // max(runners, 1),
            num_cpus_per_env_runner=1,
            num_gpus_per_env_runner=0,
        )
        .learners(num_learners=0, num_gpus_per_learner=0)
        .resources(num_cpus_for_main_process=1)
        .training(lr=3e-4, num_epochs=6, vf_loss_coeff=0.01)
        .rl_module(
            model_config={
                "fcnet_hiddens": [32],
                "fcnet_activation": "linear",
                "vf_share_layers": True,
            }
        )
        .evaluation(
            evaluation_interval=1,
            evaluation_duration=EVAL_EPISODES,
            evaluation_duration_unit="episodes",
            evaluation_num_env_runners=0,
            evaluation_config=PPOConfig.overrides(explore=False),
        )
        .reporting(metrics_num_episodes_for_smoothing=EVAL_EPISODES)
        .debugging(seed=args.seed, log_level="ERROR")
    )
    algo = config.build_algo()
    startup = time.perf_counter() - tic

    # Time RLlib's own evaluation step, to leave it out of the training time.
    run_evaluation, evaluating = algo._run_one_evaluation, [0.0]

    def timed_evaluation(*args, **kwargs):
        start = time.perf_counter()
        try:
            return run_evaluation(*args, **kwargs)
        finally:
            evaluating[0] += time.perf_counter() - start

    algo._run_one_evaluation = timed_evaluation
    steps, solved, iterations, eval_return = 0, False, 0, float("nan")
    tic = time.perf_counter()
    while steps < args.budget:
        result = algo.train()
        iterations += 1
        steps = int(result[ENV_RUNNER_RESULTS][NUM_ENV_STEPS_SAMPLED_LIFETIME])
        evaluation = result.get(EVALUATION_RESULTS, {}).get(ENV_RUNNER_RESULTS, {})
        eval_return = float(evaluation.get(EPISODE_RETURN_MEAN, float("nan")))
        if eval_return >= args.target:
            solved = True
            break
    wall = time.perf_counter() - tic
    seconds = wall - evaluating[0]
    algo.stop()
    ray.shutdown()
    print(
        json.dumps(
            {
                "solved": solved,
                "env_steps": steps,
                "train_seconds": seconds,
                "startup_seconds": startup,
                "steps_per_second": steps / seconds,
                "eval_seconds": evaluating[0],
                "wall_seconds": wall,
                "iterations": iterations,
                "eval_return": eval_return,
                "env_runners": runners,
                "seed": args.seed,
            }
        )
    )


if __name__ == "__main__":
    main()
