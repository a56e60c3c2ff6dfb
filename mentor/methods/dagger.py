"""DAgger, Dataset Aggregation: behaviour cloning that asks the expert about the learner's states.

Ross, Gordon & Bagnell 2011, "A Reduction of Imitation Learning and Structured Prediction to
No-Regret Online Learning" (AISTATS), algorithm 3.1. Behaviour cloning trains on the states the
*expert* visits; the learner, once it errs, drifts into states no demonstration covers, and its
errors compound (quadratically in the horizon, their theorem 2.1). DAgger collects the states the
*learner* visits and labels them with the expert's action there:

    start     D0 = the demonstrations of data.path, or method.episodes_per_round expert episodes;
              pi_0 = behaviour cloning on D0 (bc.py's ``fit``)
    round i   (i = 1 .. method.rounds)
      act     roll out method.episodes_per_round episodes of the mixture policy: at each step,
              the expert's action with probability beta_i, else the learner's (deterministic)
      label   ask the expert for its action in every visited state (one batched call)
      grow    D_i = D_{i-1} + those (state, expert action) pairs
      fit     retrain on D_i from the current weights with bc.py's ``fit`` (early stopping on the
              validation episodes, at most method.max_epochs epochs per round)
    pick      every round's learner is validated in the env; checkpoints/best/ holds the best
              one (the paper's last step: "return the best pi_i on validation"), final/ the last

beta_i follows method.beta, a number or a schedule over the rounds (round 1 gets its start,
round ``rounds`` its end); the default goes from 1 (round 1: the expert acts, as in the paper's
beta_1 = 1) exponentially to 0.01. The expert is method.expert: a run or checkpoint folder (a
mentor agent, acting deterministically) or 'package.module:function' mapping a batch of raw
observations to a batch of actions (``mentor.agent.policy_from``). Every action it gives,
at the rollout and as a label, is checked against the action space: one outside it stops the
run with a DatasetError naming the action and the space.

Each new batch of episodes is split by episodes into training and validation
(data.validation_fraction; a batch of a single episode goes to training), so the validation loss
of a round is on held-out episodes of every round so far.

**Steps** are the env steps DAgger takes: the expert's initial episodes (when it records them)
and every round's rollouts. stopping.total_steps bounds them; validation happens after every
round whatever validation.every_steps says. The metrics row of a round has its number, beta, the
dataset's size, the share of expert actions in its rollouts, their return
(rollout/ep_return_mean), and the retrained learner's training and validation loss and accuracy
(or MSE); validation.csv has the learner's env return at the same step.

**Resume**: the checkpoint holds the aggregated dataset, the weights, AdamW's moments, the
generators and the round counter; a run resumes at the next round.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from mentor.agent import Agent, policy_from
from mentor.core.schedules import value_at
from mentor.core.vec_env import VecEnv
from mentor.data.dataset import Dataset, split
from mentor.data.load import load_data
from mentor.data.record import Policy as ExpertPolicy
from mentor.data.record import record
from mentor.errors import ConfigError, DatasetError
from mentor.experiment import DAggerConfig, Experiment
from mentor.methods.supervised import (
    Learner,
    build_policy_networks,
    check_config,
    episode_rows,
    evaluate_loss,
    fit,
    make_optimizer,
    samples,
)
from mentor.runs.checkpoint import ResumePoint
from mentor.runs.folder import RunFolder
from mentor.runs.session import Result, Steps, TrainingSession, training_setup
from mentor.runs.state import TrainState
from mentor.runs.stopping import Progress

__all__ = ["build_networks", "train"]

# The networks of method.policy_of, as behaviour cloning's.
build_networks = build_policy_networks


# --- the expert and the mixture ----------------------------------------------------------------


def checked_actions(actions: Any, space: spaces.Space, count: int, who: str) -> np.ndarray:
    """The expert's batch of actions in the space's dtype; a DatasetError naming the first action
    outside ``space`` (or a batch of the wrong shape)."""
    a = np.asarray(actions)
    shape = (count, *space.shape)
    if a.shape != shape:
        raise DatasetError(
            f"{who} returned actions of shape {a.shape} for {count} observations; expected "
            f"{shape}: one action of the action space {space} per observation"
        )
    finite = np.isfinite(a) if a.dtype.kind == "f" else np.ones(a.shape, bool)
    if isinstance(space, spaces.Box):
        inside = finite & (a >= space.low) & (a <= space.high)
    else:
        integral = finite & (np.round(np.where(finite, a, 0)) == a)
        if isinstance(space, spaces.Discrete):
            low, high = int(space.start), int(space.start) + int(space.n) - 1
        elif isinstance(space, spaces.MultiDiscrete):
            low, high = space.start, space.start + space.nvec - 1
        else:  # MultiBinary
            low, high = 0, 1
        inside = integral & (a >= low) & (a <= high)
    inside = inside.reshape(count, -1).all(1)
    if not inside.all():
        row = int(np.flatnonzero(~inside)[0])
        raise DatasetError(
            f"{who} gave the action {np.array2string(a[row], threshold=20)} (row {row} of a "
            f"batch of {count}), outside the action space {space}"
        )
    return a.astype(np.int64 if isinstance(space, spaces.Discrete) else space.dtype, copy=False)


def expert_name(expert: ExpertPolicy) -> str:
    return f"the expert '{getattr(expert, 'spec', 'expert')}'"


@dataclass
class Mixture:
    """pi_i = beta_i * expert + (1 - beta_i) * learner, drawn per step and per env copy; counts
    the actions each one took."""

    expert: ExpertPolicy
    learner: Agent
    beta: float
    rng: np.random.Generator
    space: spaces.Space
    expert_steps: int = 0
    steps: int = 0

    def __call__(self, obs: Any) -> np.ndarray:
        count = len(next(iter(obs.values()))) if isinstance(obs, dict) else len(obs)
        use_expert = self.rng.random(count) < self.beta
        self.steps += count
        self.expert_steps += int(use_expert.sum())
        if use_expert.all():
            return checked_actions(self.expert(obs), self.space, count, expert_name(self.expert))
        learner = np.asarray(self.learner.act(obs))
        if not use_expert.any():
            return learner
        expert = checked_actions(self.expert(obs), self.space, count, expert_name(self.expert))
        pick = use_expert.reshape(-1, *([1] * (learner.ndim - 1)))
        return np.where(pick, expert, learner).astype(expert.dtype, copy=False)


def relabel(dataset: Dataset, expert: ExpertPolicy) -> Dataset:
    """The dataset with the expert's action in every state: one batched call."""
    labels = checked_actions(expert(dataset.observations), dataset.action_space, len(dataset),
                             expert_name(expert))  # fmt: skip
    return replace(dataset, actions=labels)


