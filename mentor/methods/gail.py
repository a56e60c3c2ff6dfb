"""Generative Adversarial Imitation Learning (Ho & Ermon 2016, arXiv:1606.03476).

GAIL learns a policy from demonstrations alone: no env reward reaches the update. It plays a
game between two networks:

    discriminator  D(s, a) in (0, 1): the probability that the pair (s, a) came from the expert.
                   Trained by binary cross-entropy, expert pairs labelled 1, the policy's 0.
    policy         PPO's actor-critic, trained by mentor's PPO update on a reward that is high
                   where D takes the policy's pairs for the expert's.

At the game's equilibrium the policy's state-action occupancy matches the expert's (the
discriminator's optimum gives the Jensen-Shannon divergence between them; Ho & Ermon, section 5).

The loop is PPO's (``ppo._train``), given this file's ``DiscriminatorReward`` as its reward
model. Top to bottom, once per rollout:

    collect        num_steps steps in each of num_envs envs with the current policy (PPO's
                   ``collect``); the env's rewards still count the episode returns that are
                   logged, and validation and the final evaluation use the env's own return
    discriminator  ``discriminator_epochs`` passes over the rollout's valid pairs in minibatches
                   of ``discriminator_batch_size``, each against as many expert pairs drawn at
                   random from the dataset (``data.path``)
    reward         the stored env rewards are replaced by the discriminator's, from its logit
                   l = log D - log(1 - D), computed stably:
                       gail:  -log(1 - D) = softplus(l)       (Ho & Ermon's -log D with their
                                                               labels swapped; always > 0)
                       airl:  log D - log(1 - D) = l          (AIRL's reward form, Fu et al.
                                                               2018, arXiv:1710.11248; at the
                                                               optimal D it is log(rho_E/rho_pi),
                                                               so the policy minimizes the reverse
                                                               KL to the expert's occupancy:
                                                               Ghasemipour et al. 2019,
                                                               arXiv:1911.02256)
                   scaled by the running std of the discounted return when env.normalize_reward
    update         GAE and PPO's clipped-surrogate epochs (``gae``, ``ppo_update``), as in PPO
    log            PPO's metrics, plus the discriminator's loss terms, its accuracy on expert and
                   on policy pairs, and the mean reward it gave

The discriminator is an MLP over [encoded observation, encoded action]: observations as mentor's
networks read them (vectors standardized with the expert data's mean and std, fixed when the
run starts; images through a Nature CNN), actions one-hot for Discrete and MultiDiscrete, bits for
MultiBinary, and raw values for Box, the policy's clipped to the bounds as the env executed them.
Two regularizers keep it from becoming too sharp to give the policy a useful signal:

    gradient_penalty  R1 (Mescheder et al. 2018, arXiv:1801.04406, "Which training methods for
                      GANs do actually converge?"): (gamma / 2) E_expert ||grad_x l(x)||^2,
                      the gradient of the logit with respect to the discriminator's input, on
                      expert pairs only. It makes the game converge locally where the
                      unregularized one may circle; mentor's default gamma is 10.
    spectral_norm     each layer's weight divided by its largest singular value (Miyato et al.
                      2018, arXiv:1802.05957), so the discriminator is 1-Lipschitz per layer.

Terminations. Without more, a terminated episode ends without bootstrapping, as in PPO, and
the reward's sign becomes a prior on episode length (Kostrikov et al. 2019, arXiv:1809.02925,
"Discriminator-Actor-Critic"): the gail reward is positive, so a longer episode earns more, a
bias toward survival that suits CartPole and not every task (on CartPole, GAIL trained on random
actions reaches 500 too); the airl reward is negative wherever D favours the expert, so ending
an episode early can pay. ``absorbing`` (on by default with the airl reward) follows Kostrikov et
al.: after a termination the episode goes on forever in one absorbing state, a row of zeros with
an extra input flag set, which the discriminator judges like any pair. Each expert episode that
terminated adds one absorbing row to the expert's side, each terminated step of a rollout one to
the policy's, and a terminated step's reward gains the absorbing state's future, gamma / (1 -
gamma) times its reward. Ending an episode then pays only as far as the expert ends its own.
With the expert's demonstrations of CartPole all cut off at 500 steps, the absorbing state is
the policy's alone and ending costs; with a random "expert" that falls, ending pays as it should
for imitating it. It is off by default with the gail reward: positive everywhere, it pays
gamma / (1 - gamma) times the absorbing state's reward (~50 x 0.69 from an untrained
discriminator) for every fall while the discriminator is still learning, and the policy learns to
fall first (CartPole: 9 at the first validation, 0.71 of the expert's return after 200k steps).

Everything the run needs to continue — the policy, the discriminator, both optimizers, the reward
scaler, the generators for minibatch order and expert draws — is registered in the TrainState,
so a resumed run ends bitwise equal to one never stopped.
"""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces
from torch import nn
from torch.nn import functional as F

