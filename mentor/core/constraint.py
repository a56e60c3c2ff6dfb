"""Training under a cost limit (constrained RL, issue 18): the Lagrange multiplier and the cost
critic that PPO-Lagrangian and Lagrangian SAC share.

The problem is max_pi J_r(pi) subject to J_c(pi) <= d, J_c the expected episode cost and d the
limit. Its Lagrangian, min_{lambda >= 0} max_pi J_r - lambda (J_c - d), is solved by alternating:
the policy ascends J_r - lambda J_c (one more named loss term in the method's update), and the
multiplier follows the constraint's violation, measured on the episodes that finished since the
last update:

- ``lagrangian``: projected gradient ascent, lambda <- max(0, lambda + lr (J_c - d));
- ``pid`` (Stooke, Achiam & Abbeel 2020, "Responsive safety in RL by PID Lagrangian methods"):
  lambda = max(0, Kp P + I + Kd D), with P = the smoothed excess J_c - d, I <- max(0, I + Ki
  (J_c - d)) the integral (the lagrangian update is its I term alone), and D = the rise of the
  smoothed cost over ``d_delay`` updates (positive only): damping where gradient ascent
  overshoots and oscillates.

The cost critic estimates the expected discounted cost from a state (PPO's cost advantages, by
GAE over the stored per-step costs) or from a state and action (SAC's cost Q).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from mentor.core.networks import mlp
from mentor.core.returns import gae
from mentor.core.storage import RolloutStorage
from mentor.core.vec_env import Episode
from mentor.sections import NetworkConfig


@dataclass
class Multiplier:
    """The Lagrange multiplier and, for ``pid``, its controller's memory (saved as JSON)."""

    kind: str
    value: float = 0.0
    lr: float = 0.05
    kp: float = 0.1
    ki: float = 0.01
    kd: float = 0.01
    ema: float = 0.95
    d_delay: int = 10
    integral: float = 0.0
    smoothed_p: float | None = None  # smoothed J_c for P
    smoothed_d: float | None = None  # smoothed J_c for D
    history: list[float] = field(default_factory=list)  # the last d_delay smoothed_d

    FIELDS = ("value", "integral", "smoothed_p", "smoothed_d", "history")

    def __post_init__(self) -> None:
        self.integral = self.value  # pid: the integral starts where the multiplier does

    def update(self, episode_cost: float, limit: float) -> float:
        """One step from the mean cost of the latest episodes; the new multiplier."""
        excess = episode_cost - limit
        if self.kind == "lagrangian":
            self.value = max(0.0, self.value + self.lr * excess)
            return self.value
        self.integral = max(0.0, self.integral + self.ki * excess)
        a = self.ema
        p = (
            episode_cost
            if self.smoothed_p is None
            else a * self.smoothed_p + (1 - a) * episode_cost
        )
        d = (
            episode_cost
            if self.smoothed_d is None
            else a * self.smoothed_d + (1 - a) * episode_cost
        )
        self.smoothed_p, self.smoothed_d = p, d
        rise = max(0.0, d - self.history[0]) if self.history else 0.0
        self.history = [*self.history, d][-self.d_delay :]
        self.value = max(0.0, self.kp * (p - limit) + self.integral + self.kd * rise)
        return self.value


def step_multiplier(
    multiplier: Multiplier,
    key: str,
    limit: float,
    episodes: list[Episode],
    moves: bool = True,
    target: float | None = None,
) -> dict[str, float]:
    """The multiplier's step from ``episodes`` (those that ended since its last step; none
    ended, or not ``moves`` yet (a warm-up): it stays) towards ``target`` (default: the limit;
    less with ``constraint.margin``), and the metrics of the constraint: ``constraint/...``,
    the violations counted against the limit."""
    target = limit if target is None else target
    costs = [e.info[key] for e in episodes if key in e.info]
    if costs and moves:
        multiplier.update(sum(costs) / len(costs), target)
    out = {"constraint/multiplier": multiplier.value, "constraint/limit": limit}
    if target != limit:
        out["constraint/target"] = target
    if costs:
        out["constraint/episode_cost"] = sum(costs) / len(costs)
        out["constraint/violations"] = sum(c > limit for c in costs) / len(costs)
    return out


