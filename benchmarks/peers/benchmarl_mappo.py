"""BenchMARL's MAPPO on PettingZoo's simple_spread_v3 (3 agents, 25 cycles, local_ratio 0.5,
discrete actions): train for a number of frames, evaluate the final policy, print one JSON line.

Run by BenchMARL's own venv (``make bench-benchmarl`` makes ``.venv-benchmarl``), never by
mentor's: BenchMARL's PettingZoo tasks load through torchrl's wrapper, which imports
``pettingzoo.mpe`` (PettingZoo 1.24.x; mentor uses 1.25+ and mpe2). This file imports nothing of
mentor's; ``benchmarks/multiagent.py --benchmarl PYTHON`` runs it in a subprocess per seed.

    .venv-benchmarl/bin/python benchmarks/peers/benchmarl_mappo.py --frames 400000 --seed 0

What is BenchMARL's default and what is set here:

- Algorithm: ``MappoConfig.get_from_yaml()`` (BenchMARL's ``conf/algorithm/mappo.yaml``), as is.
- Model: ``MlpConfig.get_from_yaml()`` (``conf/model/layers/mlp.yaml``: 256-256 tanh), as is; the
  critic gets a copy of it (``critic_model_config`` left to its default).
- Experiment: ``ExperimentConfig.get_from_yaml()`` (``conf/experiment/base_experiment.yaml``), with
  only these changed: ``max_n_frames`` (the budget), the three devices ``cpu``,
  ``prefer_continuous_actions=False`` (simple_spread supports both action kinds and BenchMARL
  prefers continuous ones; mentor's env has 5 discrete actions), no evaluation during training
  (``evaluation=False``, ``render=False``: this script evaluates once at the end), csv logging only
  (``loggers=["csv"]``, ``create_json=False``) into a temporary folder, no checkpoints.
- Task: ``PettingZooTask.SIMPLE_SPREAD.get_from_yaml()`` (``conf/task/pettingzoo/
  simple_spread.yaml``: N 3, local_ratio 0.5, max_cycles 100) with ``max_cycles=25`` (and N,
  local_ratio restated). ``continuous_actions`` is passed to PettingZoo by BenchMARL from
  ``prefer_continuous_actions``; the script checks it is False.

Frames: BenchMARL counts ``batch.numel()`` of the collector's batches. A PettingZoo env under
torchrl's wrapper has batch size ``()`` with the agents in a group dimension (``agent``: 3), and
BenchMARL steps ``on_policy_n_envs_per_worker`` (10) copies in a ``SerialEnv``, so a batch of 6000
frames is 10 copies x 600 steps and one frame is one step of all 3 agents of one copy: mentor's
env step. The script checks this on each batch (``agents_per_frame`` in the output). Training
runs whole collection batches: ceil(frames / 6000) of them, so ``env_steps`` (the frames BenchMARL
collected) can exceed ``--frames`` by up to 5,999. BenchMARL builds each of the 10 copies with the
experiment's seed, and torchrl resets them without one, so all 10 start every episode from the
same state (they differ only in the actions sampled); that is BenchMARL's behaviour, kept here.

Return (the units of mentor's team return): the final policy acts deterministically (the mode of
its categorical distribution: BenchMARL's ``evaluation_deterministic_actions`` default) in a fresh
env of the same task, seeded ``10_000 + seed`` once, for ``--episodes`` episodes of 25 steps. Per
episode: each agent's rewards summed over the episode's 25 steps, then the mean over the 3
agents. ``return`` is the mean of that over the episodes; ``returns`` lists them per episode.

Threads: one (``torch.set_num_threads(1)``). torchrl's batched env raises torch's thread count
when it closes (to ``min(initial threads, threads + workers)``: 2 here), and the collector closes
its ``SerialEnv`` as it collects its last batch, so the last update and the evaluation would run
on 2 threads; the script sets it back to 1 after each collection and before the evaluation.
``torch_threads`` lists the counts found after each collection.

``train_seconds`` is the wall time of ``Experiment.run()`` (collection, training, csv logging; no
evaluation), ``collect_seconds`` and ``update_seconds`` its two parts as timed by callbacks, and
``fps`` is ``env_steps / train_seconds``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import sys
import tempfile
import time

import torch
from benchmarl.algorithms import MappoConfig
from benchmarl.environments import PettingZooTask
from benchmarl.experiment import Callback, Experiment, ExperimentConfig
from benchmarl.models import MlpConfig
from torchrl.envs.utils import ExplorationType, set_exploration_type

N, LOCAL_RATIO, MAX_CYCLES = 3, 0.5, 25


class Clock(Callback):
    """Collection and update seconds; the agents in one frame of each batch."""

    def __init__(self) -> None:
        super().__init__()
        self.mark = time.perf_counter()
        self.collect = self.update = 0.0
        self.agents_per_frame: set[int] = set()
        self.threads: set[int] = set()

    def on_batch_collected(self, batch) -> None:
        now = time.perf_counter()
        self.collect += now - self.mark
        self.mark = now
        reward = batch.get(("next", "agent", "reward"))  # (copies, steps, agents, 1)
        self.agents_per_frame.add(reward.numel() // batch.numel())
        self.threads.add(torch.get_num_threads())
        torch.set_num_threads(1)

    def on_train_end(self, training_td, group: str) -> None:
        now = time.perf_counter()
        self.update += now - self.mark
        self.mark = now


def main() -> None:
    """Everything but the JSON line goes to stderr: torchrl logs to stdout, and BenchMARL prints."""
    for handler in logging.getLogger("torchrl").handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
            handler.setStream(sys.stderr)
    with contextlib.redirect_stdout(sys.stderr):
        result = run()
    print(json.dumps(result), flush=True)


def run() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, required=True, help="env steps (frames) to train")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--episodes", type=int, default=100, help="final evaluation episodes")
    args = parser.parse_args()

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)

    task = PettingZooTask.SIMPLE_SPREAD.get_from_yaml()
    task.config.update({"N": N, "local_ratio": LOCAL_RATIO, "max_cycles": MAX_CYCLES})

    config = ExperimentConfig.get_from_yaml()
    config.max_n_frames = args.frames
    config.sampling_device = config.train_device = config.buffer_device = "cpu"
    config.prefer_continuous_actions = False
    config.evaluation = False
    config.render = False
    config.loggers = ["csv"]
    config.create_json = False
    config.checkpoint_interval = 0
    config.checkpoint_at_end = False
    config.save_folder = tempfile.mkdtemp(prefix="benchmarl-bench-")

    clock = Clock()
    experiment = Experiment(
        task=task,
        algorithm_config=MappoConfig.get_from_yaml(),
        model_config=MlpConfig.get_from_yaml(),  # the critic's: a copy (BenchMARL's default)
        seed=args.seed,
        config=config,
        callbacks=[clock],
    )
    if experiment.continuous_actions:
        raise SystemExit("BenchMARL chose continuous actions; mentor's env has discrete ones")
    if list(experiment.group_map) != ["agent"] or len(experiment.group_map["agent"]) != N:
        raise SystemExit(f"unexpected agent groups: {experiment.group_map}")

    clock.mark = tic = time.perf_counter()
    experiment.run()  # closes its collector and envs at the end
    train_seconds = time.perf_counter() - tic

    torch.set_num_threads(1)
    env = task.get_env_fun(
        num_envs=1, continuous_actions=False, seed=10_000 + args.seed, device="cpu"
    )()
    returns = []
    with torch.no_grad(), set_exploration_type(ExplorationType.DETERMINISTIC):
        for _ in range(args.episodes):
            rollout = env.rollout(
                max_steps=MAX_CYCLES,
                policy=experiment.policy,
                auto_cast_to_device=True,
                break_when_any_done=True,
            )
            reward = rollout.get(("next", "agent", "reward"))  # (steps, agents, 1)
            if reward.shape != (MAX_CYCLES, N, 1):
                raise SystemExit(f"an evaluation episode's rewards have shape {reward.shape}")
            returns.append(reward.sum(0).mean().item())  # sum over steps, mean over agents
    env.close()

    mean = sum(returns) / len(returns)
    sd = math.sqrt(sum((r - mean) ** 2 for r in returns) / max(len(returns) - 1, 1))
    return {
        "method": "benchmarl-mappo",
        "seed": args.seed,
        "env_steps": experiment.total_frames,
        "train_seconds": train_seconds,
        "collect_seconds": clock.collect,
        "update_seconds": clock.update,
        "fps": experiment.total_frames / train_seconds,
        "return": mean,
        "return_sd": sd,
        "episodes": len(returns),
        "returns": returns,
        "agents_per_frame": sorted(clock.agents_per_frame),
        "torch_threads": sorted(clock.threads),
        "continuous_actions": experiment.continuous_actions,
        "versions": versions(),
    }


def versions() -> dict[str, str]:
    from importlib.metadata import version

    names = ("benchmarl", "torchrl", "tensordict", "torch", "pettingzoo")
    return {name: version(name) for name in names}


if __name__ == "__main__":
    main()
