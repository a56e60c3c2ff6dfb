"""Supervised learning of a policy from demonstrated actions: what behaviour cloning (``bc.py``)
and DAgger (``dagger.py``) share, and the k-fold of ``cross_validation.py``.

The network is any method's, seen through the policy interface (``core/networks.py:
PolicyHead``): its distribution's parameters for a batch of observations, its distribution, the
parameters of its policy part. The losses, per transition (s, a) of the demonstrations:

    log_likelihood   -log pi(a|s): cross-entropy for Discrete, the sum over components for
                     MultiDiscrete and MultiBinary, a Gaussian's negative log-density for Box
                     (the distribution says what the gradient follows: ``fitting_log_prob``,
                     beta-NLL for SAC's squashed Gaussian, whose std depends on the state)
    mse              |mode(s) - a|^2 averaged over action dimensions (Box only; the only loss
                     of a deterministic policy, TD3's)
    entropy_coef     minus this times the policy's entropy is added (keeps a Gaussian's std open)

``fit`` trains in shuffled minibatches until early stopping on a validation loss (keeping the
best weights), ``max_epochs`` or a step budget.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from mentor.agent import trainable
from mentor.core.networks import PolicyHead
from mentor.core.optim import descend
from mentor.data.dataset import Dataset
from mentor.envs.spaces import to_network_actions
from mentor.errors import ConfigError
from mentor.experiment import AgentConfig, BCConfig, Experiment, check_supported, method_module
from mentor.transfer.loading import scaled_groups

# Validation rows evaluated per forward pass: bounds the memory of a large validation set.
EVAL_CHUNK = 65_536


@dataclass(frozen=True)
class Learner:
    """The network being fitted (it answers ``PolicyHead``) and its action space."""

    nets: nn.Module
    action_space: spaces.Space

    @property
    def policy(self) -> PolicyHead:
        return self.nets  # type: ignore[return-value]

    @property
    def continuous(self) -> bool:
        return isinstance(self.action_space, spaces.Box)

    @property
    def score_name(self) -> str:
        """What the per-row score is: the accuracy of discrete actions, the MSE of continuous."""
        return "mse" if self.continuous else "accuracy"

    @cached_property
    def error_scale(self) -> torch.Tensor | None:
        """Errors of continuous predictions are reported in env units: a network acting in
        [-1, 1] has them scaled by half the range."""
        if not (self.continuous and self.policy.unit_box_actions):
            return None
        low, high = (
            torch.as_tensor(np.asarray(b, np.float32).reshape(-1))
            for b in (self.action_space.low, self.action_space.high)
        )
        device = next(self.nets.parameters()).device
        return ((high - low) / 2).to(device)


def build_policy_networks(
    experiment: Experiment, obs_space: spaces.Space, action_space: spaces.Space
) -> nn.Module:
    """The networks of ``method.policy_of`` (BC's and DAgger's ``build_networks``), so that
    method can start from the result."""
    policy_of = experiment.method.policy_of
    try:
        check_supported(policy_of, action_space)
    except ConfigError as exc:
        raise ConfigError(f"method.policy_of {policy_of}: {exc}") from None
    return method_module(policy_of).build_networks(experiment, obs_space, action_space)


def check_config(cfg: BCConfig, learner: Learner) -> None:
    """Refuse a loss the action space or the policy cannot take."""
    if cfg.loss == "mse" and not learner.continuous:
        raise ConfigError(
            f"method.loss mse regresses continuous actions; the action space "
            f"{learner.action_space} is not a Box: use loss log_likelihood (cross-entropy)"
        )
    if cfg.loss != "mse" and not learner.policy.dist.has_density:
        raise ConfigError(
            f"method.loss {cfg.loss}: {cfg.policy_of}'s policy is deterministic and has no "
            "likelihood; use method.loss mse"
        )


# --- the data ----------------------------------------------------------------------------------


@dataclass
class Samples:
    """Transitions as tensors: observations as the network reads them, actions in network form."""

    obs: torch.Tensor
    actions: torch.Tensor

    def __len__(self) -> int:
        return len(self.actions)

    def rows(self, index: torch.Tensor | np.ndarray) -> Samples:
        index = torch.as_tensor(index)
        return Samples(self.obs[index], self.actions[index])


def samples(dataset: Dataset, learner: Learner, device: torch.device) -> Samples:
    """Every transition of ``dataset`` as tensors on ``device`` (one encoding, no per-row work)."""
    obs = np.ascontiguousarray(dataset.encoded_observations())
    actions = to_network_actions(
        dataset.action_space, dataset.actions, learner.policy.unit_box_actions
    )
    return Samples(torch.from_numpy(obs).to(device), torch.from_numpy(actions).to(device))


def episode_rows(dataset: Dataset, episodes: np.ndarray) -> np.ndarray:
    """The row indices of the given episodes."""
    return np.flatnonzero(np.isin(dataset.episode_index(), episodes))


# --- the loss ----------------------------------------------------------------------------------


def bc_loss(
    learner: Learner, batch: Samples, cfg: BCConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(objective, loss, score) of a batch: the objective is what the gradient follows (the
    fitted log-likelihood or the squared error, less the entropy bonus); the loss is the mean
    negative log-likelihood or squared error, reported and early-stopped on; the score, per
    row, whether the mode equals the demonstrated action (discrete; the share of components for
    Multi*) or its squared error in env units (continuous, averaged over dimensions)."""
    policy = learner.policy
    dist, params = policy.dist, policy.policy_params(batch.obs)
    prediction = dist.sample(params, True)
    if cfg.loss == "mse":
        loss = (prediction - batch.actions).square().mean()
        objective = loss
    else:
        loss = -dist.log_prob(params, batch.actions).mean()
        objective = -dist.fitting_log_prob(params, batch.actions).mean()
    if cfg.entropy_coef:
        objective = objective - cfg.entropy_coef * dist.entropy(params).mean()
    with torch.no_grad():
        if learner.continuous:
            error = prediction - batch.actions
            if learner.error_scale is not None:
                error = error * learner.error_scale
            score = error.square().mean(-1)
        else:
            score = (prediction == batch.actions).float()
            score = score.mean(-1) if score.dim() > 1 else score
    return objective, loss.detach(), score