from mentor.core.networks import NatureCNN, mlp
from mentor.core.optim import descend
from mentor.core.storage import RolloutStorage
from mentor.core.vec_env import VecEnv
from mentor.data.dataset import Dataset
from mentor.data.load import load_data
from mentor.envs.spaces import is_image, obs_encoder, to_network_actions
from mentor.errors import ConfigError
from mentor.experiment import Experiment, GAILConfig
from mentor.methods import ppo
from mentor.methods.ppo import build_networks
from mentor.runs.checkpoint import ResumePoint
from mentor.runs.folder import RunFolder
from mentor.runs.session import Result, training_setup
from mentor.runs.state import TrainState

__all__ = [
    "Discriminator",
    "build_networks",
    "discriminator_loss",
    "discriminator_rewards",
    "expert_pairs",
    "train",
    "train_discriminator",
]


# --- the discriminator ----------------------------------------------------------------------------


class Discriminator(nn.Module):
    """The logit l(s, a) = log D - log(1 - D) of "this pair is the expert's".

    Observations and actions enter as the policy stores them (encoded observations; network
    actions: class indices for Discrete and MultiDiscrete, floats for Box and MultiBinary).
    """

    def __init__(
        self,
        obs_space: spaces.Space,
        action_space: spaces.Space,
        hidden_sizes: list[int],
        spectral_norm: bool = False,
        obs_mean: torch.Tensor | None = None,
        obs_std: torch.Tensor | None = None,
        absorbing: bool = False,
    ) -> None:
        super().__init__()
        _, obs_shape = obs_encoder(obs_space)
        self.absorbing = absorbing
        self.cnn = NatureCNN(obs_shape) if is_image(obs_space) else None
        obs_size = self.cnn.out_size if self.cnn is not None else obs_shape[0]
        size = obs_shape[0] if self.cnn is None else 1
        self.register_buffer("obs_mean", torch.zeros(size) if obs_mean is None else obs_mean)
        self.register_buffer("obs_std", torch.ones(size) if obs_std is None else obs_std)
        self.action_space = action_space
        if isinstance(action_space, spaces.Box):
            self.register_buffer("action_low", torch.as_tensor(action_space.low).flatten())
            self.register_buffer("action_high", torch.as_tensor(action_space.high).flatten())
        self.nvec = (
            [int(action_space.n)]
            if isinstance(action_space, spaces.Discrete)
            else [int(n) for n in np.asarray(action_space.nvec).reshape(-1)]
            if isinstance(action_space, spaces.MultiDiscrete)
            else []
        )
        in_size = obs_size + (sum(self.nvec) or int(np.prod(action_space.shape))) + absorbing
        self.body = mlp(in_size, hidden_sizes, "tanh")
        self.head = nn.Linear(hidden_sizes[-1] if hidden_sizes else in_size, 1)
        if spectral_norm:
            for layer in self.modules():
                if isinstance(layer, nn.Linear | nn.Conv2d):
                    nn.utils.parametrizations.spectral_norm(layer)

    def inputs(self, obs: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The float tensors the network reads (and the gradient penalty differentiates by)."""
        obs = obs.float()  # images stay 0-255: the CNN scales them
        if self.cnn is None:
            obs = (obs - self.obs_mean) / self.obs_std
        if self.nvec:
            index = actions.reshape(len(actions), -1)
            actions = torch.cat(
                [F.one_hot(index[:, i], n).float() for i, n in enumerate(self.nvec)], 1
            )
        else:
            actions = actions.reshape(len(actions), -1).float()
            if isinstance(self.action_space, spaces.Box):  # what the env executed
                actions = torch.max(torch.min(actions, self.action_high), self.action_low)
        return obs, actions

    def logits_from(
        self, obs: torch.Tensor, actions: torch.Tensor, flags: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits from ``inputs``; ``flags`` (1 for the absorbing state) when it is modelled."""
        parts = [self.cnn(obs) if self.cnn is not None else obs, actions]
        if self.absorbing:
            parts.append((torch.zeros(len(obs)) if flags is None else flags).to(obs).unsqueeze(1))
        return self.head(self.body(torch.cat(parts, 1))).squeeze(-1)

    def forward(
        self, obs: torch.Tensor, actions: torch.Tensor, flags: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.logits_from(*self.inputs(obs, actions), flags)


def build_discriminator(
    cfg: GAILConfig, obs_space: spaces.Space, action_space: spaces.Space, expert_obs: torch.Tensor
) -> Discriminator:
    """The discriminator, its observation standardization fixed from the expert's data."""
    mean = std = None
    if not is_image(obs_space):
        data = expert_obs.double()
        mean = data.mean(0).float()
        # A floor on the std: a feature the expert holds (nearly) constant must not blow the
        # policy's differing values up into a saturated discriminator.
        std = data.std(0, correction=0).clamp(min=1e-2).float()
    return Discriminator(
        obs_space, action_space, cfg.discriminator_hidden_sizes, cfg.spectral_norm, mean, std,
        absorbing=cfg.uses_absorbing,
    )  # fmt: skip


def expert_pairs(
    dataset: Dataset, action_space: spaces.Space, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """The dataset's observations and actions in the form the policy stores them: encoded
    observations, and actions as PPO's network gives them (indices from 0, floats)."""
    obs = torch.as_tensor(dataset.encoded_observations())
    actions = to_network_actions(action_space, dataset.actions)
    return obs.to(device), torch.as_tensor(actions).to(device)


# --- its loss, update and reward ------------------------------------------------------------------


def discriminator_loss(
    discriminator: Discriminator,
    expert_obs: torch.Tensor,
    expert_actions: torch.Tensor,
    policy_obs: torch.Tensor,
    policy_actions: torch.Tensor,
    gradient_penalty: float | None,
    expert_flags: torch.Tensor | None = None,
    policy_flags: torch.Tensor | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """The weighted loss terms (their sum is minimised) and diagnostics for one minibatch:
    binary cross-entropy, expert labelled 1 and policy 0 (each side's mean, averaged), and the R1
    penalty on the expert's side. ``flags`` mark absorbing-state rows."""
    expert_x = discriminator.inputs(expert_obs, expert_actions)
    penalize = bool(gradient_penalty)
    if penalize:
        expert_x = tuple(x.detach().requires_grad_(True) for x in expert_x)
    expert_logits = discriminator.logits_from(*expert_x, expert_flags)
    policy_logits = discriminator(policy_obs, policy_actions, policy_flags)
    # BCE from logits: -log sigmoid(l) = softplus(-l), -log(1 - sigmoid(l)) = softplus(l)
    bce = 0.5 * (F.softplus(-expert_logits).mean() + F.softplus(policy_logits).mean())
    terms = {"loss/bce": bce}
    if penalize:
        grads = torch.autograd.grad(expert_logits.sum(), expert_x, create_graph=True)
        squared_norm = sum(g.flatten(1).square().sum(1) for g in grads)
        terms["loss/gradient_penalty"] = 0.5 * gradient_penalty * squared_norm.mean()
    with torch.no_grad():
        stats = {
            "discriminator/accuracy_expert": (expert_logits > 0).float().mean().item(),
            "discriminator/accuracy_policy": (policy_logits < 0).float().mean().item(),
            "discriminator/prob_expert": torch.sigmoid(expert_logits).mean().item(),
            "discriminator/prob_policy": torch.sigmoid(policy_logits).mean().item(),
        }
    return terms, stats


def train_discriminator(
    discriminator: Discriminator,
    optimizer: torch.optim.Optimizer,
    expert: tuple[torch.Tensor, torch.Tensor],
    policy_obs: torch.Tensor,
    policy_actions: torch.Tensor,
    cfg: GAILConfig,
    generator: torch.Generator,
    policy_flags: torch.Tensor | None = None,
) -> dict[str, float]:
    """``discriminator_epochs`` passes over the policy's pairs in minibatches, each against as
    many expert pairs drawn at random; returns the mean of each loss term and diagnostic.
    ``expert`` is (observations, actions) or, with absorbing states, (..., flags)."""
    expert_obs, expert_actions, *rest = expert
    expert_flags = rest[0] if rest else None
    n = len(policy_obs)
    batch_size = min(cfg.discriminator_batch_size, n)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    totals: dict[str, float] = {}
    count = 0
    for _epoch in range(cfg.discriminator_epochs):
        order = torch.randperm(n, generator=generator).to(policy_obs.device)
        for start in range(0, n, batch_size):
            index = order[start : start + batch_size]
            drawn = torch.randint(len(expert_obs), (len(index),), generator=generator)
            drawn = drawn.to(expert_obs.device)
            terms, stats = discriminator_loss(
                discriminator, expert_obs[drawn], expert_actions[drawn],
                policy_obs[index], policy_actions[index], cfg.gradient_penalty,
                None if expert_flags is None else expert_flags[drawn],
                None if policy_flags is None else policy_flags[index],
            )  # fmt: skip
            descend(optimizer, params, terms, None, "GAIL discriminator")
            for key, value in {**{k: v.item() for k, v in terms.items()}, **stats}.items():
                totals[key] = totals.get(key, 0.0) + value
            count += 1
    return {
        key.replace("loss/", "discriminator/loss_"): total / count for key, total in totals.items()
    }


def discriminator_rewards(
    discriminator: Discriminator,
    obs: torch.Tensor,
    actions: torch.Tensor,
    kind: str,
    flags: torch.Tensor | None = None,
) -> torch.Tensor:
    """The reward of each pair of a batch: gail softplus(l) = -log(1 - D), airl l."""
    with torch.no_grad():
        logits = discriminator(obs, actions, flags)
    return F.softplus(logits) if kind == "gail" else logits


def with_absorbing(
    obs: torch.Tensor, actions: torch.Tensor, count: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pairs and their flags, with ``count`` absorbing-state rows appended (zero observation and
    action, flag 1: the flag is what the discriminator tells them by)."""
    flags = torch.cat([torch.zeros(len(obs)), torch.ones(count)]).to(obs.device)
    if count == 0:  # no copy of the pairs (a rollout of images is tens of MB)
        return obs, actions, flags
    obs = torch.cat([obs, obs.new_zeros((count, *obs.shape[1:]))])
    return obs, torch.cat([actions, actions.new_zeros((count, *actions.shape[1:]))]), flags


# --- the loop -------------------------------------------------------------------------------------


class DiscriminatorReward:
    """GAIL's reward for PPO's loop: after each collection, train the discriminator on the
    rollout's pairs against expert pairs, then replace the stored rewards with its reward."""

    def __init__(
        self, experiment: Experiment, venv: VecEnv, dataset: Dataset, device: torch.device
    ) -> None:
        self.cfg: GAILConfig = experiment.method
        if self.cfg.uses_absorbing and self.cfg.gamma >= 1:
            raise ConfigError(
                "method.absorbing needs method.gamma < 1: the absorbing state's return is its "
                "reward / (1 - gamma); set method.absorbing=false or a smaller gamma"
            )
        self.device = device
        obs, actions = expert_pairs(dataset, venv.action_space, device)
        self.discriminator = build_discriminator(
            self.cfg, venv.observation_space, venv.action_space, obs
        ).to(device)
        # Each expert episode that terminated went on in the absorbing state.
        ended = int(dataset.terminations.sum()) if self.cfg.uses_absorbing else 0
        self.expert = with_absorbing(obs, actions, ended)
        self.optimizer = torch.optim.Adam(
            self.discriminator.parameters(), lr=self.cfg.discriminator_learning_rate
        )
        # Its own stream (minibatch order, expert draws): the policy's updates keep theirs.
        self.generator = torch.Generator().manual_seed(experiment.seed + 1)

    def register(self, state: TrainState) -> None:
        state.module("discriminator", self.discriminator)
        state.optimizer("optimizer_discriminator", self.optimizer)
        state.torch_rng("rng_discriminator", self.generator)

    def __call__(self, storage: RolloutStorage) -> dict[str, float]:
        cfg, valid, device = self.cfg, storage.valid, self.device
        ended = (valid & storage.terminated) if cfg.uses_absorbing else torch.zeros_like(valid)
        policy = with_absorbing(
            storage.obs[valid].to(device), storage.actions[valid].to(device), int(ended.sum())
        )
        metrics = train_discriminator(
            self.discriminator, self.optimizer, self.expert, policy[0], policy[1], cfg,
            self.generator, policy[2],
        )  # fmt: skip
        rewards = discriminator_rewards(
            self.discriminator, storage.obs.flatten(0, 1).to(device),
            storage.actions.flatten(0, 1).to(device), cfg.reward,
        ).view_as(storage.rewards).cpu()  # fmt: skip
        if cfg.uses_absorbing:  # a terminated step's future: the absorbing state's reward, forever
            obs, actions, flags = with_absorbing(policy[0][:0], policy[1][:0], 1)  # its one row
            reward = discriminator_rewards(self.discriminator, obs, actions, cfg.reward, flags)
            rewards += ended * (cfg.gamma / (1 - cfg.gamma) * reward.item())
            metrics["discriminator/absorbing_reward"] = reward.item()
        rewards = torch.where(valid, rewards, 0.0)  # reset steps: not transitions
        metrics["discriminator/reward_mean"] = rewards[valid].mean().item()
        storage.rewards.copy_(rewards)
        return metrics


def train(experiment: Experiment, run: RunFolder, resume: ResumePoint | None = None) -> Result:
    """Train GAIL as the experiment says, in the given run folder (or go on from ``resume``):
    PPO's loop, with the discriminator's reward."""
    with training_setup(experiment, resume) as (venv, agent):
        # The demonstrations, checked against the env's spaces before any env is stepped.
        dataset = load_data(experiment.data, venv.observation_space, venv.action_space)
        reward = DiscriminatorReward(experiment, venv, dataset, agent.device)
        return ppo.run(experiment, run, venv, agent, resume, reward_model=reward)
