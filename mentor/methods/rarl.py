"""Robust adversarial RL (Pinto et al. 2017, arXiv:1703.02702) on PPO's pieces.

Two agents share one single-agent env: the **protagonist** (the agent this run trains, saves
and evaluates) and an **adversary** that perturbs it within ``method.budget`` and is paid the
protagonist's reward negated:

    adversary=action       the env gets the protagonist's action plus the adversary's, each
                           dimension within budget x the half-range of the action bounds (Box
                           actions: a force on the pendulum, the cheetah's joints)
    adversary=observation  the protagonist sees its observation plus the adversary's, each
                           dimension within budget x the half-range of the observation bounds
                           (1 where unbounded); the adversary sees the true observation

A schedule for the budget (``{start: 0, end: 0.4, fraction: 0.25}``) grows the push with the
run's progress, so that the protagonist learns the task before it meets the full adversary;
``attack`` uses the schedule's last value.

They learn in turns, as the paper's algorithm does: ``protagonist_rollouts`` rollouts, each
followed by a PPO update of the protagonist, while the adversary acts with its current policy
(sampling, fixed); then ``adversary_rollouts`` of the adversary's, the protagonist fixed. Each
rollout is ``num_steps`` steps of every env copy, counted in the run's env steps. ``Arena``
shows each learner the env as its own: its observations, its actions, its reward.

Validation and the final evaluation play the protagonist alone, on the plain env: the return it
keeps without an adversary. The training episodes' returns (``rollout/``) are the
protagonist's under the adversary. ``mentor eval --perturb`` measures it under other
perturbations (``envs/perturb.py``); ``benchmarks/rarl.py`` against an agent trained without one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from mentor.agent import trainable
from mentor.core.device import set_threads
from mentor.core.learner import Learner
from mentor.core.networks import ActorCritic
from mentor.core.optim import set_lr
from mentor.core.schedules import value_at
from mentor.core.vec_env import VecEnv
from mentor.errors import ConfigError
from mentor.evaluation.perturb import half_range
from mentor.experiment import Experiment
from mentor.methods import ppo
from mentor.runs.checkpoint import ResumePoint
from mentor.runs.folder import RunFolder
from mentor.runs.session import Result, TrainingSession, training_setup
from mentor.runs.state import TrainState
from mentor.transfer.loading import scaled_groups

PROTAGONIST, ADVERSARY = "protagonist", "adversary"


def build_networks(
    experiment: Experiment, obs_space: spaces.Space, action_space: spaces.Space
) -> ActorCritic:
    """The protagonist's networks: PPO's (its checkpoints load as any PPO agent's)."""
    return ppo.build_networks(experiment, obs_space, action_space)


def adversary_space(experiment: Experiment, venv: VecEnv) -> spaces.Box:
    """The adversary's actions: one in [-1, 1] per perturbed dimension."""
    kind = experiment.method.adversary
    target = venv.action_space if kind == "action" else venv.observation_space
    if not isinstance(target, spaces.Box):
        raise ConfigError(
            f"method.adversary={kind}: env '{experiment.env.id}' has {kind} space {target}; an "
            f"adversary adds a bounded perturbation to a Box {kind}"
            + (", so perturb the observation (method.adversary=observation)"
               if kind == "action" and isinstance(venv.observation_space, spaces.Box) else "")
        )  # fmt: skip
    return spaces.Box(-1.0, 1.0, (int(np.prod(target.shape)),), np.float32)


class Arena:
    """The env as the learner of the moment sees it (``learner``: protagonist or adversary),
    the other acting inside it with its current policy (module docstring). A ``VecEnv`` to
    PPO's collection; the episodes are the env's, the protagonist's returns."""

    def __init__(
        self,
        venv: VecEnv,
        protagonist: ActorCritic,
        adversary: ActorCritic,
        kind: str,
        budget: float,
        device: torch.device,
    ) -> None:
        self.venv = venv
        self.policies = {PROTAGONIST: protagonist, ADVERSARY: adversary}
        self.kind = kind
        self.device = device
        target = venv.action_space if kind == "action" else venv.observation_space
        self.half_range = half_range(target)
        self.set_budget(budget)
        self.learner = PROTAGONIST
        self.num_envs = self.num_copies = venv.num_envs
        self.env_id = venv.env_id
        self.observation_space, self.action_space = venv.observation_space, venv.action_space
        self.obs_shape, self.agents_spec = venv.obs_shape, None
        self.mask_source, self.action_mask, self.waiting = None, None, None
        self.info_keys, self.restarts = venv.info_keys, venv.restarts
        self.modes: set[str] = set()  # who acts by its policy's mode (else it samples)
        self.true_obs: np.ndarray | None = None  # the env's last observation
        self.seen: np.ndarray | None = None  # what the protagonist sees of it

    def set_budget(self, budget: float) -> None:
        """The largest perturbation per dimension: ``budget`` x the half-range."""
        self.scale = budget * self.half_range

    @property
    def needs_reset(self) -> np.ndarray:
        return self.venv.needs_reset

    @property
    def last_obs(self) -> np.ndarray:
        return self.observe()

    def observe(self) -> np.ndarray:
        """The current observation as the learner of the moment sees it."""
        assert self.true_obs is not None and self.seen is not None
        return self.seen if self.learner == PROTAGONIST else self.true_obs

    def _act(self, who: str, obs: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            obs_t = torch.from_numpy(obs).to(self.device)
            return self.policies[who].predict(obs_t, deterministic=who in self.modes).cpu().numpy()

    def _perturbation(self, actions: np.ndarray) -> np.ndarray:
        return np.clip(actions.reshape(len(actions), -1), -1.0, 1.0) * self.scale

    def _view(self, obs: np.ndarray) -> np.ndarray:
        """What the protagonist sees of ``obs``: perturbed by the adversary's current policy
        (adversary=observation), else the observation itself."""
        if self.kind != "observation":
            return obs
        delta = self._perturbation(self._act(ADVERSARY, obs)).reshape(obs.shape)
        return (obs + delta).astype(obs.dtype, copy=False)

    def reset(self, seed: int | None = None) -> np.ndarray:
        self.true_obs = self.venv.reset(seed=seed)
        self.seen = self._view(self.true_obs)
        return self.observe()

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        assert self.true_obs is not None and self.seen is not None
        if self.learner == PROTAGONIST:
            mine = actions
            theirs = self._act(ADVERSARY, self.true_obs) if self.kind == "action" else None
        else:
            theirs = actions
            seen = self.true_obs
            if self.kind == "observation":  # the learner's actions perturb this observation
                seen = (self.true_obs + self._perturbation(actions).reshape(seen.shape)).astype(
                    seen.dtype, copy=False
                )
            mine = self._act(PROTAGONIST, seen)
        if self.kind == "action":
            space = self.venv.action_space
            base = np.clip(
                mine.reshape(len(mine), -1), space.low.reshape(-1), space.high.reshape(-1)
            )
            mine = base + self._perturbation(theirs)
        obs, rewards, terminated, truncated = self.venv.step(mine)
        self.true_obs = obs
        self.seen = self._view(obs) if self.learner == PROTAGONIST else obs
        paid = rewards if self.learner == PROTAGONIST else -rewards
        return self.observe(), paid, terminated, truncated

    def pop_episodes(self) -> list[Any]:
        return self.venv.pop_episodes()

    def episode_metrics(self) -> dict[str, float]:
        return self.venv.episode_metrics()

    def snapshot(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors, values = self.venv.snapshot()
        assert self.true_obs is not None and self.seen is not None
        mine = {"arena_true_obs": self.true_obs, "arena_seen": self.seen}
        return {**tensors, **{k: torch.from_numpy(v.copy()) for k, v in mine.items()}}, values

    def restore(
        self, tensors: dict[str, torch.Tensor] | None, values: dict[str, Any], seed: int
    ) -> str:
        note = self.venv.restore(tensors, values, seed)
        if tensors is None or "arena_true_obs" not in tensors or note != "restored exactly":
            self.true_obs = self.venv.last_obs
            self.seen = self._view(self.true_obs)
            return note
        self.true_obs = tensors["arena_true_obs"].numpy().copy()
        self.seen = tensors["arena_seen"].numpy().copy()
        return note

    def close(self) -> None:
        self.venv.close()


@dataclass
class RARLProgress:
    step: int = 0
    updates: int = 0


def train(experiment: Experiment, run: RunFolder, resume: ResumePoint | None = None) -> Result:
    cfg, env = experiment.method, experiment.env
    with training_setup(experiment, resume) as (venv, agent):
        device = agent.device
        space = adversary_space(experiment, venv)
        adversary = ActorCritic(
            venv.observation_space, space, experiment.agent.network,
            normalize_obs=env.normalize_obs, clip_obs=env.clip_obs,
        ).to(device)  # fmt: skip
        budget = value_at(cfg.budget, 0.0)
        arena = Arena(venv, agent.policy, adversary, cfg.adversary, budget, device)
        learning_rate = value_at(cfg.learning_rate, 0.0)
        params = trainable(agent.policy, "policy", experiment.agent)
        optimizers = {
            PROTAGONIST: torch.optim.Adam(
                scaled_groups(params, agent.policy, experiment.agent.lr_scale, learning_rate),
                lr=learning_rate, eps=cfg.adam_eps,
            ),
            ADVERSARY: torch.optim.Adam(
                adversary.parameters(), lr=cfg.adversary_learning_rate or learning_rate,
                eps=cfg.adam_eps,
            ),
        }  # fmt: skip
        learners = [
            Learner.make(name, policy, optimizers[name], arena, cfg.num_steps, cfg.gamma,
                         env.normalize_reward, rollouts)
            for name, policy, rollouts in ((PROTAGONIST, agent.policy, cfg.protagonist_rollouts),
                                           (ADVERSARY, adversary, cfg.adversary_rollouts))
        ]  # fmt: skip
        generator = torch.Generator().manual_seed(experiment.seed)
        counters = RARLProgress()
        state = TrainState()
        state.module("model", agent.policy)
        state.module("adversary", adversary)
        for learner in learners:
            state.optimizer(f"optimizer_{learner.name}", learner.optimizer)
            state.stateful(f"reward_scaler_{learner.name}", learner.scaler)
        state.torch_rng("rng_minibatches", generator)
        state.fields("progress", counters, "step", "updates")
        session = TrainingSession(experiment, run, agent, arena, state, resume)
        session.begin()
        with session.running():
            while session.stop_reason is None:
                tic = time.perf_counter()
                progress = counters.step / experiment.stopping.total_steps
                rate = value_at(cfg.learning_rate, progress)
                clip_coef = value_at(cfg.clip_coef, progress)
                entropy_coef = value_at(experiment.exploration.entropy_coef, progress)
                budget = value_at(cfg.budget, progress)
                arena.set_budget(budget)
                metrics: dict[str, float] = {"train/budget": budget}
                for learner in learners:
                    arena.learner = learner.name
                    adversary.train(learner.name == ADVERSARY)
                    set_lr([learner.optimizer], rate if learner.name == PROTAGONIST
                           else cfg.adversary_learning_rate or rate)  # fmt: skip
                    for _ in range(learner.rollouts):
                        metrics.update(ppo.learn_turn(learner, arena, generator, cfg,
                                                      clip_coef, entropy_coef, device))  # fmt: skip
                        counters.step += venv.num_envs * cfg.num_steps
                arena.learner = PROTAGONIST
                counters.updates += 1
                metrics.update({
                    "train/learning_rate": rate,
                    "time/sps": sum(side.rollouts for side in learners) * venv.num_envs
                    * cfg.num_steps / (time.perf_counter() - tic),
                    "time/updates": counters.updates,
                    **arena.episode_metrics(),
                })  # fmt: skip
                session.log(counters.step, metrics)
                session.after_update(counters.step)
        return session.result


def attack(
    protagonist: torch.nn.Module,
    experiment: Experiment,
    rollouts: int,
    seed: int,
    episodes: int = 20,
) -> tuple[float, float]:
    """Train a fresh adversary (``experiment.method``'s kind, budget and PPO settings) against
    a fixed ``protagonist`` for ``rollouts`` rollouts; the protagonist's mean return over
    ``episodes`` episodes against the untrained adversary and against the trained one. The
    worst case within the budget, estimated: how robust benchmarks/rarl.py measures agents."""
    cfg, env = experiment.method, experiment.env
    set_threads(experiment.num_threads)  # as training does: the same numbers in any process
    venv = VecEnv.make(env.id, env.kwargs, env.num_envs, vectorization="sync")
    try:
        torch.manual_seed(seed)
        space = adversary_space(experiment, venv)
        adversary = ActorCritic(venv.observation_space, space, experiment.agent.network,
                                normalize_obs=env.normalize_obs, clip_obs=env.clip_obs)  # fmt: skip
        device = torch.device("cpu")
        budget = value_at(cfg.budget, 1.0)  # a schedule's last: the full push
        arena = Arena(venv, protagonist, adversary, cfg.adversary, budget, device)
        before = _protagonist_return(arena, episodes, seed)
        rate = cfg.adversary_learning_rate or value_at(cfg.learning_rate, 0)
        optimizer = torch.optim.Adam(adversary.parameters(), lr=rate, eps=cfg.adam_eps)
        learner = Learner.make(ADVERSARY, adversary, optimizer, arena, cfg.num_steps, cfg.gamma,
                               env.normalize_reward)  # fmt: skip
        generator = torch.Generator().manual_seed(seed)
        arena.learner = ADVERSARY
        arena.reset(seed=seed)
        entropy = value_at(experiment.exploration.entropy_coef, 0)
        for _ in range(rollouts):
            ppo.learn_turn(
                learner, arena, generator, cfg, value_at(cfg.clip_coef, 0), entropy, device
            )
        return before, _protagonist_return(arena, episodes, seed)
    finally:
        venv.close()


def _protagonist_return(arena: Arena, episodes: int, seed: int) -> float:
    """The protagonist's mean return over ``episodes`` episodes in the arena, both sides acting
    by their policies' modes: the adversary's pushes as it has learned them, without the noise
    of its exploration (an untrained one pushes by about 0)."""
    arena.learner = PROTAGONIST
    arena.modes = {ADVERSARY}
    arena.reset(seed=seed)
    arena.pop_episodes()
    returns: list[float] = []
    protagonist = arena.policies[PROTAGONIST]
    while len(returns) < episodes:
        with torch.inference_mode():
            obs = torch.from_numpy(arena.observe()).to(arena.device)
            actions = protagonist.predict(obs, deterministic=True).cpu().numpy()
        arena.step(actions)
        returns += [episode.ret for episode in arena.pop_episodes()]
    arena.modes = set()
    return float(np.mean(returns[:episodes]))
