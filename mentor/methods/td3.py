"""Twin Delayed DDPG (Fujimoto et al. 2018, arXiv:1802.09477): a deterministic actor trained
through twin critics, for Box actions. Vector or image observations.

    act      a = clip(pi(s) + noise, -1, 1), noise Gaussian or Ornstein-Uhlenbeck (exploration);
             uniformly random before learning_starts; the env gets a rescaled to its bounds
    target   a' = clip(pi_target(s') + clip(N(0, target_policy_noise), ±target_noise_clip), -1, 1)
             y  = r_n + gamma^n * min_k Q_target_k(s', a')              (0 after termination)
    critics  minimise sum_k (Q_k(s, a) - y)^2                            (every gradient step)
    actor    maximise Q_1(s, pi(s)); Polyak-average both targets (tau)   (every policy_delay)

Actions live in [-1, 1] inside the method (the replay buffer stores them so); only the env and
``predict`` see them in the env's units. The loop (collect, store, update every train_freq env
steps) is shared: methods/offpolicy.py.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from mentor.agent import Agent, trainable
from mentor.core.distributions import Deterministic
from mentor.core.networks import (
    EnsembleMLP,
    NatureCNN,
    init_linear,
    mlp,
    obs_dtype,
    observation_encoder,
)
from mentor.core.optim import descend, set_lr
from mentor.core.replay import ReplaySample
from mentor.core.schedules import value_at
from mentor.core.vec_env import VecEnv
from mentor.envs.spaces import unit_to_bounds
from mentor.errors import ConfigError
from mentor.experiment import ActionNoiseConfig, Experiment, NetworkConfig, TD3Config
from mentor.methods.offpolicy import OffPolicyState, PolyakUpdate, make_buffer, train_off_policy
from mentor.runs.checkpoint import ResumePoint
from mentor.runs.folder import RunFolder
from mentor.runs.session import Result, TrainingSession, training_setup
from mentor.runs.state import TrainState
from mentor.transfer.loading import scaled_groups

# --- networks ------------------------------------------------------------------------------------


class Actor(nn.Module):
    """pi(s) ∈ [-1, 1]^d: deterministic, squashed by tanh as in the paper's reference code."""

    def __init__(self, cnn: NatureCNN | None, in_size: int, action_dim: int,
                 config: NetworkConfig) -> None:  # fmt: skip
        super().__init__()
        self.cnn = cnn
        self.body = mlp(in_size, config.hidden_sizes, config.activation)
        self.head = nn.Linear(config.hidden_sizes[-1] if config.hidden_sizes else in_size,
                              action_dim)  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.cnn is not None:
            x = self.cnn(x)
        return torch.tanh(self.head(self.body(x)))


