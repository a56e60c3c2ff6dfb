"""Proximal Policy Optimization (Schulman et al. 2017, arXiv:1707.06347) with GAE.

The loop, top to bottom:

    collect   num_steps steps in each of num_envs envs with the current policy (among the
              allowed actions, where the env gives action masks)
    returns   GAE advantages, bootstrapped from the final observation of truncated episodes
    update    num_epochs passes of clipped-surrogate minibatch updates (early stop on target_kl)
    log       losses, KL, clip fraction, episode returns, steps/s; then the session validates,
              checkpoints and decides whether to stop

The loss is a dict of named, weighted terms: another method (a constrained variant) adds a
term by adding an entry, and reuses ``ppo_update`` by calling it. The loop itself is public,
``run``, for the methods built on it: one that learns its own reward (GAIL) gives it a
``RewardModel``, which after each collection rewrites the stored rewards (the env's still count
the logged episode returns), then the loop scales them, when ``env.normalize_reward`` says so,
and updates as usual; one whose critic reads something else than the actor's observation (a
centralized critic's global state) gives it a ``CriticInput``. On a multi-agent env
(``core/ma_env.py``) the rows are agents: the loop is the same, and its steps count env steps
(one per copy), not agent steps; in a turn-based game a row's returns run over its agent's
own decisions (``core/returns.py: gae_over_turns``).

On Ray workers with ``distributed.mode: async`` the rollouts were collected by weights up to
``distributed.max_staleness`` updates old. The learner then scores them with the current policy
and computes V-trace targets and advantages (Espeholt et al. 2018) from the behaviour policy's
log-probabilities, and the clipped surrogate is taken around the current policy, the
"proximal" one, not the behaviour one (decoupled PPO, Hilton et al. 2022, arXiv:2110.00641):
the ratio starts at 1 whatever the lag, and the lag is corrected by V-trace's truncated
importance weights alone.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Protocol

import torch
from gymnasium import spaces

from mentor.agent import Agent, trainable
from mentor.core.agent_rows import AgentsSpec, parameter_groups, row_space
from mentor.core.constraint import CostValues, Multiplier, multiplier_from, step_multiplier
from mentor.core.learner import Learner
from mentor.core.memory import Scorer, collect_recurrent, sequence_minibatches
from mentor.core.networks import ActorCritic, obs_dtype
from mentor.core.normalize import RewardScaler
from mentor.core.optim import descend, set_lr
from mentor.core.returns import gae, vtrace
from mentor.core.rollout import CriticInput, collect, scale_rewards, score_rollout
from mentor.core.schedules import value_at
from mentor.core.sde import ExplorationNoise
from mentor.core.storage import RolloutStorage
from mentor.core.vec_env import VecEnv
from mentor.errors import ConfigError
from mentor.experiment import Experiment, PPOConfig
from mentor.runs.checkpoint import ResumePoint
from mentor.runs.folder import RunFolder
from mentor.runs.session import Result, TrainingSession, training_setup
from mentor.runs.state import TrainState
from mentor.transfer.loading import scaled_groups


@dataclass
class RecurrentState:
    """The recurrent state of each env between rollouts (training state: saved and restored)."""

    state: torch.Tensor

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"state": self.state.cpu().clone()}

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        self.state = tensors["state"].clone()


@dataclass
class Batch:
    """A minibatch of the flattened rollout."""

    obs: torch.Tensor
    actions: torch.Tensor
    log_probs: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    critic_obs: torch.Tensor | None = None
    masks: torch.Tensor | None = None  # the action masks the actions were chosen under
    cost_advantages: torch.Tensor | None = None  # under a constraint (core/constraint.py)

    def rows(self, index: torch.Tensor) -> Batch:
        return Batch(
            self.obs[index],
            self.actions[index],
            self.log_probs[index],
            self.values[index],
            self.advantages[index],
            self.returns[index],
            None if self.critic_obs is None else self.critic_obs[index],
            None if self.masks is None else self.masks[index],
            None if self.cost_advantages is None else self.cost_advantages[index],
        )


def ppo_loss(
    policy: ActorCritic,
    batch: Batch,
    cfg: PPOConfig,
    clip_coef: float,
    entropy_coef: float,
    multiplier: float = 0.0,
    scored: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    joint: bool = False,
) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """The weighted loss terms (their sum is minimised) and diagnostics for one minibatch;
    ``scored``: its log-probabilities, entropies and values when already computed (a recurrent
    policy's, by replaying its sequences: ``core/memory.py``).
    Under a constraint (``batch.cost_advantages``) the policy term weighs 1 / (1 + lambda) and
    ``loss/cost``, the clipped surrogate of the cost advantages (standardized as the reward's,
    so that lambda weighs the two in the same units whatever the cost's scale: centered only, a
    small per-step cost such as a speed left the gradient to vanish as lambda grew), lambda /
    (1 + lambda): the Lagrangian's policy gradient, kept in scale as the multiplier grows (Ray,
    Achiam & Amodei 2019)."""
    if scored is None:
        scored = policy.evaluate_actions(batch.obs, batch.actions, batch.critic_obs, batch.masks)
    log_probs, entropy, values = scored
    log_ratio = log_probs - batch.log_probs
    ratio = log_ratio.exp()
    advantages = batch.advantages
    if cfg.normalize_advantages and len(advantages) > 1:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    policy_loss = torch.max(
        -advantages * ratio, -advantages * ratio.clamp(1 - clip_coef, 1 + clip_coef)
    ).mean()
    old_values, targets = batch.values, batch.returns
    if policy.value_stats is not None:  # value normalization: the loss in standardized units
        values, old_values, targets = map(policy.standardize_value, (values, old_values, targets))
    value_error = (values - targets).square()
    if cfg.value_clip_coef is not None:
        clipped = old_values + (values - old_values).clamp(
            -cfg.value_clip_coef, cfg.value_clip_coef
        )
        value_error = torch.max(value_error, (clipped - targets).square())
    value_loss = 0.5 * value_error.mean()
    entropy_mean = entropy.mean()
    with torch.no_grad():  # "approx KL" k3 estimator (Schulman 2020, "Approximating KL")
        approx_kl = ((ratio - 1) - log_ratio).mean().item()
        clip_fraction = ((ratio - 1).abs() > clip_coef).float().mean().item()
    terms = {
        "loss/policy": policy_loss,
        "loss/value": cfg.vf_coef * value_loss,
        "loss/entropy": -entropy_coef * entropy_mean,
    }
    if batch.cost_advantages is not None:
        costs = batch.cost_advantages
        clipped = ratio.clamp(1 - clip_coef, 1 + clip_coef)
        if joint:  # one scale for both: lambda in the units of reward per cost
            rewards = batch.advantages
            scale = 1.0
            if cfg.normalize_advantages and len(costs) > 1:
                scale = (rewards - multiplier * costs).std() + 1e-8
                rewards, costs = rewards - rewards.mean(), costs - costs.mean()
            rewards, costs = rewards / scale, costs / scale
            terms["loss/policy"] = torch.max(-rewards * ratio, -rewards * clipped).mean()
            terms["loss/cost"] = multiplier * torch.max(costs * ratio, costs * clipped).mean()
        else:
            if cfg.normalize_advantages and len(costs) > 1:
                costs = (costs - costs.mean()) / (costs.std() + 1e-8)
            cost_surrogate = torch.max(costs * ratio, costs * clipped).mean()  # pessimistic
            terms["loss/policy"] = policy_loss / (1 + multiplier)
            terms["loss/cost"] = multiplier / (1 + multiplier) * cost_surrogate
    stats = {
        "train/entropy": entropy_mean.item(),
        "train/approx_kl": approx_kl,
        "train/clip_fraction": clip_fraction,
    }
    return terms, stats


def ppo_update(
    policy: ActorCritic,
    optimizer: torch.optim.Optimizer,
    storage: RolloutStorage,
    advantages: torch.Tensor,
    returns: torch.Tensor,
    cfg: PPOConfig,
    clip_coef: float,
    entropy_coef: float,
    generator: torch.Generator,
    penalty: Callable[[list[torch.nn.Parameter]], dict[str, torch.Tensor]] | None = None,
    cost_advantages: torch.Tensor | None = None,
    multiplier: float = 0.0,
    joint: bool = False,
) -> dict[str, float]:
    """num_epochs passes of minibatch updates over the valid transitions of a rollout.
    ``penalty``: more loss terms over the parameters (a continual run's ``session.penalty``);
    ``cost_advantages`` and ``multiplier``: a constraint's (``ppo_loss``)."""
    valid = storage.valid.flatten().nonzero().squeeze(1)
    flat = Batch(
        obs=storage.obs.flatten(0, 1),
        actions=storage.actions.flatten(0, 1),
        log_probs=storage.log_probs.flatten(),
        values=storage.values.flatten(),
        advantages=advantages.flatten(),
        returns=returns.flatten(),
        critic_obs=None if storage.critic_obs is None else storage.critic_obs.flatten(0, 1),
        masks=None if storage.masks is None else storage.masks.flatten(0, 1),
        cost_advantages=None if cost_advantages is None else cost_advantages.flatten(),
    )
    minibatch_size = math.ceil(len(valid) / cfg.num_minibatches)
    params = [p for p in policy.parameters() if p.requires_grad]
    totals: dict[str, float] = {}
    count = 0

    def minibatches() -> Iterator[tuple[torch.Tensor, Scorer | None]]:
        if policy.memory is not None:  # groups of sequences, replayed (core/memory.py)
            yield from sequence_minibatches(
                policy, storage, cfg.num_minibatches, cfg.sequence_length, cfg.burn_in,
                generator, next(policy.parameters()).device,
            )  # fmt: skip
            return
        order = valid[torch.randperm(len(valid), generator=generator)]
        for start in range(0, len(order), minibatch_size):
            yield order[start : start + minibatch_size], None

    for _epoch in range(cfg.num_epochs):
        for index, score in minibatches():
            batch = flat.rows(index)
            terms, stats = ppo_loss(policy, batch, cfg, clip_coef, entropy_coef, multiplier,
                                    None if score is None else score(), joint)  # fmt: skip
            if penalty is not None:
                terms.update(penalty(params))
            grad_norm = descend(optimizer, params, terms, cfg.max_grad_norm, "PPO")
            for key, value in {**{k: v.item() for k, v in terms.items()}, **stats}.items():
                totals[key] = totals.get(key, 0.0) + value
            totals["train/grad_norm"] = totals.get("train/grad_norm", 0.0) + grad_norm
            count += 1
        if cfg.target_kl is not None and stats["train/approx_kl"] > cfg.target_kl:
            break
    metrics = {key.replace("loss/", "train/loss_"): total / count for key, total in totals.items()}
    metrics["train/epochs"] = _epoch + 1
    return metrics


def explained_variance(values: torch.Tensor, returns: torch.Tensor) -> float:
    """1 - Var(returns - values) / Var(returns): how much of the return the critic explains."""
    var = returns.var().item()
    return float("nan") if var == 0 else 1.0 - (returns - values).var().item() / var


def build_networks(
    experiment: Experiment,
    obs_space: spaces.Space,
    action_space: spaces.Space,
    *,
    agents: AgentsSpec | None = None,
) -> ActorCritic:
    """PPO's actor-critic; with ``agents`` (a multi-agent env: IPPO's rows, or self-play's
    learner seat), over one row: the agent's observation and its index, one set of parameters
    per group of agents with the same spaces (``core/agent_rows.py``)."""
    groups, own = None, obs_space
    if agents is not None:
        obs_space = row_space(obs_space, agents.num_agents, agents.agent_ids)
        groups = parameter_groups(agents, getattr(experiment.method, "share_parameters", True))
    return ActorCritic(
        obs_space,
        action_space,
        experiment.agent.network,
        normalize_obs=experiment.env.normalize_obs,
        clip_obs=experiment.env.clip_obs,
        groups=groups,
        value_norm=getattr(experiment.method, "value_norm", False),
        layout_space=own,
        sde_log_std_init=sde_log_std_init(experiment, action_space),
    )


def sde_log_std_init(experiment: Experiment, action_space: spaces.Space) -> float | None:
    """gSDE's initial log sigma when ``exploration.sde`` is on (Box actions only), else None."""
    sde = experiment.exploration.sde
    if sde is None:
        return None
    if not isinstance(action_space, spaces.Box):
        raise ConfigError(
            f"exploration.sde needs Box actions (a Gaussian policy's noise); this env's action "
            f"space is {action_space}: remove exploration.sde"
        )
    return sde.log_std_init


def learn_turn(
    learner: Learner,
    venv: VecEnv,
    generator: torch.Generator,
    cfg: PPOConfig,
    clip_coef: float,
    entropy_coef: float,
    device: torch.device,
) -> dict[str, float]:
    """One rollout of a side learner (``core/learner.py``) in ``venv`` from its last
    observation, then its PPO update (``cfg``: the method's settings); its metrics, named
    ``train/<learner>/...``. For methods that train several learners (RARL, a league)."""
    policy, storage = learner.policy, learner.storage
    _, last_value = collect(policy, venv, storage, venv.last_obs, learner.scaler, device)
    next_values = torch.cat([storage.values[1:], last_value.unsqueeze(0)])
    advantages, returns = gae(
        storage.rewards, storage.values, next_values, storage.terminated, storage.truncated,
        cfg.gamma, cfg.gae_lambda, storage.waiting,
    )  # fmt: skip
    if policy.value_stats is not None:
        policy.value_stats.update(returns[storage.valid])
    metrics = ppo_update(
        policy, learner.optimizer, storage, advantages, returns, cfg, clip_coef, entropy_coef,
        generator,
    )  # fmt: skip
    policy.normalizer.update(storage.obs.flatten(0, 1)[storage.valid.flatten()])
    out = {key.replace("train/", f"train/{learner.name}/"): v for key, v in metrics.items()}
    out[f"train/{learner.name}/reward_mean"] = float(storage.rewards[storage.valid].mean())
    return out


class RewardModel(Protocol):
    """A learned reward for PPO's loop (GAIL's discriminator)."""

    def register(self, state: TrainState) -> None:
        """Add its own pieces (networks, optimizers, generators) to the training state."""

    def __call__(self, storage: RolloutStorage) -> dict[str, float]:
        """Learn from the rollout, replace ``storage.rewards`` in place; returns metrics."""


@dataclass
class PPOProgress:
    """The loop's counters (saved in checkpoints)."""

    step: int = 0
    updates: int = 0


def train(experiment: Experiment, folder: RunFolder, resume: ResumePoint | None = None) -> Result:
    """Train PPO as the experiment says, in the given run folder (or go on from ``resume``)."""
    with training_setup(experiment, resume) as (venv, agent):
        return run(experiment, folder, venv, agent, resume)


def run(
    experiment: Experiment,
    run: RunFolder,
    venv: VecEnv,
    agent: Agent,
    resume: ResumePoint | None = None,
    *,
    reward_model: RewardModel | None = None,
    critic_input: CriticInput | None = None,
) -> Result:
    """PPO's loop on envs and an agent already made (``training_setup``): for PPO itself and
    the methods built on it. ``reward_model`` replaces the env's rewards with a learned one;
    ``critic_input`` is what the critic reads, for an agent whose networks were built with a
    critic of its own input (``ActorCritic(critic_space=...)``): the method that passes one
    builds such a critic in its ``build_networks``, so that its checkpoints load as agents."""
    cfg, env = experiment.method, experiment.env
    device, policy = agent.device, agent.policy
    critic_space = None if critic_input is None else critic_input.space
    if (policy.critic_normalizer is None) != (critic_space is None):
        raise ValueError(
            "PPO's critic_input and the networks disagree: give a critic input exactly when "
            "the actor-critic was built with a critic_space"
        )
    learning_rate = value_at(cfg.learning_rate, 0.0)
    params = trainable(policy, "policy", experiment.agent)
    optimizer = torch.optim.Adam(
        scaled_groups(params, policy, experiment.agent.lr_scale, learning_rate),
        lr=learning_rate,
        eps=cfg.adam_eps,
        fused=True,  # one kernel for all parameters: ~15% faster steps on a CPU
    )
    reward_scaler = RewardScaler(venv.num_envs, cfg.gamma, env.normalize_reward)
    # With a learned reward the env's rewards are only counted, not scaled.
    collect_scaler = reward_scaler if reward_model is None else RewardScaler(1, 0.0, False)
    generator = torch.Generator().manual_seed(experiment.seed)  # minibatch order
    counters = PPOProgress()
    state = TrainState()  # the rollout storage is refilled every iteration: not state
    state.module("model", policy)
    state.optimizer("optimizer", optimizer)
    state.stateful("reward_scaler", reward_scaler)
    state.torch_rng("rng_minibatches", generator)
    state.fields("progress", counters, "step", "updates")
    if reward_model is not None:
        reward_model.register(state)
    constraint = experiment.constraint  # a cost limit (core/constraint.py)
    cost_values = multiplier = None
    if constraint is not None:
        if policy.cnn is not None or len(venv.obs_shape) != 1 or venv.agents_spec is not None:
            agents = " (multi-agent)" if venv.agents_spec is not None else ""
            raise ConfigError("constraint: the cost critic reads one agent's vector "
                              f"observations; this env's are {venv.obs_shape}{agents}")  # fmt: skip
        cost_values = CostValues(policy.normalizer, venv.obs_shape[0], experiment.agent.network,
                                 learning_rate, cfg.adam_eps, device)  # fmt: skip
        multiplier = multiplier_from(constraint)
        cost_gamma = cfg.gamma if constraint.gamma is None else constraint.gamma
        state.module("cost_critic", cost_values.critic)
        state.optimizer("cost_optimizer", cost_values.optimizer)
        state.fields("multiplier", multiplier, *Multiplier.FIELDS)
    noise = None  # gSDE's matrices (core/sde.py)
    if policy.sde is not None:
        noise = ExplorationNoise(venv.num_envs, policy.sde.features, policy.sde.action_size,
                                 experiment.exploration.sde.sample_freq)  # fmt: skip
        state.stateful("noise", noise)
    memory = None  # a recurrent policy's state in each env, carried across rollouts
    if policy.memory is not None:
        memory = RecurrentState(policy.memory.initial(venv.num_envs))
        state.stateful("memory", memory)
    session = TrainingSession(experiment, run, agent, venv, state, resume)
    total_steps = experiment.stopping.total_steps

    obs = session.begin()  # after it the envs know whether they have action masks
    mask = venv.action_mask
    storage = RolloutStorage(
        cfg.num_steps, venv.num_envs, venv.obs_shape,
        obs_dtype(policy.cnn),
        policy.dist.action_shape, policy.dist.action_dtype,
        None if critic_space is None else critic_space.shape,
        None if mask is None else mask.shape[1], turns=venv.waiting is not None,
        cost_key=None if experiment.constraint is None else experiment.constraint.cost,
        state_size=None if policy.memory is None else policy.memory.state_size,
    )  # fmt: skip
    remote_collect = getattr(venv, "collect", None)  # Ray rollout workers (mentor/distributed)
    if remote_collect is not None and critic_input is not None:  # each worker makes its own
        venv.set_critic_input(type(critic_input), experiment)
    lagging = getattr(venv, "asynchronous", False)  # Ray workers, distributed.mode async
    with session.running():
        while session.stop_reason is None:
            tic = time.perf_counter()
            progress = counters.step / total_steps
            learning_rate = value_at(cfg.learning_rate, progress)
            set_lr([optimizer], learning_rate)
            clip_coef = value_at(cfg.clip_coef, progress)
            entropy_coef = value_at(experiment.exploration.entropy_coef, progress)

            if remote_collect is not None:
                obs, last_value = remote_collect(policy, storage, collect_scaler)
            elif memory is not None:
                obs, memory.state, last_value = collect_recurrent(
                    policy, venv, storage, obs, memory.state.to(device), collect_scaler, device
                )
            else:
                if noise is not None:
                    noise.new_rollout()
                obs, last_value = collect(
                    policy, venv, storage, obs, collect_scaler, device, critic_input, noise
                )
            counters.step += venv.num_copies * cfg.num_steps  # env steps, not agent steps
            reward_metrics = {}
            if reward_model is not None:
                reward_metrics = reward_model(storage)
                if reward_scaler.enabled:
                    scale_rewards(storage, reward_scaler)
            if lagging:  # rescored by the current policy; V-trace for the lag (module docstring)
                behaviour = storage.log_probs.clone()
                with torch.inference_mode():
                    last_value = score_rollout(policy, storage, obs, device)
                next_values = torch.cat([storage.values[1:], last_value.unsqueeze(0)])
                advantages, returns = vtrace(
                    storage.rewards, storage.values, next_values, storage.terminated,
                    storage.truncated, storage.log_probs - behaviour, cfg.gamma, cfg.gae_lambda,
                )  # fmt: skip
            else:
                next_values = torch.cat([storage.values[1:], last_value.unsqueeze(0)])
                advantages, returns = gae(
                    storage.rewards, storage.values, next_values, storage.terminated,
                    storage.truncated, cfg.gamma, cfg.gae_lambda, storage.waiting,
                )  # fmt: skip
            session.observe_rollout(advantages, storage)  # a curriculum's scores (PLR)
            if policy.value_stats is not None:  # the returns the critic is now fit to
                policy.value_stats.update(returns[storage.valid])
            cost_advantages, constraint_metrics = None, {}
            if cost_values is not None:
                cost_advantages, cost_returns, _ = cost_values.advantages(
                    storage, torch.from_numpy(obs), cost_gamma, cfg.gae_lambda
                )
                constraint_metrics = step_multiplier(
                    multiplier, constraint.cost, constraint.limit, venv.episodes,
                    progress >= constraint.warmup, constraint.target,
                )  # fmt: skip
            metrics = ppo_update(
                policy, optimizer, storage, advantages, returns, cfg, clip_coef, entropy_coef,
                generator, session.penalty, cost_advantages,
                0.0 if multiplier is None else multiplier.value,
                constraint is not None and constraint.scale == "joint",
            )  # fmt: skip
            if cost_values is not None:
                set_lr([cost_values.optimizer], learning_rate)
                constraint_metrics["train/loss_cost_value"] = cost_values.fit(
                    storage, cost_returns, cfg.num_epochs, cfg.num_minibatches, generator
                )
                metrics.update(constraint_metrics)
            learned = storage.valid.flatten()
            policy.normalizer.update(storage.obs.flatten(0, 1)[learned])
            if policy.critic_normalizer is not None:
                policy.critic_normalizer.update(storage.critic_obs.flatten(0, 1)[learned])
            counters.updates += 1

            valid = storage.valid
            explained = explained_variance(storage.values[valid], returns[valid])
            metrics.update({
                "train/explained_variance": explained,
                "train/learning_rate": learning_rate,
                "train/clip_coef": clip_coef,
                "train/entropy_coef": entropy_coef,
                "time/sps": venv.num_copies * cfg.num_steps / (time.perf_counter() - tic),
                "time/updates": counters.updates,
                **reward_metrics,
                **venv.episode_metrics(),
            })  # fmt: skip
            if lagging:
                metrics["time/staleness"] = sum(venv.staleness) / len(venv.staleness)
                metrics["time/dropped_rollouts"] = venv.dropped
            if session.league is not None:  # each exploiter's turn (mentor/selfplay/league.py)
                learn = partial(learn_turn, cfg=cfg, clip_coef=clip_coef,
                                entropy_coef=entropy_coef, device=device)  # fmt: skip
                metrics.update(session.league.update(learn, progress, counters.step))
            session.log(counters.step, metrics)
            session.after_update(counters.step)
    return session.result
