"""tanh's kernel choices, timed where PPO spends them (issue 11, item 7).

mentor's tanh layers take one kernel per network (``mentor/core/activations.py``). This script
times each way of computing tanh on CartPole's default actor-critic (4 -> 64 -> 64, tanh,
separate actor and critic bodies: four tanh layers a pass), one torch thread, as mentor trains:

    fast         mentor's rule: 2 sigmoid(2x) - 1 on the CPU for every call (with gradients
                 through a Python autograd function whose backward is aten's tanh_backward)
    torch        MENTOR_FAST_KERNELS=0: nn.Tanh
    threshold    the rule before issue 11, for reference: torch.tanh for tensors under 32,768
                 elements that need a gradient, the fast path otherwise
    sigmoid ops  for reference: the same identity in plain differentiable ops (no Python
                 function; autograd records three ops instead of one)

and, for each, in µs per call (median over rounds; within a round the choices alternate, so
drift in the machine's speed hits them alike):

    step 256     one PPO gradient step (``ppo_update``: one epoch of one minibatch, loss, backward,
                 clipping, fused Adam) on 256 rows: the CartPole preset's minibatch, 8 envs x 32
    step 2048    the same on 2048 rows: the preset's minibatch with 64 envs x 32 steps (the
                 64-env throughput rows of ``benchmarks/ppo_cartpole.py``)
    forward 8    a forward pass under inference_mode on 8 rows: one collection step of 8 envs
    forward 4096 the same on 4096 rows: one chunk of ``score_rollout``

Whole training is ``benchmarks/ppo_cartpole.py`` (time-to-solve, 64-env throughput), run once as
it is and once under ``MENTOR_FAST_KERNELS=0`` (its worker processes inherit the variable); BC
at batch 128, which the threshold was measured on, is ``benchmarks/imitation.py --only DAgger``.

    python benchmarks/kernels.py                         # the table
    python benchmarks/kernels.py --rounds 2 --calls 2    # a smoke run (its times mean nothing)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import table

GRAD_MIN_SIZE = 1 << 15  # the threshold of commit 8d3607c
CHOICES = ("fast", "torch", "threshold", "sigmoid ops")
MEASURES = {"step 256": 256, "step 2048": 2048, "forward 8": 8, "forward 4096": 4096}


@contextlib.contextmanager
def fast_kernels(value: str) -> Iterator[None]:
    before = os.environ.get("MENTOR_FAST_KERNELS")
    os.environ["MENTOR_FAST_KERNELS"] = value
    try:
        yield
    finally:
        if before is None:
            del os.environ["MENTOR_FAST_KERNELS"]
        else:
            os.environ["MENTOR_FAST_KERNELS"] = before


def reference_layers() -> dict[str, type]:
    """The two reference choices, as layers that replace mentor's Tanh in a built network."""
    import torch

    from mentor.core.activations import Tanh

    class ThresholdTanh(Tanh):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            needs_grad = torch.is_grad_enabled() and x.requires_grad
            if x.is_cpu and needs_grad and x.numel() < GRAD_MIN_SIZE:
                return torch.tanh(x)
            return super().forward(x)

    class SigmoidOpsTanh(Tanh):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.is_cpu and torch.is_grad_enabled() and x.requires_grad:
                return torch.sigmoid(x * 2) * 2 - 1
            return super().forward(x)

    return {"threshold": ThresholdTanh, "sigmoid ops": SigmoidOpsTanh}


def network(choice: str):
    """CartPole's default actor-critic, the same initial weights for every choice."""
    import gymnasium as gym
    import numpy as np
    import torch

    from mentor.core.activations import Tanh
    from mentor.core.networks import ActorCritic
    from mentor.experiment import build

    config = build(method="ppo", env_id="CartPole-v1").agent.network
    torch.manual_seed(0)
    with fast_kernels("0" if choice == "torch" else "1"):
        obs_space = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
        policy = ActorCritic(obs_space, gym.spaces.Discrete(2), config)
    layer = reference_layers().get(choice)
    for module in list(policy.modules()):
        for name, child in module.named_children():
            if layer is not None and type(child) is Tanh:
                setattr(module, name, layer())
    return policy