class TwinCritic(nn.Module):
    """Q_1(s, a) and Q_2(s, a) as one two-member ensemble over concat(features, a): one batched
    call evaluates both (forward and backward), where two separate MLPs would cost two."""

    def __init__(self, cnn: NatureCNN | None, in_size: int, action_dim: int,
                 config: NetworkConfig) -> None:  # fmt: skip
        super().__init__()
        self.cnn = cnn
        self.q = EnsembleMLP(2, in_size + action_dim, config.hidden_sizes, 1, config.activation)

    def forward(self, x: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """(B, ...) features and (B, d) actions → (2, B) values."""
        if self.cnn is not None:
            x = self.cnn(x)
        return self.q(torch.cat([x, actions], -1)).squeeze(-1)


class TD3Networks(nn.Module):
    """Actor, twin critics and their targets, behind one observation normalizer (the targets
    see observations scaled as the online networks do). ``predict`` gives env-unit actions. The
    policy interface: a deterministic policy (``dist``), acting in [-1, 1]."""

    unit_box_actions = True

    def __init__(self, obs_space: spaces.Space, action_space: spaces.Box, config: NetworkConfig,
                 normalize_obs: bool, clip_obs: float) -> None:  # fmt: skip
        super().__init__()
        action_dim = int(np.prod(action_space.shape))
        self.normalizer, actor_cnn, in_size = observation_encoder(
            obs_space, config, normalize_obs, clip_obs
        )
        _, critic_cnn, _ = observation_encoder(obs_space, config, False, clip_obs)
        self.dist = Deterministic(action_dim)
        self.actor = Actor(actor_cnn, in_size, action_dim, config)
        self.critic = TwinCritic(critic_cnn, in_size, action_dim, config)
        if config.ortho_init:
            init_linear(self, 2**0.5)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.register_buffer("action_low", torch.as_tensor(action_space.low).reshape(-1).float())
        self.register_buffer("action_high", torch.as_tensor(action_space.high).reshape(-1).float())

    # What ``mentor eval --stochastic`` does: nothing (see predict).
    sampling = "none: td3's policy is deterministic, so --stochastic changes nothing"

    def policy_params(self, obs: torch.Tensor) -> torch.Tensor:
        """pi(s) in [-1, 1] for raw (encoded) observations: the policy interface."""
        return self.actor(self.normalizer(obs))

    def actor_parameters(self) -> list[nn.Parameter]:
        return list(self.actor.parameters())

    def predict(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        """pi(s) in the env's units. The policy is deterministic: exploration noise belongs to
        training, so ``deterministic`` changes nothing."""
        return unit_to_bounds(self.policy_params(obs), self.action_low, self.action_high)


def build_networks(
    experiment: Experiment, obs_space: spaces.Space, action_space: spaces.Space
) -> TD3Networks:
    if not (np.isfinite(action_space.low).all() and np.isfinite(action_space.high).all()):
        raise ConfigError(
            f"td3 needs a Box action space with finite bounds, got {action_space}: its actions "
            "are tanh-squashed and rescaled to the bounds"
        )
    env = experiment.env
    return TD3Networks(obs_space, action_space, experiment.agent.network, env.normalize_obs,
                       env.clip_obs)  # fmt: skip


# --- exploration ---------------------------------------------------------------------------------


class ActionNoise:
    """Exploration noise on a deterministic policy's actions, in [-1, 1] units, one row per env.

    gaussian             n_t = sigma * N(0, 1), independent at every step (as in the TD3 paper)
    ornstein_uhlenbeck   x_t = x_{t-1} - theta * x_{t-1} * dt + sigma * sqrt(dt) * N(0, 1),
                         dt = 1: temporally correlated, so a push persists for about 1 / theta
                         steps (Uhlenbeck & Ornstein 1930; for exploration: Lillicrap et al. 2016,
                         DDPG). Each env's process restarts at 0 when its episode ends.
    """

    def __init__(self, config: ActionNoiseConfig, num_envs: int, action_dim: int,
                 rng: np.random.Generator) -> None:  # fmt: skip
        self.kind, self.theta = config.kind, config.theta
        self.rng = rng
        self.state = np.zeros((num_envs, action_dim), dtype=np.float32)

    def sample(self, sigma: float) -> np.ndarray:
        draw = self.rng.standard_normal(self.state.shape, dtype=np.float32)
        if self.kind == "gaussian":
            return sigma * draw
        self.state += -self.theta * self.state + sigma * draw
        return self.state.copy()

    def reset(self, envs: np.ndarray) -> None:
        """Restart the process of the envs marked True (their episode just ended)."""
        self.state[envs] = 0.0

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"state": torch.from_numpy(self.state.copy())}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.state = state["state"].numpy().copy()


class NoisyActor:
    """TD3's behaviour policy: the actor's action plus ``ActionNoise`` (sigma from
    exploration.action_noise.sigma's schedule), clipped to [-1, 1]; uniform over the action box
    during warm-up (data no policy is biased toward)."""

    def __init__(self, nets: TD3Networks, experiment: Experiment, num_envs: int,
                 rng: np.random.Generator) -> None:  # fmt: skip
        self.nets, self.config = nets, experiment.exploration.action_noise
        self.action_dim = int(nets.action_low.numel())
        self.noise = ActionNoise(self.config, num_envs, self.action_dim, rng)
        self.low, self.high = nets.action_low.cpu().numpy(), nets.action_high.cpu().numpy()

    def __call__(
        self, obs: torch.Tensor, progress: float, warmup: bool, mask: np.ndarray | None,
        needs_reset: np.ndarray,
    ) -> tuple[torch.Tensor, np.ndarray]:  # fmt: skip
        noise, nets = self.noise, self.nets
        if warmup:
            shape = (len(obs), self.action_dim)
            actions = noise.rng.uniform(-1.0, 1.0, shape).astype(np.float32)
        else:
            sigma = value_at(self.config.sigma, progress)
            actions = nets.actor(nets.normalizer(obs)).cpu().numpy() + noise.sample(sigma)
            actions = np.clip(actions, -1.0, 1.0)
        # An env whose episode just ended resets on this step and ignores its action: the noise
        # process of its next episode starts afresh.
        noise.reset(needs_reset)
        return torch.from_numpy(actions), unit_to_bounds(actions, self.low, self.high)

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.noise.rng.bit_generator.state, "noise": self.noise.state.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.noise.rng.bit_generator.state = state["rng"]
        self.noise.state = np.asarray(state["noise"], dtype=np.float32)


def make_explorer(
    experiment: Experiment, nets: TD3Networks, num_envs: int, rng: np.random.Generator,
    worker: tuple[int, int] | None = None,
) -> NoisyActor:  # fmt: skip
    """The loop's explorer (``methods/offpolicy.py``), the same on every Ray worker."""
    return NoisyActor(nets, experiment, num_envs, rng)


def smoothed_target_actions(
    target_actions: torch.Tensor, noise_std: float, noise_clip: float
) -> torch.Tensor:
    """Target policy smoothing (Fujimoto et al. 2018, §5.3): similar actions should have similar
    values, so the target averages Q over a clipped neighbourhood of pi_target(s')."""
    noise = (torch.randn_like(target_actions) * noise_std).clamp(-noise_clip, noise_clip)
    return (target_actions + noise).clamp(-1.0, 1.0)


# --- losses --------------------------------------------------------------------------------------


def critic_loss(
    nets: TD3Networks, batch: ReplaySample, cfg: TD3Config
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Clipped double-Q learning (§4.2): both critics regress on the smaller target value, which
    counters the overestimation a max over a learned Q builds up. Returns the loss terms and
    Q(s, a)."""
    with torch.no_grad():
        next_actions = smoothed_target_actions(
            nets.actor_target(batch.next_obs), cfg.target_policy_noise, cfg.target_noise_clip
        )
        next_values = nets.critic_target(batch.next_obs, next_actions).min(0).values
        targets = batch.rewards + batch.discounts * next_values
    q = nets.critic(batch.obs, batch.actions)  # (2, B)
    # Summed over the two critics, averaged over the batch, weighted (prioritized replay's
    # importance weights; ones otherwise).
    return {"loss/critic": (batch.weights * (q - targets).square().sum(0)).mean()}, q.detach()


def prepare(batch: ReplaySample, normalizer: nn.Module, device: torch.device) -> ReplaySample:
    """The sample on the networks' device, its observations normalized (identity when off)."""
    return dataclasses.replace(
        batch,
        obs=normalizer(batch.obs.to(device)),
        actions=batch.actions.to(device),
        rewards=batch.rewards.to(device),
        next_obs=normalizer(batch.next_obs.to(device)),
        discounts=batch.discounts.to(device),
        weights=batch.weights.to(device),
    )


def actor_loss(nets: TD3Networks, obs: torch.Tensor) -> dict[str, torch.Tensor]:
    """Deterministic policy gradient (Silver et al. 2014) through the first critic only (§4.1).
    A dict, so that a variant's extra term (TD3+BC's behaviour cloning, Fujimoto & Gu 2021) is
    one more entry."""
    return {"loss/actor": -nets.critic(obs, nets.actor(obs))[0].mean()}


def step(
    optimizer: torch.optim.Optimizer,
    params: list[nn.Parameter],
    terms: dict[str, torch.Tensor],
    max_grad_norm: float | None,
) -> dict[str, float]:
    """One step on the loss terms, into ``params`` only (``core.optim.descend``: the actor's
    loss gives the critics' weights no gradient); the terms as metrics (loss/critic →
    train/loss_critic)."""
    descend(optimizer, params, terms, max_grad_norm, "TD3")
    return {"train/" + name.replace("/", "_"): term.item() for name, term in terms.items()}


# --- training ------------------------------------------------------------------------------------


def train(experiment: Experiment, run: RunFolder, resume: ResumePoint | None = None) -> Result:
    """Train TD3 as the experiment says, in the given run folder (or go on from ``resume``)."""
    with training_setup(experiment, resume) as (venv, agent):
        return _train(experiment, run, venv, agent, resume)


def _train(
    experiment: Experiment, run: RunFolder, venv: VecEnv, agent: Agent, resume: ResumePoint | None
) -> Result:
    cfg: TD3Config = experiment.method
    noise_cfg = experiment.exploration.action_noise
    device, nets = agent.device, agent.policy
    actor_params = trainable(nets.actor, "actor", experiment.agent)
    critic_params = trainable(nets.critic, "critics", experiment.agent)
    optimizers = {
        name: torch.optim.Adam(scaled_groups(params, nets, experiment.agent.lr_scale,
                                             value_at(cfg.learning_rate, 0.0)),
                               lr=value_at(cfg.learning_rate, 0.0), eps=cfg.adam_eps,
                               fused=True)
        for name, params in (("actor", actor_params), ("critic", critic_params))
    }  # fmt: skip
    action_dim = int(nets.action_low.numel())
    buffer = make_buffer(experiment, venv, obs_dtype(nets.actor.cnn), (action_dim,),
                         torch.float32)  # fmt: skip
    # Separate streams: the noise an episode sees does not depend on how many updates ran.
    noise_seed, replay_seed = np.random.SeedSequence(experiment.seed).spawn(2)
    explorer = make_explorer(experiment, nets, venv.num_envs, np.random.default_rng(noise_seed))
    noise = explorer.noise
    replay_rng = np.random.default_rng(replay_seed)
    loop = OffPolicyState()
    update_actor_target = PolyakUpdate(nets.actor_target, nets.actor)
    update_critic_target = PolyakUpdate(nets.critic_target, nets.critic)
    state = TrainState()
    state.module("model", nets)
    for name, optimizer in optimizers.items():
        state.optimizer(f"optimizer_{name}", optimizer)
    state.numpy_rng("rng_noise", noise.rng)
    state.stateful("noise", noise)
    state.numpy_rng("rng_replay", replay_rng)
    session = TrainingSession(experiment, run, agent, venv, state, resume)
    run.update(replay_buffer_bytes=buffer.nbytes)

    def update(progress: float) -> dict[str, float]:
        learning_rate = value_at(cfg.learning_rate, progress)
        set_lr(optimizers.values(), learning_rate)
        batch = prepare(buffer.sample(cfg.batch_size, replay_rng), nets.normalizer, device)
        terms, q = critic_loss(nets, batch, cfg)
        metrics = step(optimizers["critic"], critic_params, terms, cfg.max_grad_norm)
        metrics |= {
            "train/q_mean": q.mean().item(),
            "train/learning_rate": learning_rate,
            "explore/noise_sigma": value_at(noise_cfg.sigma, progress),
        }
        # Delayed policy updates (§5.2): the actor follows a critic that has had policy_delay
        # steps to settle, and the targets move with it.
        if (loop.gradient_steps + 1) % cfg.policy_delay == 0:
            terms = actor_loss(nets, batch.obs)
            metrics |= step(optimizers["actor"], actor_params, terms, cfg.max_grad_norm)
            update_actor_target(cfg.tau)
            update_critic_target(cfg.tau)
        return metrics

    observe = nets.normalizer.update if experiment.env.normalize_obs else None
    return train_off_policy(
        experiment, session, venv, buffer, explorer, make_explorer, update, loop, observe
    )
