"""Activation functions by name, with a faster tanh on the CPU.

PyTorch 2.13's CPU tanh kernel costs about nine times its sigmoid (280 µs against 30 µs for a
2048 x 64 float32 tensor on this project's benchmark machine, AVX-512 or AVX2 alike). tanh is the
default activation of on-policy networks, so it was a third of a PPO gradient step there. The
identity tanh(x) = 2 sigmoid(2x) - 1 gives the same function through the fast kernel; in float32
the two agree to about 1e-7, far below what training notices. The gradient, 1 - tanh(x)^2, is
PyTorch's own ``tanh_backward`` of the saved output, as ``nn.Tanh`` computes it. Small tensors
that need a gradient (BC's and PPO's minibatches of a few hundred) and other devices than the CPU
use ``torch.tanh`` itself.
"""

from __future__ import annotations

import torch
from torch import nn


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


GRAD_MIN_SIZE = 1 << 15


class Tanh(nn.Module):
    """``nn.Tanh`` with the same values, computed through sigmoid on the CPU (see the module)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not x.is_cpu:
            return torch.tanh(x)
        if torch.is_grad_enabled() and x.requires_grad:
            # A Python autograd function costs ~10 µs a call: below GRAD_MIN_SIZE elements
            # (a batch of 512 at width 64) that is more than torch.tanh's slow kernel costs.
            return _TanhFunction.apply(x) if x.numel() >= GRAD_MIN_SIZE else torch.tanh(x)
        return _tanh_via_sigmoid(x)


ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": Tanh,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
}