def step_call(policy, rows: int) -> Callable[[], None]:
    """One PPO gradient step on ``rows`` random CartPole-like transitions, as ``ppo_update``."""
    import torch

    from mentor.core.storage import RolloutStorage
    from mentor.experiment import build
    from mentor.methods.ppo import ppo_update

    cfg = build(method="ppo", env_id="CartPole-v1").method
    cfg = cfg.model_copy(update={"num_epochs": 1, "num_minibatches": 1, "target_kl": None})
    num_envs = 8
    dist = policy.dist
    storage = RolloutStorage(
        rows // num_envs, num_envs, (4,), torch.float32, dist.action_shape, dist.action_dtype
    )
    generator = torch.Generator().manual_seed(0)
    storage.obs.copy_(torch.randn(storage.obs.shape, generator=generator))
    storage.actions.copy_(torch.randint(0, 2, storage.actions.shape, generator=generator))
    with torch.inference_mode():
        log_probs, _, values = policy.evaluate_actions(
            storage.obs.flatten(0, 1), storage.actions.flatten(0, 1)
        )
    storage.log_probs.copy_(log_probs.view_as(storage.log_probs))
    storage.values.copy_(values.view_as(storage.values))
    advantages = torch.randn(storage.values.shape, generator=generator)
    returns = storage.values + advantages
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-5, eps=cfg.adam_eps, fused=True)

    def call() -> None:
        ppo_update(policy, optimizer, storage, advantages, returns, cfg, 0.2, 0.0, generator)

    return call


def forward_call(policy, rows: int) -> Callable[[], None]:
    """A forward pass of actor and critic under inference_mode on ``rows`` observations."""
    import torch

    obs = torch.randn(rows, 4, generator=torch.Generator().manual_seed(0))

    def call() -> None:
        with torch.inference_mode():
            policy(obs)

    return call


def measure(rounds: int, calls: int, threads: int) -> dict[str, dict[str, float]]:
    """µs per call, median over rounds, for every measure and choice."""
    import torch

    torch.set_num_threads(threads)
    results: dict[str, dict[str, float]] = {}
    for label, rows in MEASURES.items():
        make = step_call if label.startswith("step") else forward_call
        work = {choice: make(network(choice), rows) for choice in CHOICES}
        times: dict[str, list[float]] = {choice: [] for choice in CHOICES}
        for round_ in range(rounds + 1):  # round 0 warms up and is dropped
            order = CHOICES[round_ % len(CHOICES) :] + CHOICES[: round_ % len(CHOICES)]
            for choice in order:
                call = work[choice]
                tic = time.perf_counter()
                for _ in range(calls):
                    call()
                if round_:
                    times[choice].append((time.perf_counter() - tic) / calls * 1e6)
        results[label] = {choice: statistics.median(t) for choice, t in times.items()}
        print(f"  {label}: {results[label]}", file=sys.stderr, flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21, help="timed rounds (median)")
    parser.add_argument("--calls", type=int, default=200, help="calls per round and choice")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    if os.environ.get("MENTOR_FAST_KERNELS"):
        print("MENTOR_FAST_KERNELS is ignored here: every choice is timed", file=sys.stderr)
    import torch

    results = measure(args.rounds, args.calls, args.threads)
    rows = [
        [label, *(f"{r[c]:,.1f}" for c in CHOICES), f"{r['torch'] / r['fast']:.2f}"]
        for label, r in results.items()
    ]
    print(
        f"\ntanh kernels, CartPole's default actor-critic: µs per call, median of {args.rounds}"
        f" rounds x {args.calls} calls (torch {torch.__version__}, {args.threads} thread)"
    )
    print(table(rows, ["measure", *CHOICES, "torch / fast"]))


if __name__ == "__main__":
    main()
