"""Action distributions as small, fast modules: the network's output in, actions and log-probs out.

torch.distributions validates and allocates on every call; at one call per env step that is a
large share of a small network's time on a CPU, so these compute the few formulas directly.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from gymnasium import spaces
from torch import nn
from torch.nn import functional as F

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class ActionDist(nn.Module):
    """Interface: ``num_params`` network outputs per sample; actions shaped ``action_shape``."""

    num_params: int
    action_shape: tuple[int, ...]
    action_dtype: torch.dtype

    def sample(self, params: torch.Tensor, deterministic: bool) -> torch.Tensor:
        raise NotImplementedError

    def log_prob(self, params: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def entropy(self, params: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class Categorical(ActionDist):
    """Discrete actions; MultiDiscrete as independent categoricals (``nvec`` of them)."""

    def __init__(self, nvec: list[int]) -> None:
        super().__init__()
        self.nvec = nvec
        self.num_params = sum(nvec)
        self.single = len(nvec) == 1
        self.action_shape = () if self.single else (len(nvec),)
        self.action_dtype = torch.int64

    def _split(self, params: torch.Tensor) -> list[torch.Tensor]:
        return [params] if self.single else list(torch.split(params, self.nvec, dim=-1))

    def sample(self, params: torch.Tensor, deterministic: bool) -> torch.Tensor:
        picks = []
        for logits in self._split(params):
            if deterministic:
                picks.append(logits.argmax(-1))
            else:  # Gumbel-max: one uniform draw per logit, no normalisation needed
                noise = torch.rand_like(logits).clamp_(min=1e-20).log_().neg_().log_()
                picks.append((logits - noise).argmax(-1))
        return picks[0] if self.single else torch.stack(picks, -1)

    def log_prob(self, params: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        if self.single:
            return F.log_softmax(params, -1).gather(-1, actions.unsqueeze(-1)).squeeze(-1)
        return sum(
            F.log_softmax(logits, -1).gather(-1, actions[..., i : i + 1]).squeeze(-1)
            for i, logits in enumerate(self._split(params))
        )

    def entropy(self, params: torch.Tensor) -> torch.Tensor:
        total = 0
        for logits in self._split(params):
            log_p = F.log_softmax(logits, -1)
            total = total - (log_p.exp() * log_p).sum(-1)
        return total


class Bernoulli(ActionDist):
    """MultiBinary actions: independent bits."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.num_params = size
        self.action_shape = (size,)
        self.action_dtype = torch.float32

    def sample(self, params: torch.Tensor, deterministic: bool) -> torch.Tensor:
        if deterministic:
            return (params > 0).float()
        return (torch.rand_like(params) < torch.sigmoid(params)).float()

    def log_prob(self, params: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return -F.binary_cross_entropy_with_logits(params, actions, reduction="none").sum(-1)

    def entropy(self, params: torch.Tensor) -> torch.Tensor:
        p = torch.sigmoid(params)
        return F.binary_cross_entropy_with_logits(params, p, reduction="none").sum(-1)


class DiagGaussian(ActionDist):
    """Box actions: a Gaussian mean from the network and a learned, state-independent log std."""

    def __init__(self, size: int, log_std_init: float) -> None:
        super().__init__()
        self.num_params = size
        self.action_shape = (size,)
        self.action_dtype = torch.float32
        self.log_std = nn.Parameter(torch.full((size,), float(log_std_init)))

    def sample(self, params: torch.Tensor, deterministic: bool) -> torch.Tensor:
        if deterministic:
            return params
        return params + self.log_std.exp() * torch.randn_like(params)

    def log_prob(self, params: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        z = (actions - params) * torch.exp(-self.log_std)
        return (-0.5 * z.square() - self.log_std - LOG_SQRT_2PI).sum(-1)

    def entropy(self, params: torch.Tensor) -> torch.Tensor:
        per_dim = 0.5 + LOG_SQRT_2PI + self.log_std
        return per_dim.sum().expand(params.shape[0])


def make_dist(space: spaces.Space, log_std_init: float = 0.0) -> ActionDist:
    """The distribution for an action space (the spaces are checked at validation)."""
    if isinstance(space, spaces.Discrete):
        return Categorical([int(space.n)])
    if isinstance(space, spaces.MultiDiscrete):
        return Categorical([int(n) for n in np.asarray(space.nvec).reshape(-1)])
    if isinstance(space, spaces.MultiBinary):
        return Bernoulli(int(np.prod(space.shape)))
    if isinstance(space, spaces.Box):
        return DiagGaussian(int(np.prod(space.shape)), log_std_init)
    raise TypeError(f"no action distribution for {space}")