def multiplier_from(cfg: object) -> Multiplier:
    """The multiplier an experiment's ``constraint`` section describes."""
    return Multiplier(
        cfg.multiplier, cfg.multiplier_init, cfg.multiplier_lr, cfg.kp, cfg.ki, cfg.kd,
        cfg.pid_ema, cfg.d_delay,
    )  # fmt: skip


class CostCritic(nn.Module):
    """V_c(s), or Q_c(s, a) with ``action_size``: an MLP of the agent's hidden sizes over the
    (normalized) observation, and the action."""

    def __init__(self, in_size: int, network: NetworkConfig, action_size: int = 0) -> None:
        super().__init__()
        self.body = mlp(in_size + action_size, list(network.hidden_sizes), network.activation)
        self.head = nn.Linear(network.hidden_sizes[-1], 1)

    def forward(self, obs: torch.Tensor, actions: torch.Tensor | None = None) -> torch.Tensor:
        x = obs.flatten(1) if actions is None else torch.cat([obs.flatten(1), actions], -1)
        return self.head(self.body(x)).squeeze(-1)


class CostValues:
    """PPO's side of the constraint: a cost critic V_c fitted to the rollout's discounted costs,
    and the cost advantages by GAE, as the reward's (``core/returns.py``)."""

    def __init__(
        self,
        normalizer: nn.Module,
        in_size: int,
        network: NetworkConfig,
        lr: float,
        eps: float,
        device: torch.device,
    ) -> None:
        self.normalizer = normalizer  # the policy's observation normalizer, read only
        self.device = device
        self.critic = CostCritic(in_size, network).to(device)
        self.optimizer = torch.optim.Adam(self.critic.parameters(), lr=lr, eps=eps)

    def values(self, obs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.critic(self.normalizer(obs.to(self.device))).cpu()

    def advantages(
        self, storage: RolloutStorage, next_obs: torch.Tensor, gamma: float, gae_lambda: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(advantages, returns, values) of the stored costs, shaped as the rollout."""
        t, n = storage.num_steps, storage.num_envs
        values = self.values(storage.obs.flatten(0, 1)).view(t, n)
        next_values = torch.cat([values[1:], self.values(next_obs).unsqueeze(0)])
        advantages, returns = gae(
            storage.costs, values, next_values, storage.terminated, storage.truncated,
            gamma, gae_lambda, storage.waiting,
        )  # fmt: skip
        return advantages, returns, values

    def fit(
        self,
        storage: RolloutStorage,
        returns: torch.Tensor,
        epochs: int,
        minibatches: int,
        generator: torch.Generator,
    ) -> float:
        """Regress V_c on the cost returns of the valid steps; the mean squared error."""
        valid = storage.valid.flatten().nonzero().squeeze(1)
        obs, targets = storage.obs.flatten(0, 1), returns.flatten()
        size = max(1, -(-len(valid) // minibatches))
        total, count = 0.0, 0
        for _ in range(epochs):
            order = valid[torch.randperm(len(valid), generator=generator)]
            for start in range(0, len(order), size):
                index = order[start : start + size]
                with torch.no_grad():
                    x = self.normalizer(obs[index].to(self.device))
                loss = (self.critic(x) - targets[index].to(self.device)).square().mean()
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                total, count = total + loss.item(), count + 1
        return total / max(count, 1)


class CostQ:
    """Lagrangian SAC's side of the constraint: Q_c(s, a), fitted to the discounted cost by
    one-step targets from its Polyak-averaged copy and the policy's next action, as SAC's
    critics (without the entropy term: a cost is not a reward for randomness)."""

    def __init__(
        self,
        in_size: int,
        action_size: int,
        network: NetworkConfig,
        lr: float,
        eps: float,
        device: torch.device,
    ) -> None:
        self.critic = CostCritic(in_size, network, action_size).to(device)
        self.target = CostCritic(in_size, network, action_size).to(device)
        self.target.load_state_dict(self.critic.state_dict())
        self.target.requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.critic.parameters(), lr=lr, eps=eps)

    def loss(
        self,
        obs: torch.Tensor,
        actions: torch.Tensor,
        costs: torch.Tensor,
        next_obs: torch.Tensor,
        next_actions: torch.Tensor,
        discounts: torch.Tensor,
    ) -> torch.Tensor:
        with torch.no_grad():
            targets = costs + discounts * self.target(next_obs, next_actions)
        return 0.5 * (self.critic(obs, actions) - targets).square().mean()
