"""Action distributions as small, fast modules: the network's output in, actions and log-probs out.

torch.distributions validates and allocates on every call; at one call per env step that is a
large share of a small network's time on a CPU, so these compute the few formulas directly.

    Categorical      Discrete, and MultiDiscrete as independent categoricals (PPO, SAC, DQN)
    Bernoulli        MultiBinary
    DiagGaussian     Box: a mean and a learned state-independent log std (PPO)
    SquashedGaussian Box: tanh of a Gaussian whose log std the network outputs (SAC)
    StateGaussian    Box: a Gaussian whose log std the network outputs (PPO with gSDE)
    Deterministic    Box: the network's action itself, no density (TD3)

Each gives ``sample`` (``deterministic``: the mode), ``log_prob``, ``entropy`` and
``fitting_log_prob``: the log-likelihood term behaviour cloning maximises, which is the
log-probability except where a distribution says otherwise (SquashedGaussian: beta-NLL).

Action masks (``envs/masks.py``) act on the parameters, not on each formula: ``Categorical.
masked(params, mask)`` sets the logits of disallowed actions to the most negative finite float,
and sample, log_prob, entropy and the mode of the result are those of the distribution
renormalised over the allowed actions (a masked action's probability is exactly 0 and its
0 * log 0 term of the entropy exactly 0, where -inf would make it NaN). One operation, so every
consumer — a rollout's sampling, PPO's update, an agent's mode — honours a mask the same way.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from gymnasium import spaces
from torch import nn
from torch.nn import functional as F

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
LOG_2 = math.log(2.0)
# Bounds of a squashed Gaussian's log std, as in SAC's authors' code: exp(-20) is a point mass for
# float32 purposes, exp(2) ≈ 7.4 already saturates tanh for most samples.
LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
# The largest |a| a squashed Gaussian is asked to explain: atanh(1 - 1e-6) ≈ 7.25. Demonstrated
# actions on the bounds (common: experts saturate) would otherwise have log-likelihood -inf.
SQUASH_EDGE = 1.0 - 1e-6


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

    def masked(self, params: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The parameters of the distribution restricted to the actions ``mask`` allows."""
        raise TypeError(
            f"action masks are for Discrete and MultiDiscrete actions, not {type(self).__name__}"
        )

    has_density: bool = True

    def fitting_log_prob(self, params: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """The log-likelihood term to maximise when fitting demonstrated actions."""
        return self.log_prob(params, actions)


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

    def masked(self, params: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Logits with the disallowed actions' set to the lowest finite float (``mask``: bool,
        shaped like ``params``, MultiDiscrete's dimensions concatenated; each dimension allows
        at least one action)."""
        return mask_scores(params, mask)

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


def mask_scores(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``scores`` (logits, Q-values) with the entries ``mask`` disallows set to the lowest
    finite float, so that no max, argmax or softmax picks them."""
    return scores.masked_fill(~mask, torch.finfo(scores.dtype).min)


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


def squashed_gaussian(
    mean: torch.Tensor, log_std: torch.Tensor, noise: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """a = tanh(u), u = mean + std * noise, and log pi(a|s) summed over action dimensions.

    Change of variables (Haarnoja et al. 2018a, appendix C): log pi(a) = log N(u) - sum log(1 -
    tanh(u)^2). In float32, tanh(u) rounds to +-1 once |u| > ~8.5 and the log to -inf; the
    identity log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)) stays finite and exact for
    every u. The Gaussian term uses the noise itself: (u - mean) / std = noise.
    """
    u = mean + log_std.exp() * noise
    gaussian = (-0.5 * noise.square() - log_std - LOG_SQRT_2PI).sum(-1)
    log_det_jacobian = (2.0 * (LOG_2 - u - F.softplus(-2.0 * u))).sum(-1)
    return torch.tanh(u), gaussian - log_det_jacobian


class SquashedGaussian(ActionDist):
    """Box actions in [-1, 1]: tanh of a Gaussian whose mean and log std the network outputs
    (``params`` = mean then log std, the log std clamped to [LOG_STD_MIN, LOG_STD_MAX])."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.num_params = 2 * size
        self.action_shape = (size,)
        self.action_dtype = torch.float32

    @staticmethod
    def split(params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = params.chunk(2, -1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def sample(self, params: torch.Tensor, deterministic: bool) -> torch.Tensor:
        mean, log_std = params.chunk(2, -1)
        if deterministic:
            return torch.tanh(mean)
        std = log_std.clamp(LOG_STD_MIN, LOG_STD_MAX).exp()
        return torch.tanh(mean + std * torch.randn_like(mean))

    def sample_with_log_prob(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparametrised sample and its log-probability (SAC's losses)."""
        mean, log_std = self.split(params)
        return squashed_gaussian(mean, log_std, torch.randn_like(mean))

    def _per_dim(
        self, params: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The Gaussian log-density of atanh(a) per dimension, the log std, and the summed
        tanh Jacobian term (in its exact, finite form: see ``squashed_gaussian``)."""
        mean, log_std = self.split(params)
        u = torch.atanh(actions.clamp(-SQUASH_EDGE, SQUASH_EDGE))
        noise = (u - mean) * torch.exp(-log_std)
        per_dim = -0.5 * noise.square() - log_std - LOG_SQRT_2PI
        log_det_jacobian = (2.0 * (LOG_2 - u - F.softplus(-2.0 * u))).sum(-1)
        return per_dim, log_std, log_det_jacobian

    def log_prob(self, params: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        per_dim, _, log_det_jacobian = self._per_dim(params, actions)
        return per_dim.sum(-1) - log_det_jacobian

    def fitting_log_prob(self, params: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """beta-NLL with beta = 1 (Seitzer et al. 2022, ICLR, "On the pitfalls of
        heteroscedastic uncertainty estimation"): each dimension's term weighed by its
        variance, held constant. A state-dependent std otherwise lets plain likelihood shrink the
        std where the data is easy to fit and neglect the mean elsewhere (measured: Pendulum BC
        at random level); with the weights the mean learns as under squared error (before the
        tanh) and the std by likelihood. The Jacobian term depends on the data only."""
        per_dim, log_std, _ = self._per_dim(params, actions)
        return (per_dim * (2.0 * log_std).exp().detach()).sum(-1)

    def entropy(self, params: torch.Tensor) -> torch.Tensor:
        """The entropy of the Gaussian before the tanh: the squashed one has no closed form."""
        _, log_std = self.split(params)
        return (0.5 + LOG_SQRT_2PI + log_std).sum(-1)


class StateGaussian(ActionDist):
    """Box actions: a Gaussian whose mean and log std the network outputs (``params`` = mean
    then log std): PPO's policy under gSDE (``core/sde.py``), whose std depends on the state."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.num_params = 2 * size
        self.action_shape = (size,)
        self.action_dtype = torch.float32

    def sample(self, params: torch.Tensor, deterministic: bool) -> torch.Tensor:
        mean, log_std = params.chunk(2, -1)
        if deterministic:
            return mean
        return mean + log_std.exp() * torch.randn_like(mean)

    def log_prob(self, params: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        mean, log_std = params.chunk(2, -1)
        z = (actions - mean) * torch.exp(-log_std)
        return (-0.5 * z.square() - log_std - LOG_SQRT_2PI).sum(-1)

    def entropy(self, params: torch.Tensor) -> torch.Tensor:
        _, log_std = params.chunk(2, -1)
        return (0.5 + LOG_SQRT_2PI + log_std).sum(-1)


class Deterministic(ActionDist):
    """Box actions that are the network's output itself (TD3's actor, already in [-1, 1]): the
    mode and every sample are ``params``. It has no density: fitting it to demonstrations is by
    squared error (behaviour cloning's ``loss: mse``)."""

    has_density = False

    def __init__(self, size: int) -> None:
        super().__init__()
        self.num_params = size
        self.action_shape = (size,)
        self.action_dtype = torch.float32

    def sample(self, params: torch.Tensor, deterministic: bool) -> torch.Tensor:
        return params

    def log_prob(self, params: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        raise TypeError("a deterministic policy has no log-probability (fit it by squared error)")

    def entropy(self, params: torch.Tensor) -> torch.Tensor:
        return params.new_zeros(params.shape[0])


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
