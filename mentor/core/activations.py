"""Activation functions by name, with a faster tanh on the CPU.

On many CPUs PyTorch 2.13's tanh kernel is not vectorized and costs 5 to 9 times its sigmoid
(for a 2048 x 64 float32 tensor: 280 µs against 30 µs on the benchmark machine of 2026-11-25, 410
µs against 74 µs on an AMD EPYC, AVX-512 both). tanh is the default activation of on-policy
networks, so it was a third of a PPO gradient step there. Where it is vectorized (an Intel Xeon,
Sapphire Rapids: 36.5 µs) plain tanh is the faster, by 10-40% on PPO's passes:
``benchmarks/RESULTS.md`` has both; mentor keeps the identity, whose loss is smaller than its
gain. The
identity tanh(x) = 2 sigmoid(2x) - 1 gives the same function through the fast kernel; in float32
the two agree to about 1e-7, far below what training notices. The gradient, 1 - tanh(x)^2, is
PyTorch's own ``tanh_backward`` of the saved output, as ``nn.Tanh`` computes it.

One rule, fixed when a network is built (issue 11, item 7): on the CPU a ``tanh`` layer computes 2
sigmoid(2x) - 1 on every call, with or without gradients, whatever the size of its input; on any
other device it calls ``torch.tanh`` (its input's device is the network's, so this too is one choice
per network, also for a network moved after it was built). So the log-probabilities and values PPO
scores a rollout with, under ``inference_mode``, are bitwise those its update recomputes with
gradients: the first epoch's log-ratios are exactly 0. Before, tensors under 32,768 elements that
needed a gradient took ``torch.tanh`` (commit 8d3607c), so scoring and update used different
kernels.

The price of the rule is the ~10 µs a call of the Python autograd function on small minibatches
(BC's and PPO's few hundred rows), which that threshold avoided (DAgger on CartPole, BC at batch
128, took about 5% longer with the function, by the measurement of 8d3607c). Against it, scaling the
figures above linearly, torch's tanh kernel costs some 30 µs more than the sigmoid on a 256 x 64
minibatch: an estimate, not a measurement. ``python benchmarks/kernels.py`` measures both sides for
each kernel choice (this rule, plain torch, the old threshold).

``MENTOR_FAST_KERNELS=0`` in the environment turns mentor's fast kernels off: the networks built
while it is set use plain ``nn.Tanh``. It is read each time an activation is made, that is when a
network is built (``mentor.train``, ``mentor.load``), not at import.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch
from torch import nn

from mentor.errors import ConfigError

FAST_KERNELS_VARIABLE = "MENTOR_FAST_KERNELS"


def fast_kernels() -> bool:
    """Whether networks built now get the fast CPU kernels: yes unless MENTOR_FAST_KERNELS=0."""
    value = os.environ.get(FAST_KERNELS_VARIABLE, "").strip() or "1"
    if value not in ("0", "1"):
        raise ConfigError(f"{FAST_KERNELS_VARIABLE} must be 0 or 1 (unset: 1), got {value!r}")
    return value == "1"


def _tanh_via_sigmoid(x: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(x * 2).mul_(2).sub_(1)


class _TanhFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor) -> torch.Tensor:
        y = _tanh_via_sigmoid(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return torch.ops.aten.tanh_backward(grad, y)


class Tanh(nn.Module):
    """``nn.Tanh``'s function, computed as 2 sigmoid(2x) - 1 on the CPU (see the module)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not x.is_cpu:
            return torch.tanh(x)
        if torch.is_grad_enabled() and x.requires_grad:
            return _TanhFunction.apply(x)  # the same values as below, and a graph
        return _tanh_via_sigmoid(x)

    def extra_repr(self) -> str:
        return "2 sigmoid(2x) - 1 on the CPU"


def tanh() -> nn.Module:
    """A tanh layer: mentor's ``Tanh``, or ``nn.Tanh`` under ``MENTOR_FAST_KERNELS=0``."""
    return Tanh() if fast_kernels() else nn.Tanh()


ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "tanh": tanh,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
}