@torch.no_grad()
def evaluate_loss(learner: Learner, data: Samples, cfg: BCConfig) -> tuple[float, float]:
    """(mean loss, mean score) over ``data``, in chunks."""
    loss_sum, score_sum = 0.0, 0.0
    for start in range(0, len(data), EVAL_CHUNK):
        chunk = data.rows(torch.arange(start, min(start + EVAL_CHUNK, len(data))))
        _, loss, score = bc_loss(learner, chunk, cfg)
        loss_sum += loss.item() * len(chunk)
        score_sum += score.sum().item()
    return loss_sum / len(data), score_sum / len(data)


# --- fitting -----------------------------------------------------------------------------------


@dataclass
class FitProgress:
    """Where fitting is (saved in checkpoints): epochs done, gradient steps taken, samples trained
    on, the lowest validation loss so far, its epoch, the epochs since, and the weights that had
    it."""

    epochs: int = 0
    steps: int = 0
    samples: int = 0
    best_loss: float = math.inf
    best_epoch: int = 0
    stale_epochs: int = 0
    best_weights: dict[str, torch.Tensor] | None = field(default=None, repr=False)

    def stop_reason(
        self, cfg: BCConfig, max_epochs: int, max_steps: int | None = None
    ) -> str | None:
        if cfg.patience is not None and self.stale_epochs >= cfg.patience:
            return (
                f"early stop: validation loss {self.best_loss:.4g} (epoch {self.best_epoch}) "
                f"did not improve for {cfg.patience} epochs"
            )
        if self.epochs >= max_epochs:
            return f"max_epochs: trained {self.epochs} epochs"
        if max_steps is not None and self.steps >= max_steps:
            return f"budget: reached total_steps={max_steps}"
        return None


