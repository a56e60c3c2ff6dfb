"""Deep Q-Networks (Mnih et al. 2015) with double-Q targets (van Hasselt et al. 2016), an
optional dueling head (Wang et al. 2016), n-step returns and prioritized replay (Schaul et al.
2016). Discrete actions; vector or image observations.

    act      epsilon-greedy on Q (epsilon follows exploration.epsilon; on Ray workers, each its own
             with distributed.worker_epsilons, as Ape-X)
    target   y = r_n + gamma^n * Q_target(s_n, argmax_a Q(s_n, a))   (0 after termination)
    loss     Huber(Q(s, a) - y), weighted by importance weights under prioritized replay
    target   network copied (tau 1) or Polyak-averaged every target_update_freq env steps

Under action masks (``VecEnv.action_mask``) the greedy action, epsilon's random action (uniform
over the allowed ones) and the target's argmax over next actions all keep to the allowed ones.

The loop itself (collect, store, update every train_freq steps) is shared: methods/offpolicy.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn
from torch.nn import functional as F

from mentor.agent import Agent, trainable
from mentor.core.distributions import Categorical, mask_scores
from mentor.core.networks import init_linear, mlp, obs_dtype, observation_encoder
from mentor.core.optim import descend, set_lr
from mentor.core.replay import ReplayBuffer
from mentor.core.schedules import value_at
from mentor.core.vec_env import VecEnv
from mentor.envs.masks import sample_allowed
from mentor.experiment import DQNConfig, Experiment, NetworkConfig
from mentor.methods.offpolicy import OffPolicyState, PolyakUpdate, make_buffer, train_off_policy
from mentor.runs.checkpoint import ResumePoint
from mentor.runs.folder import RunFolder
from mentor.runs.session import Result, TrainingSession, training_setup
from mentor.runs.state import TrainState
from mentor.transfer.loading import scaled_groups


class QNetwork(nn.Module):
    """Q(s, ·) for every discrete action; dueling: Q = V(s) + A(s, a) - mean_a A(s, a)."""

    def __init__(self, obs_space: spaces.Space, num_actions: int, config: NetworkConfig,
                 dueling: bool, normalize_obs: bool, clip_obs: float) -> None:  # fmt: skip
        super().__init__()
        self.normalizer, self.cnn, in_size = observation_encoder(
            obs_space, config, normalize_obs, clip_obs
        )
        self.body = mlp(in_size, config.hidden_sizes, config.activation)
        out_size = config.hidden_sizes[-1] if config.hidden_sizes else in_size
        self.head = nn.Linear(out_size, num_actions)
        self.value_head = nn.Linear(out_size, 1) if dueling else None
        if config.ortho_init:
            init_linear(self, 2**0.5)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = self.normalizer(obs) if self.normalizer.enabled else obs
        x = self.body(self.cnn(x) if self.cnn is not None else x)
        q = self.head(x)
        if self.value_head is not None:
            q = self.value_head(x) + q - q.mean(-1, keepdim=True)
        return q


class DQNNetworks(nn.Module):
    """The online Q network and its target; an Agent acts greedily with the online one, or,
    not deterministic (``mentor eval --stochastic``), epsilon-greedily with ``epsilon``: the
    exploration rate training ended with. The policy interface: a categorical over the
    Q-values as logits (a softmax policy at temperature 1, whose mode is the greedy action), so
    behaviour cloning can fit a Q network by cross-entropy before DQN trains it on."""

    unit_box_actions = False
    honours_masks = True

    def __init__(self, q: QNetwork, target: QNetwork, epsilon: float = 0.0) -> None:
        super().__init__()
        self.q = q
        self.target = target.requires_grad_(False)
        self.dist = Categorical([q.head.out_features])
        self.epsilon = epsilon
        self.sampling = f"epsilon-greedy, epsilon {epsilon:g} (exploration.epsilon at the end)"

    @property
    def normalizer(self) -> nn.Module:  # a property: registered once, under q
        return self.q.normalizer

    def policy_params(self, obs: torch.Tensor) -> torch.Tensor:
        return self.q(obs)

    def actor_parameters(self) -> list[nn.Parameter]:
        return list(self.q.parameters())

    def predict(
        self, obs: torch.Tensor, deterministic: bool = True, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        q = self.q(obs)
        greedy = (q if mask is None else mask_scores(q, mask)).argmax(-1)
        if deterministic or self.epsilon <= 0:
            return greedy
        explore = torch.rand(len(greedy), device=greedy.device) < self.epsilon
        if mask is None:
            random = torch.randint_like(greedy, self.q.head.out_features)
        else:  # uniform over the allowed actions: the argmax of uniforms, masked ones below
            random = torch.rand(mask.shape, device=q.device).masked_fill(~mask, -1.0).argmax(-1)
        return torch.where(explore, random, greedy)


def build_networks(
    experiment: Experiment, obs_space: spaces.Space, action_space: spaces.Space
) -> DQNNetworks:
    env = experiment.env
    # BC builds these networks too (method.policy_of dqn), with its own method section: a plain
    # head then, which a DQN run started from it must also have (method.dueling false).
    dueling = getattr(experiment.method, "dueling", False)

    def make() -> QNetwork:
        return QNetwork(obs_space, int(action_space.n), experiment.agent.network, dueling,
                        env.normalize_obs, env.clip_obs)  # fmt: skip

    q = make()
    target = make()
    target.load_state_dict(q.state_dict())
    return DQNNetworks(q, target, value_at(experiment.exploration.epsilon, 1.0))


def dqn_loss(
    nets: DQNNetworks, buffer: ReplayBuffer, cfg: DQNConfig, rng: np.random.Generator, beta: float
) -> tuple[dict[str, torch.Tensor], dict[str, float], np.ndarray, torch.Tensor]:
    """Loss terms, diagnostics, sampled indices and |TD errors| for one minibatch."""
    batch = buffer.sample(cfg.batch_size, rng, beta)
    device = next(nets.parameters()).device
    obs, next_obs = batch.obs.to(device), batch.next_obs.to(device)
    if cfg.double_q:  # one online pass over s and s': it picks a', the target network values it
        q_both = nets.q(torch.cat([obs, next_obs]))
        q_values, next_online = q_both[: len(obs)], q_both[len(obs) :].detach()
    else:
        q_values, next_online = nets.q(obs), None
    with torch.no_grad():
        next_q_target = nets.target(next_obs)
        if batch.next_masks is not None:  # the max (or argmax) over the allowed next actions
            next_masks = batch.next_masks.to(device)
            next_q_target = mask_scores(next_q_target, next_masks)
            if next_online is not None:
                next_online = mask_scores(next_online, next_masks)
        if next_online is not None:
            next_values = next_q_target.gather(-1, next_online.argmax(-1, keepdim=True)).squeeze(-1)
        else:
            next_values = next_q_target.max(-1).values
        targets = batch.rewards.to(device) + batch.discounts.to(device) * next_values
    chosen = q_values.gather(-1, batch.actions.to(device).unsqueeze(-1)).squeeze(-1)
    errors = chosen - targets
    if cfg.loss == "huber":
        per_sample = F.smooth_l1_loss(chosen, targets, reduction="none")
    else:
        per_sample = errors.square()
    loss = (batch.weights.to(device) * per_sample).mean()
    stats = {"train/q_mean": chosen.mean().item(), "train/td_abs": errors.abs().mean().item()}
    return {"loss/td": loss}, stats, batch.indices, errors.detach().abs()


class EpsilonGreedy:
    """DQN's behaviour policy: the greedy action on Q (among the allowed ones), or with
    probability epsilon one drawn uniformly (among the allowed ones); epsilon is 1 during
    warm-up, then exploration.epsilon's schedule, or ``fixed`` (a Ray worker's own, Ape-X)."""

    def __init__(
        self, nets: DQNNetworks, experiment: Experiment, rng: np.random.Generator,
        fixed: float | None = None,
    ) -> None:  # fmt: skip
        self.nets, self.rng, self.fixed = nets, rng, fixed
        self.schedule = experiment.exploration.epsilon
        self.num_actions = nets.q.head.out_features

    def __call__(
        self, obs: torch.Tensor, progress: float, warmup: bool, mask: np.ndarray | None,
        needs_reset: np.ndarray,
    ) -> tuple[torch.Tensor, np.ndarray]:  # fmt: skip
        epsilon = self.fixed if self.fixed is not None else value_at(self.schedule, progress)
        epsilon = 1.0 if warmup else epsilon
        q = self.nets.q(obs)
        if mask is not None:
            q = mask_scores(q, torch.from_numpy(mask).to(q.device))
        actions = q.argmax(-1).cpu().numpy()
        explore = self.rng.random(len(actions)) < epsilon
        if mask is None:
            actions[explore] = self.rng.integers(0, self.num_actions, int(explore.sum()))
        else:
            actions[explore] = sample_allowed(mask[explore], self.rng)
        return torch.from_numpy(actions), actions

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]


def apex_epsilon(worker: int, workers: int, base: float = 0.4, alpha: float = 7.0) -> float:
    """Worker i of N explores with epsilon base^(1 + alpha i / (N - 1)) (Horgan et al. 2018,
    Ape-X): a spread from 0.4 down to 0.4^8 ~ 0.0007, some workers exploring, some exploiting."""
    return base ** (1 + alpha * worker / max(workers - 1, 1))


def make_explorer(
    experiment: Experiment, nets: DQNNetworks, num_envs: int, rng: np.random.Generator,
    worker: tuple[int, int] | None = None,
) -> EpsilonGreedy:  # fmt: skip
    """The loop's explorer (``methods/offpolicy.py``); a Ray worker's has its Ape-X epsilon
    with distributed.worker_epsilons."""
    fixed = None
    if worker is not None and experiment.distributed.worker_epsilons:
        fixed = apex_epsilon(*worker)
    return EpsilonGreedy(nets, experiment, rng, fixed)


@dataclass
class TargetSync:
    """When the target network was last updated (env steps; saved in checkpoints)."""

    last_step: int = 0


def train(experiment: Experiment, run: RunFolder, resume: ResumePoint | None = None) -> Result:
    """Train DQN as the experiment says, in the given run folder (or go on from ``resume``)."""
    with training_setup(experiment, resume) as (venv, agent):
        return _train(experiment, run, venv, agent, resume)


def _train(
    experiment: Experiment, run: RunFolder, venv: VecEnv, agent: Agent, resume: ResumePoint | None
) -> Result:
    cfg: DQNConfig = experiment.method
    nets: DQNNetworks = agent.policy
    params = trainable(nets.q, "Q network", experiment.agent)
    learning_rate = value_at(cfg.learning_rate, 0.0)
    optimizer = torch.optim.Adam(
        scaled_groups(params, nets, experiment.agent.lr_scale, learning_rate),
        lr=learning_rate, eps=cfg.adam_eps, fused=True,
    )  # fmt: skip
    buffer = make_buffer(experiment, venv, obs_dtype(nets.q.cnn), (), torch.int64)
    rng = np.random.default_rng(experiment.seed)  # exploration and replay sampling
    explorer = make_explorer(experiment, nets, venv.num_envs, rng)
    loop = OffPolicyState()
    target_sync = TargetSync()
    update_target = PolyakUpdate(nets.target, nets.q)
    state = TrainState()
    state.module("model", nets)
    state.optimizer("optimizer", optimizer)
    state.numpy_rng("rng_replay", rng)
    state.fields("progress_target", target_sync, "last_step")
    session = TrainingSession(experiment, run, agent, venv, state, resume)
    run.update(replay_buffer_bytes=buffer.nbytes)

    def update(progress: float) -> dict[str, float]:
        learning_rate = value_at(cfg.learning_rate, progress)
        set_lr([optimizer], learning_rate)
        if loop.step - target_sync.last_step >= cfg.target_update_freq:
            update_target(cfg.tau)
            target_sync.last_step = loop.step
        beta = value_at(cfg.priority_beta, progress)
        terms, stats, indices, td_abs = dqn_loss(nets, buffer, cfg, rng, beta)
        if session.penalty is not None:  # a continual run's terms (mentor/continual/keep.py)
            terms.update(session.penalty(params))
        grad_norm = descend(optimizer, params, terms, cfg.max_grad_norm, "DQN")
        if cfg.prioritized:
            buffer.update_priorities(indices, td_abs.cpu().numpy())
        return {
            **{f"train/loss_{k.removeprefix('loss/')}": t.item() for k, t in terms.items()},
            "train/grad_norm": grad_norm,
            "train/learning_rate": learning_rate,
            "explore/epsilon": value_at(experiment.exploration.epsilon, progress),
            **stats,
        }

    observe = nets.q.normalizer.update if experiment.env.normalize_obs else None
    return train_off_policy(
        experiment, session, venv, buffer, explorer, make_explorer, update, loop, observe
    )