def beta_at(cfg: DAggerConfig, round_: int) -> float:
    """beta of round ``round_`` (1-based): the schedule's start at round 1, its end at the last."""
    return value_at(cfg.beta, (round_ - 1) / max(cfg.rounds - 1, 1))


def check_beta(cfg: DAggerConfig) -> None:
    values = [beta_at(cfg, 1), beta_at(cfg, cfg.rounds)]
    if not all(0.0 <= v <= 1.0 for v in values):
        raise ConfigError(f"method.beta is a probability: it must stay in [0, 1], got {cfg.beta}")


# --- the aggregated dataset --------------------------------------------------------------------


class Aggregate:
    """D_i: every episode so far, with a flag per episode saying whether it is held out for
    validation. Saved in checkpoints (``state_dict`` / ``load_state_dict``)."""

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space) -> None:
        self.observation_space = observation_space
        self.action_space = action_space
        self.dataset: Dataset | None = None
        self.validation = np.zeros(0, dtype=bool)

    def __len__(self) -> int:
        return 0 if self.dataset is None else len(self.dataset)

    def add(self, new: Dataset, validation_fraction: float, rng: np.random.Generator) -> None:
        held_out = np.zeros(new.num_episodes, dtype=bool)
        if new.num_episodes >= 2:
            held_out[split(new.num_episodes, validation_fraction, rng)[1]] = True
        self.validation = np.concatenate([self.validation, held_out])
        self.dataset = new if self.dataset is None else concatenate(self.dataset, new)

    def rows(self, validation: bool) -> np.ndarray:
        return episode_rows(self.dataset, np.flatnonzero(self.validation == validation))

    def state_dict(self) -> dict[str, torch.Tensor]:
        d = self.dataset
        tensors = {
            "actions": d.actions, "rewards": d.rewards, "terminations": d.terminations,
            "truncations": d.truncations, "episode_starts": d.episode_starts,
            "validation": self.validation,
            **_flat("observations", d.observations),
            **(_flat("final_observations", d.final_observations)
               if d.final_observations is not None else {}),
        }  # fmt: skip
        return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in tensors.items()}

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        arrays = {k: v.numpy().copy() for k, v in tensors.items()}
        finals = _unflat("final_observations", arrays)
        self.validation = arrays["validation"]
        self.dataset = Dataset(
            observation_space=self.observation_space,
            action_space=self.action_space,
            observations=_unflat("observations", arrays),
            actions=arrays["actions"],
            rewards=arrays["rewards"],
            terminations=arrays["terminations"],
            truncations=arrays["truncations"],
            episode_starts=arrays["episode_starts"],
            final_observations=finals,
            source="DAgger's aggregated dataset",
        )