def make_optimizer(learner: Learner, cfg: BCConfig, agent: AgentConfig) -> torch.optim.AdamW:
    """AdamW over the policy's trainable parameters (fused: one kernel for all of them)."""
    params = trainable(learner.policy.actor_parameters(), "policy", agent)
    groups = scaled_groups(params, learner.policy, agent.lr_scale, cfg.learning_rate)
    return torch.optim.AdamW(
        groups, lr=cfg.learning_rate, weight_decay=cfg.weight_decay, fused=True
    )


def train_epoch(
    learner: Learner,
    optimizer: torch.optim.Optimizer,
    train: Samples,
    cfg: BCConfig,
    generator: torch.Generator,
) -> tuple[float, float, int]:
    """One shuffled pass in near-equal minibatches of at most batch_size; (mean loss, mean
    score, gradient steps)."""
    count = len(train)
    order = torch.randperm(count, generator=generator).to(train.actions.device)
    loss_sum = torch.zeros((), device=train.actions.device)
    score_sum = torch.zeros((), device=train.actions.device)
    minibatches = torch.tensor_split(order, math.ceil(count / cfg.batch_size))
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for index in minibatches:
        batch = train.rows(index)
        objective, loss, score = bc_loss(learner, batch, cfg)
        descend(optimizer, params, {"loss/bc": objective}, None, "BC")
        loss_sum += loss * len(index)
        score_sum += score.sum()
    return loss_sum.item() / count, score_sum.item() / count, len(minibatches)


def fit_epoch(
    learner: Learner,
    optimizer: torch.optim.Optimizer,
    train: Samples,
    valid: Samples | None,
    cfg: BCConfig,
    generator: torch.Generator,
    progress: FitProgress,
) -> dict[str, float]:
    """One epoch, its validation loss, and the early-stopping bookkeeping; the epoch's metrics.
    Without validation data (or patience None) the last weights are the ones kept."""
    tic = time.perf_counter()
    loss, score, steps = train_epoch(learner, optimizer, train, cfg, generator)
    progress.epochs += 1
    progress.steps += steps
    progress.samples += len(train)
    name = learner.score_name
    metrics = {
        "train/epoch": progress.epochs,
        "train/samples": progress.samples,
        "train/loss": loss,
        f"train/{name}": score,
    }
    if valid is not None:
        val_loss, val_score = evaluate_loss(learner, valid, cfg)
        metrics.update({"train/val_loss": val_loss, f"train/val_{name}": val_score})
        if val_loss < progress.best_loss:
            progress.best_loss, progress.best_epoch = val_loss, progress.epochs
            progress.stale_epochs = 0
            if cfg.patience is not None:
                progress.best_weights = copy_weights(learner.nets.state_dict())
        else:
            progress.stale_epochs += 1
        metrics["train/best_val_loss"] = progress.best_loss
    seconds = time.perf_counter() - tic
    metrics["time/sps"] = steps / seconds  # the steps of supervised learning: gradient steps
    metrics["time/samples_per_second"] = len(train) / seconds
    return metrics


def keep_best(learner: Learner, progress: FitProgress) -> None:
    """Put the weights with the lowest validation loss back (when early stopping kept any)."""
    if progress.best_weights is not None:
        learner.nets.load_state_dict(progress.best_weights)


def fit(
    learner: Learner,
    optimizer: torch.optim.Optimizer,
    train: Samples,
    valid: Samples | None,
    cfg: BCConfig,
    generator: torch.Generator,
    max_epochs: int | None = None,
    max_steps: int | None = None,
) -> tuple[FitProgress, dict[str, float], str]:
    """Train until early stopping, ``max_epochs`` (default method.max_epochs) or ``max_steps``
    gradient steps, then keep the best weights. Returns the progress, the last epoch's metrics
    and why it stopped. DAgger retrains with it each round; k-fold fits each fold with it."""
    max_epochs = max_epochs or cfg.max_epochs
    progress = FitProgress()
    reason = None
    metrics: dict[str, float] = {}
    while reason is None:
        metrics = fit_epoch(learner, optimizer, train, valid, cfg, generator, progress)
        reason = progress.stop_reason(cfg, max_epochs, max_steps)
    keep_best(learner, progress)
    return progress, metrics, reason


def copy_weights(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone() for key, value in state.items()}
