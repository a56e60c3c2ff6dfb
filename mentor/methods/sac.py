"""Soft Actor-Critic (Haarnoja et al. 2018a, arXiv:1801.01290; 2018b, arXiv:1812.05905) with twin
critics and automatic entropy tuning; discrete actions as in Christodoulou 2019 (arXiv:1910.07207).

    act      a ~ pi(.|s): tanh of a Gaussian (Box), rescaled to the bounds; categorical (Discrete)
    target   y = r_n + gamma^n * V_target(s_n)                       (0 after termination)
             V_target(s) = E_{a~pi}[ min_k Q_target_k(s, a) - alpha * log pi(a|s) ]
    critics  0.5 * sum_k (Q_k(s, a) - y)^2        (times importance weights, for generality)
    actor    E_s[ -V(s) ] with V computed from the online critics, which the actor loss leaves alone
    alpha    alpha * (H(pi(.|s)) - target_entropy)     (lowers alpha while the policy's entropy
             is above the target, raises it below; 2018b, eq. 18)
    targets  Q_target <- (1 - tau) Q_target + tau Q every target_update_freq gradient steps

The expectation over a ~ pi is one sample for Box actions and the exact sum over actions for
Discrete ones (Christodoulou 2019, section 4). Both cases share one formula here: a policy gives
*weights* and *log-probabilities* for a set of actions per state, (1, log pi(a|s)) for the sampled
Box action and (pi(a|s), log pi(a|s)) for every discrete action, and V(s) = sum weights * (Q - alpha
* log-prob).

All three losses are computed from the parameters as they are before the step, then stepped
together, so they stay one dict of named terms. (SB3 and CleanRL step the critics first and give
the actor loss the updated ones: the same cost; TF1 implementations that run every training op in
one session call read the same parameters, as here.) The twin critics are one ensemble evaluated
in one batched call. The critics' call on the stored actions and the actor's call on its own
actions stay apart: each backward pass needs gradients for one of the two halves only, and one
call over both would double the backward work (measured: slower per update on a CPU, even at
batch 128).

Box actions are stored in [-1, 1]; the env gets them rescaled to its bounds.
``agent.network.log_std_init`` is not used: SAC's log std is an output of the actor.
The loop itself is shared: methods/offpolicy.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn
from torch.nn import functional as F

from mentor.agent import Agent, trainable
from mentor.core.constraint import CostQ, Multiplier, multiplier_from, step_multiplier
from mentor.core.distributions import Categorical, SquashedGaussian
from mentor.core.networks import (
    EnsembleMLP,
    init_linear,
    mlp,
    obs_dtype,
    observation_encoder,
)
from mentor.core.optim import descend_together, set_lr, total
from mentor.core.replay import ReplayBuffer
from mentor.core.schedules import value_at
from mentor.core.sde import ExplorationNoise, StateDependentStd
from mentor.core.vec_env import VecEnv
from mentor.envs.spaces import unit_to_bounds
from mentor.errors import ConfigError
from mentor.experiment import Experiment, ExplorationConfig, NetworkConfig, SACConfig
from mentor.methods.offpolicy import OffPolicyState, PolyakUpdate, make_buffer, train_off_policy
from mentor.runs.checkpoint import ResumePoint
from mentor.runs.folder import RunFolder
from mentor.runs.session import Result, TrainingSession, training_setup
from mentor.runs.state import TrainState
from mentor.transfer.loading import scaled_groups

# --- the policy --------------------------------------------------------------------------------

SDE_MEAN_CLIP = 2.0  # gSDE: the mean before the tanh, in [-2, 2] (Actor)


@dataclass
class PolicyOutput:
    """What the policy says about a batch of states, as weights and log-probs of actions.

    Box: ``actions`` (B, dim) is one sample per state, ``weights`` ones (B, 1), ``log_probs``
    (B, 1) its log pi(a|s). Discrete: ``actions`` is None (every action counts), ``weights`` is
    pi(.|s) (B, |A|) and ``log_probs`` log pi(.|s)."""

    actions: torch.Tensor | None
    weights: torch.Tensor
    log_probs: torch.Tensor

    def entropy(self) -> torch.Tensor:
        """-E[log pi]: exact for Discrete, a one-sample estimate for Box (per state)."""
        return -(self.weights * self.log_probs).sum(-1)


def soft_value(policy: PolicyOutput, q: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """V(s) = E_{a~pi}[Q(s, a) - alpha log pi(a|s)] (Haarnoja et al. 2018a, eq. 3); ``q`` holds
    the Q-values of the policy's actions: (B, 1) for Box, (B, |A|) for Discrete."""
    return (policy.weights * (q - alpha * policy.log_probs)).sum(-1)


