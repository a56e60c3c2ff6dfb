"""k-fold cross-validation of behaviour cloning over episodes (``data.folds: k``).

One model per fold, that fold's episodes held out, each from the same initial weights as the
final model: per fold its validation loss, accuracy (or MSE) and env return on the validation
env's seeds, then their mean and spread, written to ``cross_validation.json`` and printed.
Episodes, not transitions, are held out: the transitions of one episode are strongly
correlated, and a split by transition would leak them into the held-out loss.
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch

from mentor.agent import Agent
from mentor.data.dataset import Dataset, kfold
from mentor.evaluation.evaluate import evaluate_agent
from mentor.evaluation.statistics import EvalSummary
from mentor.experiment import BCConfig, Experiment
from mentor.methods.supervised import (
    Learner,
    Samples,
    episode_rows,
    evaluate_loss,
    fit,
    make_optimizer,
)
from mentor.runs.folder import RunFolder, write_json


def cross_validate(
    experiment: Experiment, run: RunFolder, agent: Agent, dataset: Dataset, data: Samples
) -> dict:
    """data.folds models, fold f trained with fold f's episodes held out; writes and prints
    cross_validation.json and returns its content."""
    cfg: BCConfig = experiment.method
    folds = experiment.data.folds
    tic = time.perf_counter()
    parts = kfold(dataset.num_episodes, folds, np.random.default_rng(experiment.seed))
    rows = []
    for fold, held_out in enumerate(parts):
        nets = copy.deepcopy(agent.policy)
        learner = Learner(nets, agent.action_space)
        kept = np.setdiff1d(np.arange(dataset.num_episodes), held_out)
        train, valid = (data.rows(episode_rows(dataset, e)) for e in (kept, held_out))
        nets.normalizer.update(train.obs)
        generator = torch.Generator().manual_seed(experiment.seed + 1 + fold)
        optimizer = make_optimizer(learner, cfg, experiment.agent)
        max_steps = experiment.stopping.total_steps
        progress, _, reason = fit(learner, optimizer, train, valid, cfg, generator, None, max_steps)
        val_loss, val_score = evaluate_loss(learner, valid, cfg)
        returns = env_return(
            experiment, Agent(nets, agent.observation_space, agent.action_space, experiment)
        )
        rows.append(
            {
                "fold": fold,
                "held_out_episodes": held_out.tolist(),
                "train_samples": len(train),
                "validation_samples": len(valid),
                "epochs": progress.epochs,
                "stop": reason,
                "val_loss": val_loss,
                f"val_{learner.score_name}": val_score,
                "env_return_mean": returns.return_mean,
                "env_return_std": returns.return_std,
            }
        )
    keys = [k for k in rows[0] if k.startswith(("val_", "env_return_mean"))]
    summary = {
        "folds": folds,
        "episodes": dataset.num_episodes,
        "samples": len(dataset),
        "env_episodes": experiment.validation.episodes,
        "per_fold": rows,
        "mean": {k: float(np.mean([r[k] for r in rows])) for k in keys},
        "std": {k: float(np.std([r[k] for r in rows])) for k in keys},
        "seconds": round(time.perf_counter() - tic, 3),
    }
    write_json(run.path / "cross_validation.json", summary)
    print(table(summary))
    return summary


def env_return(experiment: Experiment, agent: Agent) -> EvalSummary:
    """The agent's return on the validation env's seeds (validation.episodes episodes)."""
    cfg, env = experiment.validation, experiment.env
    return evaluate_agent(
        agent,
        cfg.env.id or env.id,
        cfg.episodes,
        env_kwargs=cfg.env.kwargs if cfg.env.kwargs is not None else env.kwargs,
        num_envs=cfg.num_envs,
        deterministic=cfg.deterministic,
        seed=experiment.seed + cfg.seed_offset,
    )


def table(summary: dict) -> str:
    """The per-fold scores, their mean and std, as a text table."""
    rows = summary["per_fold"]
    keys = [k for k in rows[0] if k.startswith(("val_", "env_return"))]
    lines = [f"{summary['folds']}-fold cross-validation over {summary['episodes']} episodes:"]
    lines.append("  fold  " + "  ".join(f"{k:>16}" for k in keys))
    for r in rows:
        lines.append(f"  {r['fold']:>4}  " + "  ".join(f"{r[k]:>16.4g}" for k in keys))
    for what in ("mean", "std"):
        cells = [summary[what].get(k) for k in keys]
        lines.append(
            f"  {what:>4}  "
            + "  ".join(f"{c:>16.4g}" if c is not None else " " * 16 for c in cells)
        )
    return "\n".join(lines)
