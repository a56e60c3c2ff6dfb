"""Behaviour cloning: supervised learning of an expert's actions from its observations
(Pomerleau 1991; the loss is the policy's negative log-likelihood of the demonstrated action,
Bain & Sammut 1995). The page ``docs/methods/bc.md`` explains every choice.

    data      data.path, checked against the env's spaces; with data.folds, k-fold first
              (``cross_validation.py``)
    split     episodes, not transitions, go to validation (data.validation_fraction; 0: every
              episode trains, as few demonstrations need: the Pendulum-v1 preset)
    normalize with env.normalize_obs, the statistics are fitted once on the training data
    epochs    ``supervised.fit_epoch``: shuffled minibatches, AdamW, the validation loss; early
              stopping after method.patience epochs without a lower one (a stop rule)
    end       the weights of the lowest validation loss, validated in the env, are final/

The network is another method's (``method.policy_of``: ppo, sac, td3 or dqn), seen through the
policy interface, so the result is that method's agent and it starts from it (``agent.init``).
BC's steps are gradient steps.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from mentor.agent import Agent
from mentor.core.vec_env import VecEnv
from mentor.data.dataset import Dataset, split
from mentor.data.load import load_data
from mentor.experiment import BCConfig, Experiment
from mentor.methods.cross_validation import cross_validate
from mentor.methods.supervised import (
    FitProgress,
    Learner,
    build_policy_networks,
    check_config,
    copy_weights,
    episode_rows,
    fit_epoch,
    keep_best,
    make_optimizer,
    samples,
)
from mentor.runs.checkpoint import ResumePoint
from mentor.runs.folder import RunFolder
from mentor.runs.session import Result, Steps, TrainingSession, training_setup
from mentor.runs.state import TrainState
from mentor.runs.stopping import Progress

__all__ = ["build_networks", "train"]

# The networks of method.policy_of, so that method can start from BC's result.
build_networks = build_policy_networks


def train(experiment: Experiment, run: RunFolder, resume: ResumePoint | None = None) -> Result:
    """Behaviour cloning as the experiment says, in the given run folder (or on from ``resume``)."""
    with training_setup(experiment, resume) as (venv, agent):
        check_config(experiment.method, Learner(agent.policy, agent.action_space))
        dataset = load_data(experiment.data, venv.observation_space, venv.action_space)
        return _train(experiment, run, venv, agent, dataset, resume)


def _train(
    experiment: Experiment,
    run: RunFolder,
    venv: VecEnv,
    agent: Agent,
    dataset: Dataset,
    resume: ResumePoint | None,
) -> Result:
    cfg: BCConfig = experiment.method
    learner = Learner(agent.policy, agent.action_space)
    data = samples(dataset, learner, agent.device)
    if experiment.data.folds and not (run.path / "cross_validation.json").exists():
        cross_validate(experiment, run, agent, dataset, data)
    train_eps, valid_eps = split(
        dataset.num_episodes, experiment.data.validation_fraction,
        np.random.default_rng(experiment.seed),
    )  # fmt: skip
    train_data = data.rows(episode_rows(dataset, train_eps))
    # data.validation_fraction 0 holds no episode out: no validation loss, the last weights kept.
    valid_data = data.rows(episode_rows(dataset, valid_eps)) if len(valid_eps) else None
    run.update(dataset={
        "source": dataset.source, "episodes": dataset.num_episodes, "samples": len(dataset),
        "train_episodes": len(train_eps), "validation_episodes": len(valid_eps),
    })  # fmt: skip
    if resume is None:
        agent.policy.normalizer.update(train_data.obs)

    optimizer = make_optimizer(learner, cfg, experiment.agent)
    generator = torch.Generator().manual_seed(experiment.seed)  # minibatch order
    progress = FitProgress()
    if cfg.patience is not None:
        progress.best_weights = copy_weights(agent.policy.state_dict())
    state = TrainState()
    state.module("model", agent.policy)
    state.optimizer("optimizer", optimizer)
    state.torch_rng("rng_minibatches", generator)
    state.fields("progress", progress, "epochs", "steps", "samples", "best_loss", "best_epoch",
                 "stale_epochs")  # fmt: skip
    if cfg.patience is not None:

        def load_best(tensors: dict[str, torch.Tensor] | None, _: object) -> None:
            progress.best_weights = dict(tensors or {})

        state.add("best_model", lambda: (progress.best_weights, None), load_best)
    # The bar counts gradient steps toward what the run can take at most: max_epochs epochs,
    # or the budget (early stopping usually ends it sooner).
    per_epoch = math.ceil(len(train_data) / cfg.batch_size)
    expected = min(experiment.stopping.total_steps, cfg.max_epochs * per_epoch)
    steps = Steps("gradient steps", progress_total=expected)

    def fitted(_: Progress) -> str | None:  # early stopping, or max_epochs
        return progress.stop_reason(cfg, cfg.max_epochs)

    session = TrainingSession(experiment, run, agent, venv, state, resume, steps, [fitted])

    session.begin()
    with session.running():
        while session.stop_reason is None:
            metrics = fit_epoch(
                learner, optimizer, train_data, valid_data, cfg, generator, progress
            )
            session.log(progress.steps, metrics)
            session.after_update(progress.steps)
        if not session.stop_reason.startswith("interrupted"):
            # The kept model: lowest validation loss. It is validated in the env (a candidate
            # for checkpoints/best/) and becomes final/.
            keep_best(learner, progress)
            session.validate(progress.steps)
    return session.result