def concatenate(a: Dataset, b: Dataset) -> Dataset:
    """The episodes of ``a`` then those of ``b`` (same spaces)."""
    finals = None
    if a.final_observations is not None and b.final_observations is not None:
        finals = _join(a.final_observations, b.final_observations)
    return replace(
        a,
        observations=_join(a.observations, b.observations),
        actions=np.concatenate([a.actions, b.actions.astype(a.actions.dtype, copy=False)]),
        rewards=np.concatenate([a.rewards, b.rewards]),
        terminations=np.concatenate([a.terminations, b.terminations]),
        truncations=np.concatenate([a.truncations, b.truncations]),
        episode_starts=np.concatenate([a.episode_starts, b.episode_starts + len(a)]),
        final_observations=finals,
        source="DAgger's aggregated dataset",
    )


def _join(a: Any, b: Any) -> Any:
    if isinstance(a, dict):
        return {key: _join(a[key], b[key]) for key in a}
    return np.concatenate([a, np.asarray(b, dtype=a.dtype)])


def _flat(prefix: str, batch: Any) -> dict[str, np.ndarray]:
    if isinstance(batch, dict):
        return {f"{prefix}.{key}": value for key, value in batch.items()}
    return {prefix: batch}


def _unflat(prefix: str, arrays: dict[str, np.ndarray]) -> Any:
    if prefix in arrays:
        return arrays[prefix]
    keyed = {
        k.removeprefix(f"{prefix}."): v for k, v in arrays.items() if k.startswith(prefix + ".")
    }
    return keyed or None


# --- the run -----------------------------------------------------------------------------------


@dataclass
class DAggerProgress:
    """The loop's counters (saved in checkpoints): rounds done (round 0 is the first fit) and
    env steps taken."""

    rounds_done: int = 0
    step: int = 0


def train(experiment: Experiment, run: RunFolder, resume: ResumePoint | None = None) -> Result:
    """DAgger as the experiment says, in the given run folder (or on from ``resume``)."""
    cfg: DAggerConfig = experiment.method
    check_beta(cfg)
    if experiment.data.folds:
        raise ConfigError(
            "data.folds: k-fold cross-validation is done by method bc; dagger validates every "
            "round's learner in the env instead"
        )
    expert = policy_from(cfg.expert)
    with training_setup(experiment, resume) as (venv, agent):
        check_config(cfg, Learner(agent.policy, agent.action_space))
        return _train(experiment, run, venv, agent, expert, resume)


