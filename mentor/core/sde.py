"""Generalized state-dependent exploration, gSDE (Raffin, Kober & Stulp 2021, "Smooth
exploration for robotic reinforcement learning", CoRL): exploration noise that is a function of
the state, drawn once and kept for many steps, instead of fresh noise at every step.

The policy's last hidden layer gives features z(s). A learned matrix of log stds, log sigma
(features x action dimensions), makes each action dimension's variance state-dependent:

    var_k(s) = sum_j z_j(s)^2 sigma_jk^2 (+ 1e-6)

and the policy is a Gaussian N(mu(s), var(s)) (before SAC's tanh): its log-probability, entropy
and samples in the updates are the ordinary diagonal Gaussian's, of these parameters. Whether
the std's gradient reaches the features is the method's choice, as in the authors'
implementation: PPO holds them (``learn_features`` False: only the mean shapes them), SAC
learns them, so that its entropy bonus widens the noise through z(s) as well as sigma. Held,
SAC's noise grew from log sigma alone (-3.67 in RL Zoo's MountainCarContinuous values) and
reached the flag in its 13th episode instead of its 2nd (seed 0; benchmarks/RESULTS.md).

Exploration while collecting draws a matrix eps ~ N(0, 1) per env and acts with

    a = mu(s) + z(s) . (eps * sigma)

which has exactly the policy's distribution at every single state (a sum of independent
Gaussians: variance sum_j z_j^2 sigma_jk^2), but is the same function of the state for every
step until eps is drawn again: every ``sample_freq`` steps of an env, or once a rollout (-1: at
the start of PPO's rollout, of every train_freq steps of SAC's). A nearby state gets nearly the
same push, so the exploration is smooth in time where per-step noise cancels itself out (the
car of MountainCarContinuous stands still under white noise; gSDE's push carries it up).
"""

from __future__ import annotations

import torch
from torch import nn

VARIANCE_FLOOR = 1e-6  # as in Raffin et al.'s implementation: a variance never exactly 0


class StateDependentStd(nn.Module):
    """The learned log sigma (features x action dimensions) and what it gives: each state's log
    std, and the collection noise z(s) . (eps * sigma)."""

    def __init__(
        self, features: int, action_size: int, log_std_init: float, learn_features: bool = False
    ) -> None:
        super().__init__()
        self.features, self.action_size = features, action_size
        self.learn_features = learn_features
        self.log_std = nn.Parameter(torch.full((features, action_size), float(log_std_init)))

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """log std(s), (batch, action_size), for the features of a batch of states."""
        z = latent if self.learn_features else latent.detach()
        variance = z.square() @ (2.0 * self.log_std).exp()
        return 0.5 * (variance + VARIANCE_FLOOR).log()

    def noise(self, latent: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """z(s) . (eps * sigma) for each row, ``eps`` (rows, features, action_size)."""
        return torch.einsum("bf,bfa->ba", latent.detach(), eps * self.log_std.exp())


class ExplorationNoise:
    """The collection loop's eps matrices, one per env, and when they are drawn again: before
    the first step, then every ``sample_freq`` steps (of each env), or at each ``new_rollout``
    when ``sample_freq`` is -1. Drawn from torch's global generator (saved and restored with the
    run's), and saved themselves (``state_dict``), so that a resumed run explores exactly as an
    unbroken one."""

    def __init__(self, rows: int, features: int, action_size: int, sample_freq: int) -> None:
        self.shape = (rows, features, action_size)
        self.sample_freq = sample_freq
        self.eps = torch.zeros(self.shape)
        self.steps = 0  # steps since the last draw
        self.draws = 0

    def draw(self) -> None:
        self.eps = torch.randn(self.shape)
        self.steps = 0
        self.draws += 1

    def new_rollout(self) -> None:
        if self.sample_freq == -1:
            self.draw()

    def step(self) -> torch.Tensor:
        """The matrices for this step (drawn again first when due)."""
        due = self.sample_freq > 0 and self.steps >= self.sample_freq
        if self.draws == 0 or due:
            self.draw()
        self.steps += 1
        return self.eps

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"eps": self.eps.clone(), "counters": torch.tensor([self.steps, self.draws])}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.eps = state["eps"].clone()
        self.steps, self.draws = (int(v) for v in state["counters"])