class Actor(nn.Module):
    """Observation (already normalized) -> mean and log std (Box) or logits (Discrete).

    Under gSDE (``sde_log_std_init``, ``core/sde.py``) the head gives the mean alone, clipped
    to [-2, 2] before the tanh (as Raffin et al.'s implementation does under gSDE: the mean
    cannot drift where the tanh has no gradient left), and the log std follows from the last
    hidden layer's features."""

    def __init__(self, cnn: nn.Module | None, in_size: int, out_size: int,
                 config: NetworkConfig, sde_log_std_init: float | None = None) -> None:  # fmt: skip
        super().__init__()
        self.cnn = cnn
        self.body = mlp(in_size, config.hidden_sizes, config.activation)
        features = config.hidden_sizes[-1] if config.hidden_sizes else in_size
        self.sde = None
        if sde_log_std_init is not None:
            out_size //= 2  # the mean only
            self.sde = StateDependentStd(features, out_size, sde_log_std_init, learn_features=True)
        self.head = nn.Linear(features, out_size)

    def latent(self, obs: torch.Tensor) -> torch.Tensor:
        return self.body(self.cnn(obs) if self.cnn is not None else obs)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        latent = self.latent(obs)
        if self.sde is None:
            return self.head(latent)
        mean = self.head(latent).clamp(-SDE_MEAN_CLIP, SDE_MEAN_CLIP)
        return torch.cat([mean, self.sde(latent)], -1)

    def explore(self, obs: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """gSDE's collection actions in [-1, 1]: tanh of the mean plus the matrices' noise."""
        latent = self.latent(obs)
        mean = self.head(latent).clamp(-SDE_MEAN_CLIP, SDE_MEAN_CLIP)
        return torch.tanh(mean + self.sde.noise(latent, eps))


class Critics(nn.Module):
    """K critics in one batched call: Q_k(s, a) -> (K, B, 1) for Box actions, Q_k(s, .) ->
    (K, B, |A|) for Discrete ones (``actions`` None)."""

    def __init__(self, cnn: nn.Module | None, in_size: int, out_size: int, config: NetworkConfig,
                 members: int = 2) -> None:  # fmt: skip
        super().__init__()
        self.cnn = cnn
        self.q = EnsembleMLP(members, in_size, config.hidden_sizes, out_size, config.activation)

    def forward(self, obs: torch.Tensor, actions: torch.Tensor | None = None) -> torch.Tensor:
        x = self.cnn(obs) if self.cnn is not None else obs
        return self.q(x if actions is None else torch.cat([x, actions], -1))


class SACNetworks(nn.Module):
    """The actor, the twin critics and their target, and log alpha. The observation normalizer
    is shared: the actor and every critic see the same normalized observations. The actor's
    policy (``dist`` over ``policy_params``) is a squashed Gaussian for Box actions, in [-1, 1]
    (``unit_box_actions``), and a categorical for Discrete ones."""

    unit_box_actions = True

    def __init__(self, obs_space: spaces.Space, action_space: spaces.Space, config: NetworkConfig,
                 normalize_obs: bool, clip_obs: float, alpha_init: float,
                 sde_log_std_init: float | None = None) -> None:  # fmt: skip
        super().__init__()
        self.discrete = isinstance(action_space, spaces.Discrete)
        if self.discrete:
            self.num_actions = int(action_space.n)
        else:
            low, high = (
                np.array(b, np.float32).reshape(-1) for b in (action_space.low, action_space.high)
            )
            if not (np.isfinite(low).all() and np.isfinite(high).all()):
                raise ConfigError(
                    f"sac squashes actions into the Box's bounds, which must be finite; the "
                    f"action space {action_space} is unbounded"
                )
            self.action_dim = low.size
            # Not saved: they follow from the action space, which the checkpoint records.
            self.register_buffer("action_low", torch.from_numpy(low), persistent=False)
            self.register_buffer("action_high", torch.from_numpy(high), persistent=False)
        self.normalizer, actor_cnn, in_size = observation_encoder(
            obs_space, config, normalize_obs, clip_obs
        )
        self.dist = (
            Categorical([self.num_actions]) if self.discrete else SquashedGaussian(self.action_dim)
        )
        if sde_log_std_init is not None and self.discrete:
            raise ConfigError(
                f"exploration.sde needs Box actions (a Gaussian policy's noise); this env's "
                f"action space is {action_space}: remove exploration.sde"
            )
        self.actor = Actor(actor_cnn, in_size, self.dist.num_params, config, sde_log_std_init)

        def critics() -> Critics:  # each critic set has its own CNN (images) and no normalizer
            _, cnn, size = observation_encoder(obs_space, config, False, clip_obs)
            if self.discrete:
                return Critics(cnn, size, self.num_actions, config)
            return Critics(cnn, size + self.action_dim, 1, config)

        self.critic = critics()
        self.critic_target = critics().requires_grad_(False)
        if config.ortho_init:
            init_linear(self.actor, math.sqrt(2))
            init_linear(self.actor.head, 0.01)
            init_linear(self.critic, math.sqrt(2))
        self.critic_target.load_state_dict(self.critic.state_dict())
        # Tuned as log alpha, so alpha stays positive; a fixed alpha of 0 (no entropy) is -inf.
        self.log_alpha = nn.Parameter(torch.tensor(float(alpha_init)).log())

    def policy_params(self, obs: torch.Tensor) -> torch.Tensor:
        """The actor's output for raw (encoded) observations: the policy interface."""
        return self.actor(self.normalizer(obs))

    def actor_parameters(self) -> list[nn.Parameter]:
        return list(self.actor.parameters())

    def policy(self, obs: torch.Tensor) -> PolicyOutput:
        """Sample the policy on normalized observations (with gradients, for the losses)."""
        out = self.actor(obs)
        if self.discrete:
            log_probs = F.log_softmax(out, -1)
            return PolicyOutput(None, log_probs.exp(), log_probs)
        actions, log_prob = self.dist.sample_with_log_prob(out)
        return PolicyOutput(actions, torch.ones_like(log_prob).unsqueeze(-1), log_prob[:, None])

    def sample(self, obs: torch.Tensor, deterministic: bool) -> torch.Tensor:
        """Actions as stored in the replay buffer: in [-1, 1] (Box) or indices (Discrete)."""
        out = self.policy_params(obs)
        if self.discrete and not deterministic:
            return torch.multinomial(F.softmax(out, -1), 1).squeeze(-1)
        return self.dist.sample(out, deterministic)

    def explore(self, obs: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """gSDE's collection actions, in [-1, 1] (``core/sde.py``)."""
        return self.actor.explore(self.normalizer(obs), eps)

    def to_env_units(self, actions: torch.Tensor) -> torch.Tensor:
        """[-1, 1] -> [low, high] (Box); Discrete: unchanged."""
        if self.discrete:
            return actions
        return unit_to_bounds(actions, self.action_low, self.action_high)

    def predict(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        """What an Agent acts with: deterministic is tanh(mean) (Box) or the likeliest action."""
        return self.to_env_units(self.sample(obs, deterministic))


def build_networks(
    experiment: Experiment, obs_space: spaces.Space, action_space: spaces.Space
) -> SACNetworks:
    env, exploration = experiment.env, experiment.exploration
    alpha = exploration.alpha_init if exploration.alpha == "auto" else exploration.alpha
    sde = exploration.sde
    return SACNetworks(obs_space, action_space, experiment.agent.network, env.normalize_obs,
                       env.clip_obs, alpha, None if sde is None else sde.log_std_init)  # fmt: skip


def target_entropy(exploration: ExplorationConfig, action_space: spaces.Space) -> float:
    """'auto': -dim(A) for Box, as in Haarnoja et al. 2018b's experiments; 0.98 log |A| for
    Discrete, 98% of the uniform policy's entropy, as in Christodoulou 2019's experiments."""
    if exploration.target_entropy != "auto":
        return float(exploration.target_entropy)
    if isinstance(action_space, spaces.Discrete):
        return 0.98 * math.log(int(action_space.n))
    return -float(np.prod(action_space.shape))


# --- the update ----------------------------------------------------------------------------------


def sac_losses(
    nets: SACNetworks, buffer: ReplayBuffer, cfg: SACConfig, rng: np.random.Generator,
    target_entropy: float | None, cost_q: CostQ | None = None, multiplier: float = 0.0,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:  # fmt: skip
    """Loss terms and diagnostics for one minibatch. ``target_entropy`` None: alpha is fixed.
    Under a constraint (``cost_q``, Lagrangian SAC): ``loss/cost_critic`` fits Q_c, and
    ``loss/cost``, lambda times Q_c of the policy's action, joins the actor's loss."""
    batch = buffer.sample(cfg.batch_size, rng)
    device = nets.log_alpha.device
    obs = nets.normalizer(batch.obs.to(device))
    next_obs = nets.normalizer(batch.next_obs.to(device))
    alpha = nets.log_alpha.exp()

    with torch.no_grad():
        pi_next = nets.policy(next_obs)
        next_q = nets.critic_target(next_obs, pi_next.actions).amin(0)
        targets = batch.rewards.to(device) + batch.discounts.to(device) * soft_value(
            pi_next, next_q, alpha
        )

    pi = nets.policy(obs)
    actions = batch.actions.to(device)
    if nets.discrete:  # Q(s, .) once: the taken action's value for the critics, all for the actor
        q_all = nets.critic(obs)
        q_taken = q_all.gather(-1, actions.view(1, -1, 1).expand(q_all.shape[0], -1, 1))
        q_pi = q_all.detach().amin(0)
    else:
        q_taken = nets.critic(obs, actions)
        q_pi = nets.critic(obs, pi.actions).amin(0)
    q_taken = q_taken.squeeze(-1)  # (K, B)

    weights = batch.weights.to(device)
    terms = {
        "loss/critic": 0.5 * (weights * (q_taken - targets).square()).mean(-1).sum(),
        # The critics' gradient from this term is never applied: the update backpropagates it
        # into the actor only.
        "loss/actor": -soft_value(pi, q_pi, alpha.detach()).mean(),
    }
    entropy = pi.entropy().detach()
    if target_entropy is not None:
        terms["loss/alpha"] = (alpha * (entropy - target_entropy)).mean()
    if cost_q is not None:
        costs = batch.costs.to(device)
        terms["loss/cost_critic"] = cost_q.loss(obs, actions, costs, next_obs, pi_next.actions,
                                                batch.discounts.to(device))  # fmt: skip
        terms["loss/cost"] = multiplier * cost_q.critic(obs, pi.actions).mean()
    stats = {"train/q_mean": q_taken.detach().mean(), "train/entropy": entropy.mean()}
    return terms, stats


class SACExplorer:
    """SAC's behaviour policy: actions sampled from the policy (its entropy is its
    exploration); uniform over the action space during warm-up ([-1, 1]^dim, or every index)."""

    def __init__(
        self, nets: SACNetworks, rng: np.random.Generator, noise: ExplorationNoise | None = None
    ) -> None:
        self.nets, self.rng = nets, rng
        self.noise = noise  # gSDE's matrices (core/sde.py), or None

    def __call__(
        self, obs: torch.Tensor, progress: float, warmup: bool, mask: np.ndarray | None,
        needs_reset: np.ndarray,
    ) -> tuple[torch.Tensor, np.ndarray]:  # fmt: skip
        nets = self.nets
        if warmup:
            if nets.discrete:
                stored = torch.from_numpy(self.rng.integers(0, nets.num_actions, len(obs)))
            else:
                shape = (len(obs), nets.action_dim)
                stored = torch.from_numpy(self.rng.uniform(-1.0, 1.0, shape).astype(np.float32))
        elif self.noise is not None:
            stored = nets.explore(obs, self.noise.step().to(obs.device))
        else:
            stored = nets.sample(obs, deterministic=False)
        return stored, nets.to_env_units(stored.to(obs.device)).cpu().numpy()

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]


def make_explorer(
    experiment: Experiment, nets: SACNetworks, num_envs: int, rng: np.random.Generator,
    worker: tuple[int, int] | None = None,
) -> SACExplorer:  # fmt: skip
    """The loop's explorer (``methods/offpolicy.py``), the same on every Ray worker. Under
    gSDE, its matrices are drawn every sample_freq steps, or (-1) every train_freq steps: once
    between two rounds of gradient steps, as once a rollout is for PPO."""
    sde = experiment.exploration.sde
    if sde is None or nets.actor.sde is None:
        return SACExplorer(nets, rng)
    once_a_round = max(1, experiment.method.train_freq // num_envs)  # train_freq: all envs'
    every = once_a_round if sde.sample_freq == -1 else sde.sample_freq
    noise = ExplorationNoise(num_envs, nets.actor.sde.features, nets.action_dim, every)
    return SACExplorer(nets, rng, noise)


def train(experiment: Experiment, run: RunFolder, resume: ResumePoint | None = None) -> Result:
    """Train SAC as the experiment says, in the given run folder (or go on from ``resume``)."""
    with training_setup(experiment, resume) as (venv, agent):
        return _train(experiment, run, venv, agent, resume)


def _train(
    experiment: Experiment, run: RunFolder, venv: VecEnv, agent: Agent, resume: ResumePoint | None
) -> Result:
    cfg: SACConfig = experiment.method
    nets = agent.policy
    auto_alpha = experiment.exploration.alpha == "auto"
    entropy_target = (
        target_entropy(experiment.exploration, venv.action_space) if auto_alpha else None
    )

    # One Adam per loss, each over the parameters only its loss should move (listed once).
    groups = {
        "critic": trainable(nets.critic, "critics", experiment.agent),
        "actor": trainable(nets.actor, "actor", experiment.agent),
        "alpha": [nets.log_alpha] if auto_alpha else [],
    }
    groups = {name: params for name, params in groups.items() if params}
    learning_rate = value_at(cfg.learning_rate, 0.0)
    optimizers = {
        name: torch.optim.Adam(
            scaled_groups(params, nets, experiment.agent.lr_scale, learning_rate),
            lr=learning_rate,
            eps=cfg.adam_eps,
            fused=True,
        )
        for name, params in groups.items()
    }
    nets.log_alpha.requires_grad_(auto_alpha)
    constraint, cost_q, multiplier = experiment.constraint, None, None
    if constraint is not None:  # Lagrangian SAC (core/constraint.py)
        if nets.discrete or len(venv.obs_shape) != 1:
            raise ConfigError(
                "constraint with SAC: Lagrangian SAC's cost critic takes vector observations and "
                f"Box actions; this env has {venv.observation_space} and {venv.action_space}"
            )
        cost_q = CostQ(venv.obs_shape[0], nets.action_dim, experiment.agent.network,
                       learning_rate, cfg.adam_eps, nets.log_alpha.device)  # fmt: skip
        multiplier = multiplier_from(constraint)
        update_cost_target = PolyakUpdate(cost_q.target, cost_q.critic)

    discrete = nets.discrete
    action_shape = () if discrete else (nets.action_dim,)
    buffer = make_buffer(experiment, venv, obs_dtype(nets.critic.cnn), action_shape,
                         torch.int64 if discrete else torch.float32)  # fmt: skip
    rng = np.random.default_rng(experiment.seed)  # warm-up actions and replay sampling
    explorer = make_explorer(experiment, nets, venv.num_envs, rng)
    update_critic_target = PolyakUpdate(nets.critic_target, nets.critic)
    loop = OffPolicyState()
    state = TrainState()
    state.module("model", nets)
    for name, optimizer in optimizers.items():
        state.optimizer(f"optimizer_{name}", optimizer)
    state.numpy_rng("rng_replay", rng)
    if explorer.noise is not None:
        state.stateful("noise", explorer.noise)
    if cost_q is not None:
        state.module("cost_critic", cost_q.critic)
        state.module("cost_critic_target", cost_q.target)
        state.optimizer("optimizer_cost_critic", cost_q.optimizer)
        state.fields("multiplier", multiplier, *Multiplier.FIELDS)
    session = TrainingSession(experiment, run, agent, venv, state, resume)
    run.update(replay_buffer_bytes=buffer.nbytes)

    def update(progress: float) -> dict[str, float]:
        rate = value_at(cfg.learning_rate, progress)
        set_lr([*optimizers.values(), *([cost_q.optimizer] if cost_q else [])], rate)
        terms, stats = sac_losses(nets, buffer, cfg, rng, entropy_target, cost_q,
                                  multiplier.value if multiplier else 0.0)  # fmt: skip
        total(terms, "SAC")  # every term finite, or the one that is not named
        # Each loss moves only its own parameters: the actor loss reaches the actor through the
        # critics (dQ/da) without touching their weights. backward(inputs=...) prunes the rest.
        if session.penalty is not None:  # a continual run's terms, each over its own group
            for name in [n for n in groups if n != "alpha"]:
                for key, term in session.penalty(groups[name]).items():
                    terms[f"loss/{name}"] = terms[f"loss/{name}"] + term
                    terms[f"{key}_{name}"] = term.detach()
        steps = [(optimizers[name], groups[name], terms[f"loss/{name}"]) for name in groups]
        if cost_q is not None:  # the cost term moves the actor; its critic has its own step
            actor = optimizers.get("actor")  # none when agent.freeze holds the actor
            steps = [(o, p, loss + terms["loss/cost"] if o is actor else loss)
                     for o, p, loss in steps]  # fmt: skip
            steps.append((cost_q.optimizer, list(cost_q.critic.parameters()),
                          terms["loss/cost_critic"]))  # fmt: skip
        descend_together(steps, cfg.max_grad_norm, "SAC")
        if (loop.gradient_steps + 1) % cfg.target_update_freq == 0:
            update_critic_target(cfg.tau)
            if cost_q is not None:
                update_cost_target(cfg.tau)
        return {
            **{f"train/loss_{name.removeprefix('loss/')}": t.item() for name, t in terms.items()},
            **{name: value.item() for name, value in stats.items()},
            "explore/alpha": nets.log_alpha.detach().exp().item(),
            "train/learning_rate": rate,
        }

    observe = nets.normalizer.update if experiment.env.normalize_obs else None

    def constrain(episodes: list) -> dict[str, float]:
        moves = loop.step >= constraint.warmup * experiment.stopping.total_steps
        return step_multiplier(
            multiplier, constraint.cost, constraint.limit, episodes, moves, constraint.target
        )

    return train_off_policy(
        experiment, session, venv, buffer, explorer, make_explorer, update, loop, observe,
        constrain if constraint is not None else None,
    )  # fmt: skip