def _train(
    experiment: Experiment,
    run: RunFolder,
    venv: VecEnv,
    agent: Agent,
    expert: ExpertPolicy,
    resume: ResumePoint | None,
) -> Result:
    cfg: DAggerConfig = experiment.method
    env = experiment.env
    learner = Learner(agent.policy, agent.action_space)
    optimizer = make_optimizer(learner, cfg, experiment.agent)
    generator = torch.Generator().manual_seed(experiment.seed)  # minibatch order
    rng = np.random.default_rng(experiment.seed)  # who acts, step by step
    aggregate = Aggregate(agent.observation_space, agent.action_space)
    counters = DAggerProgress()
    state = TrainState()
    state.module("model", agent.policy)
    state.optimizer("optimizer", optimizer)
    state.torch_rng("rng_minibatches", generator)
    state.numpy_rng("rng_mixture", rng)
    state.stateful("dataset", aggregate)
    state.fields("progress", counters, "rounds_done", "step")
    # Steps are env steps; the bar counts the fits: round 0 (the first) and the rounds after it.
    steps = Steps("env steps", progress_total=cfg.rounds + 1, progress_unit="rounds")

    def all_rounds(progress: Progress) -> str | None:
        if counters.rounds_done > cfg.rounds:
            return f"rounds: completed {cfg.rounds} DAgger rounds"
        return None

    session = TrainingSession(experiment, run, agent, venv, state, resume, steps, [all_rounds])

    def rollout(round_: int, policy: ExpertPolicy) -> Dataset:
        """episodes_per_round episodes, reset with seeds of their own for each round."""
        episodes = cfg.episodes_per_round
        return record(policy, env.id, env.kwargs, episodes,
                      seed=experiment.seed + round_ * episodes,
                      num_envs=min(env.num_envs, episodes),
                      max_episode_steps=env.max_episode_steps)  # fmt: skip

    session.begin()
    with session.running():
        while session.stop_reason is None:
            tic, steps_before = time.perf_counter(), counters.step
            round_ = counters.rounds_done
            split_rng = np.random.default_rng([experiment.seed, round_])
            if round_ == 0:  # D0: demonstrations, or the expert's own episodes
                if experiment.data.path is not None:
                    new = load_data(experiment.data, venv.observation_space, venv.action_space)
                else:
                    new = relabel(rollout(0, expert), expert)
                    counters.step += len(new)
                beta, expert_share = 1.0, 1.0
            else:
                beta = beta_at(cfg, round_)
                mixture = Mixture(expert, agent, beta, rng, agent.action_space)
                new = relabel(rollout(round_, mixture), expert)
                counters.step += len(new)
                expert_share = mixture.expert_steps / max(mixture.steps, 1)
            aggregate.add(new, experiment.data.validation_fraction, split_rng)

            data = samples(aggregate.dataset, learner, agent.device)
            train_rows, valid_rows = aggregate.rows(False), aggregate.rows(True)
            train_data = data.rows(train_rows)
            valid_data = data.rows(valid_rows) if len(valid_rows) else None
            agent.policy.normalizer.update(data.obs[torch.as_tensor(
                train_rows[train_rows >= len(aggregate) - len(new)])])  # fmt: skip
            progress, last, _ = fit(learner, optimizer, train_data, valid_data, cfg, generator)
            counters.rounds_done += 1

            name = learner.score_name
            metrics = {
                "dagger/round": round_,
                "dagger/beta": beta,
                "dagger/expert_action_fraction": expert_share,
                "dagger/dataset_size": len(aggregate),
                "dagger/new_samples": len(new),
                "rollout/ep_return_mean": float(new.episode_returns().mean()),
                "rollout/ep_length_mean": float(new.episode_lengths().mean()),
                "train/epochs": progress.epochs,
                "train/loss": last["train/loss"],
                f"train/{name}": last[f"train/{name}"],
            }
            if valid_data is not None:  # of the weights kept: the lowest validation loss
                val_loss, val_score = evaluate_loss(learner, valid_data, cfg)
                metrics.update({"train/val_loss": val_loss, f"train/val_{name}": val_score})
            metrics["time/sps"] = (counters.step - steps_before) / (time.perf_counter() - tic)
            session.log(counters.step, metrics, progress=counters.rounds_done)
            # Every round's learner is validated (Ross et al. pick the best of them).
            session.request_validation()
            session.after_update(counters.step)
    return session.result
