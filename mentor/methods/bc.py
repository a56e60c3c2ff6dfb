"""Behaviour cloning: supervised learning of an expert's actions from its observations.

Pomerleau 1991 ("Efficient training of artificial neural networks for autonomous navigation",
Neural Computation 3(1)) is the first; the loss is the policy's negative log-likelihood of the
demonstrated action (Bain & Sammut 1995; Ross et al. 2011, section 2, analyse its compounding
errors, which DAgger, ``dagger.py``, corrects).

The policy BC trains is another method's, so the result is a normal mentor agent — it acts,
evaluates and reports like any run — and that method can start from it (``agent.init:
runs/bc-CartPole-v1/final``):

    method.policy_of: ppo    PPO's actor-critic; BC trains the actor (the critic stays as it was)
    method.policy_of: sac    SAC's networks; BC trains the squashed-Gaussian (or categorical) actor

The agent.network and env.normalize_obs settings must then be the same in both runs: agent.init
checks that the weights fit, not that they mean the same (a tanh network's weights do not act
alike in a ReLU one; SAC's presets use relu and ortho_init false, PPO's CartPole preset the
defaults).

The run, top to bottom:

    data      load data.path, check its spaces against the env's (a mismatch names both shapes)
    k-fold    with data.folds = k: one model per fold, that fold's episodes held out; per-fold
              validation loss, accuracy (or MSE) and env return, their mean and std, go to
              cross_validation.json and the console (step skipped when resuming)
    split     episodes, not transitions, go to validation (data.validation_fraction): the
              transitions of one episode are strongly correlated, and a split by transition
              would leak them into the validation loss. validation_fraction 0 holds none out
              (method.patience must then be null: no validation loss, the last weights kept),
              which few demonstrations need (the Pendulum-v1 preset, presets/bc.yaml)
    normalize with env.normalize_obs, the network's observation statistics are fitted once on
              the training observations, so the saved agent normalizes as it was trained
    epochs    shuffled minibatches of method.batch_size, AdamW; after each epoch the validation
              loss; early stopping after method.patience epochs without a lower one, at most
              method.max_epochs (and stopping.total_steps, below); the weights with the lowest
              validation loss are kept
    session   each epoch is logged (metrics.csv: train/loss, train/val_loss and accuracy or
              MSE), then the session validates in the env, checkpoints and applies the
              stopping rules as for every method
    end       the best-on-validation-loss weights are put back, validated in the env and saved
              as final/; checkpoints/best/ is, as in every method, the best on env validation
              return among the models validated; the final evaluation uses it

The losses, per transition (s, a) of the demonstrations:

    log_likelihood   -log pi(a|s): cross-entropy for Discrete, the sum over components for
                     MultiDiscrete and MultiBinary, a Gaussian's negative log-density for Box
                     (with policy_of sac, the squashed Gaussian's, with its tanh correction;
                     its std depends on the state, so the gradient is beta-NLL's, see Policy)
    mse              |mu(s) - a|^2 averaged over action dimensions (Box only): the mean action
    entropy_coef     minus this times the policy's entropy is added (keeps a Gaussian's std open)

**Steps.** BC steps no env to learn; its step counter is the number of *gradient steps* (one
per minibatch of method.batch_size transitions). validation.every_steps, checkpoints.every_steps
and stopping.total_steps count those and are checked after every epoch. The default budget,
100,000 steps, is 3,200 epochs of 4,000 transitions in batches of 128 (early stopping or
max_epochs end such a run long before) or 13 epochs of a million. Validation in the env is thus
rare on small datasets (every 10,000 steps: 320 epochs of 4,000 transitions) and always happens
once at the end; set validation.every_steps lower to follow the env return during training.
metrics.csv also has the samples trained on (train/samples) and the epoch.

**Resume.** The training state is the weights, AdamW's moments, the shuffling generator, the
epoch counters and the best weights so far; a run stopped by a signal or a kill resumes from its
last checkpoint and ends bitwise equal to the run never stopped. A run that finished keeps the
best weights in final/, so resuming it with a larger budget trains on from those.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from gymnasium import spaces
from torch import nn
from torch.nn import functional as F

from mentor.agent import Agent
from mentor.core.distributions import LOG_SQRT_2PI
from mentor.core.vec_env import VecEnv
from mentor.data.dataset import Dataset, kfold, split
from mentor.errors import ConfigError, NonFiniteError
from mentor.evaluation.statistics import EvalSummary
from mentor.experiment import BCConfig, Experiment
from mentor.methods import ppo, sac
from mentor.methods.sac import LOG_2, LOG_STD_MAX, LOG_STD_MIN, SACNetworks
from mentor.runs.checkpoint import ResumePoint
from mentor.runs.folder import RunFolder, write_json
from mentor.runs.session import Result, Steps, TrainingSession, training_setup
from mentor.runs.state import TrainState

# The largest |a| a squashed Gaussian is asked to explain: atanh(1 - 1e-6) ≈ 7.25. Demonstrated
# actions on the bounds (common: experts saturate) would otherwise have log-likelihood -inf.
SQUASH_EDGE = 1.0 - 1e-6
# Validation rows evaluated per forward pass: bounds the memory of a large validation set.
EVAL_CHUNK = 65_536


# --- the networks ------------------------------------------------------------------------------


def build_networks(
    experiment: Experiment, obs_space: spaces.Space, action_space: spaces.Space
) -> nn.Module:
    """The networks of ``method.policy_of``, so that method can start from BC's result."""
    cfg: BCConfig = experiment.method
    if cfg.policy_of == "sac":
        if not isinstance(action_space, spaces.Box | spaces.Discrete):
            raise ConfigError(
                f"method.policy_of sac supports Box and Discrete actions, not {action_space}; "
                "use policy_of ppo"
            )
        return sac.build_networks(experiment, obs_space, action_space)
    return ppo.build_networks(experiment, obs_space, action_space)


class Policy:
    """The policy part of a method's networks as BC sees it: for a batch of observations and
    demonstrated actions (in network form, see ``network_actions``), the log-likelihood of each
    action, the entropy, and the deterministic action the agent would take."""

    def __init__(self, nets: nn.Module, action_space: spaces.Space) -> None:
        self.nets = nets
        self.action_space = action_space
        self.sac = isinstance(nets, SACNetworks)
        self.continuous = isinstance(action_space, spaces.Box)
        self.normalizer = nets.normalizer
        # Errors of continuous predictions are reported in env units: SAC's are in [-1, 1].
        self.error_scale = (
            (nets.action_high - nets.action_low) / 2 if self.sac and self.continuous else None
        )

    def parameters(self) -> list[nn.Parameter]:
        """What BC trains: the actor's parameters (PPO: all but the critic's own layers, so
        shared layers too; SAC: the actor's). The critics keep their weights."""
        if self.sac:
            return list(self.nets.actor.parameters())
        return [
            param
            for name, param in self.nets.named_parameters()
            if not name.startswith(("critic_body.", "critic_head."))
        ]

    def __call__(self, obs: torch.Tensor, actions: torch.Tensor) -> Judgement:
        """What the policy says of each demonstrated action, one row per observation."""
        if not self.sac:
            dist = self.nets.dist
            params = self.nets.policy_params(obs)
            log_prob = dist.log_prob(params, actions)
            return Judgement(log_prob, log_prob, dist.entropy(params), dist.sample(params, True))
        out = self.nets.actor(self.normalizer(obs))
        if not self.continuous:
            log_p = F.log_softmax(out, -1)
            log_prob = log_p.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
            return Judgement(log_prob, log_prob, -(log_p.exp() * log_p).sum(-1), out.argmax(-1))
        mean, log_std = out.chunk(2, -1)
        log_std = log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)
        # a = tanh(u): log pi(a) = log N(u; mean, std) - sum log(1 - tanh(u)^2), the Jacobian
        # term in its exact, finite form (see sac.squashed_gaussian).
        u = torch.atanh(actions.clamp(-SQUASH_EDGE, SQUASH_EDGE))
        noise = (u - mean) * torch.exp(-log_std)
        per_dim = -0.5 * noise.square() - log_std - LOG_SQRT_2PI
        log_det_jacobian = (2.0 * (LOG_2 - u - F.softplus(-2.0 * u))).sum(-1)
        # A state-dependent std lets plain likelihood shrink the std where the data is easy to
        # fit and neglect the mean elsewhere (measured: Pendulum BC scores at random level).
        # beta-NLL with beta = 1 (Seitzer et al. 2022, ICLR, "On the pitfalls of
        # heteroscedastic uncertainty estimation") weighs each term by its variance, held
        # constant: the mean then learns as under squared error (in the pre-tanh space), the
        # std by likelihood. The Jacobian term depends on the data only: no gradient.
        fitted = (per_dim * (2.0 * log_std).exp().detach()).sum(-1)
        # The entropy of the Gaussian before the tanh: the squashed one has no closed form.
        entropy = (0.5 + LOG_SQRT_2PI + log_std).sum(-1)
        return Judgement(per_dim.sum(-1) - log_det_jacobian, fitted, entropy, torch.tanh(mean))


@dataclass
class Judgement:
    """The policy's view of a batch of demonstrated actions, one row each: log pi(a|s); the
    log-likelihood term to maximise (the same, but for SAC's Box actions: beta-NLL, see
    ``Policy``); the entropy; the deterministic action."""

    log_prob: torch.Tensor
    fitted_log_prob: torch.Tensor
    entropy: torch.Tensor
    prediction: torch.Tensor


def network_actions(space: spaces.Space, actions: np.ndarray, sac: bool) -> np.ndarray:
    """Env actions -> what the loss compares with: indices from 0 (int64) for Discrete and
    MultiDiscrete, 0/1 floats for MultiBinary, flat float32 vectors for Box (SAC's rescaled
    from the bounds to [-1, 1], clipped)."""
    n = len(actions)
    if isinstance(space, spaces.Discrete):
        return np.asarray(actions, dtype=np.int64).reshape(n) - int(space.start)
    if isinstance(space, spaces.MultiDiscrete):
        start = np.asarray(space.start, dtype=np.int64).reshape(-1)
        return np.asarray(actions, dtype=np.int64).reshape(n, -1) - start
    flat = np.asarray(actions, dtype=np.float32).reshape(n, -1)
    if isinstance(space, spaces.Box) and sac:
        low, high = (np.asarray(b, np.float32).reshape(-1) for b in (space.low, space.high))
        flat = np.clip(2.0 * (flat - low) / (high - low) - 1.0, -1.0, 1.0)
    return np.ascontiguousarray(flat)


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


def samples(dataset: Dataset, policy: Policy, device: torch.device) -> Samples:
    """Every transition of ``dataset`` as tensors on ``device`` (one encoding, no per-row work)."""
    obs = np.ascontiguousarray(dataset.encoded_observations())
    actions = network_actions(dataset.action_space, dataset.actions, policy.sac)
    return Samples(torch.from_numpy(obs).to(device), torch.from_numpy(actions).to(device))


def episode_rows(dataset: Dataset, episodes: np.ndarray) -> np.ndarray:
    """The row indices of the given episodes."""
    return np.flatnonzero(np.isin(dataset.episode_index(), episodes))


def load_dataset(experiment: Experiment, venv: VecEnv) -> Dataset:
    """data.path as a Dataset whose spaces are the env's (else a DatasetError naming both)."""
    from mentor.data.load import load_data

    dataset = load_data(experiment.data, venv.observation_space, venv.action_space)
    dataset.check_spaces(venv.observation_space, venv.action_space)
    return dataset


# --- the loss ----------------------------------------------------------------------------------


def bc_loss(
    policy: Policy, batch: Samples, cfg: BCConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(objective, loss, score) of a batch: the objective is what the gradient follows (the
    loss, less the entropy bonus); the loss is the mean negative log-likelihood or squared
    error, reported and early-stopped on; the score, per row, whether the deterministic action
    equals the demonstrated one (discrete; the share of components for Multi*) or its squared
    error in env units (continuous, averaged over dimensions)."""
    judged = policy(batch.obs, batch.actions)
    if cfg.loss == "mse":
        loss = (judged.prediction - batch.actions).square().mean()
        objective = loss
    else:
        loss = -judged.log_prob.mean()
        objective = -judged.fitted_log_prob.mean()
    if cfg.entropy_coef:
        objective = objective - cfg.entropy_coef * judged.entropy.mean()
    with torch.no_grad():
        if policy.continuous:
            error = judged.prediction - batch.actions
            if policy.error_scale is not None:
                error = error * policy.error_scale
            score = error.square().mean(-1)
        else:
            score = (judged.prediction == batch.actions).float()
            score = score.mean(-1) if score.dim() > 1 else score
    return objective, loss.detach(), score


def score_name(policy: Policy) -> str:
    """What the per-row score is: the accuracy of discrete actions, the MSE of continuous ones."""
    return "mse" if policy.continuous else "accuracy"


@torch.no_grad()
def evaluate(policy: Policy, data: Samples, cfg: BCConfig) -> tuple[float, float]:
    """(mean loss, mean score) over ``data``, in chunks."""
    loss_sum, score_sum = 0.0, 0.0
    for start in range(0, len(data), EVAL_CHUNK):
        chunk = data.rows(torch.arange(start, min(start + EVAL_CHUNK, len(data))))
        _, loss, score = bc_loss(policy, chunk, cfg)
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


def make_optimizer(policy: Policy, cfg: BCConfig, experiment: Experiment) -> torch.optim.AdamW:
    """AdamW over the actor's trainable parameters (fused: one kernel for all of them)."""
    params = [param for param in policy.parameters() if param.requires_grad]
    if not params:
        raise ConfigError(
            f"agent.freeze {experiment.agent.freeze} freezes every parameter of the policy: "
            "nothing is left to train; freeze fewer layers"
        )
    return torch.optim.AdamW(
        params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay, fused=True
    )


def train_epoch(
    policy: Policy,
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
    for index in minibatches:
        batch = train.rows(index)
        objective, loss, score = bc_loss(policy, batch, cfg)
        if not torch.isfinite(objective):
            raise NonFiniteError(
                f"BC loss is not finite ({objective.item()}); the step was skipped"
            )
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        optimizer.step()
        loss_sum += loss * len(index)
        score_sum += score.sum()
    return loss_sum.item() / count, score_sum.item() / count, len(minibatches)


def fit_epoch(
    policy: Policy,
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
    loss, score, steps = train_epoch(policy, optimizer, train, cfg, generator)
    progress.epochs += 1
    progress.steps += steps
    progress.samples += len(train)
    name = score_name(policy)
    metrics = {
        "train/epoch": progress.epochs,
        "train/samples": progress.samples,
        "train/loss": loss,
        f"train/{name}": score,
    }
    if valid is not None:
        val_loss, val_score = evaluate(policy, valid, cfg)
        metrics.update({"train/val_loss": val_loss, f"train/val_{name}": val_score})
        if val_loss < progress.best_loss:
            progress.best_loss, progress.best_epoch, progress.stale_epochs = (
                val_loss, progress.epochs, 0
            )  # fmt: skip
            if cfg.patience is not None:
                progress.best_weights = _copy(policy.nets.state_dict())
        else:
            progress.stale_epochs += 1
        metrics["train/best_val_loss"] = progress.best_loss
    seconds = time.perf_counter() - tic
    metrics["time/sps"] = steps / seconds  # BC's steps are gradient steps
    metrics["time/samples_per_second"] = len(train) / seconds
    return metrics


def keep_best(policy: Policy, progress: FitProgress) -> None:
    """Put the weights with the lowest validation loss back (when early stopping kept any)."""
    if progress.best_weights is not None:
        policy.nets.load_state_dict(progress.best_weights)


def fit(
    policy: Policy,
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
        metrics = fit_epoch(policy, optimizer, train, valid, cfg, generator, progress)
        reason = progress.stop_reason(cfg, max_epochs, max_steps)
    keep_best(policy, progress)
    return progress, metrics, reason


def _copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone() for key, value in state.items()}


# --- k-fold cross-validation -------------------------------------------------------------------


def cross_validate(
    experiment: Experiment, run: RunFolder, agent: Agent, dataset: Dataset, data: Samples
) -> dict:
    """data.folds models, fold f trained with fold f's episodes held out, each from the same
    initial weights as the final model; writes and prints cross_validation.json."""
    cfg: BCConfig = experiment.method
    folds = experiment.data.folds
    tic = time.perf_counter()
    parts = kfold(dataset.num_episodes, folds, np.random.default_rng(experiment.seed))
    rows = []
    for fold, held_out in enumerate(parts):
        nets = copy.deepcopy(agent.policy)
        policy = Policy(nets, agent.action_space)
        kept = np.setdiff1d(np.arange(dataset.num_episodes), held_out)
        train, valid = (data.rows(episode_rows(dataset, e)) for e in (kept, held_out))
        policy.normalizer.update(train.obs)
        generator = torch.Generator().manual_seed(experiment.seed + 1 + fold)
        optimizer = make_optimizer(policy, cfg, experiment)
        progress, _, reason = fit(policy, optimizer, train, valid, cfg, generator,
                                  max_steps=experiment.stopping.total_steps)  # fmt: skip
        val_loss, val_score = evaluate(policy, valid, cfg)
        returns = _env_return(experiment, Agent(nets, agent.observation_space,
                                                agent.action_space, experiment))  # fmt: skip
        rows.append({
            "fold": fold,
            "held_out_episodes": held_out.tolist(),
            "train_samples": len(train),
            "validation_samples": len(valid),
            "epochs": progress.epochs,
            "stop": reason,
            "val_loss": val_loss,
            f"val_{score_name(policy)}": val_score,
            "env_return_mean": returns.return_mean,
            "env_return_std": returns.return_std,
        })  # fmt: skip
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
    print(_cv_table(summary))
    return summary


def _env_return(experiment: Experiment, agent: Agent) -> EvalSummary:
    """The agent's return on the validation env's seeds (validation.episodes episodes)."""
    from mentor import api

    cfg, env = experiment.validation, experiment.env
    env_id = cfg.env.id or env.id
    kwargs = cfg.env.kwargs if cfg.env.kwargs is not None else env.kwargs
    return api.evaluate(agent, env_id, cfg.episodes, env_kwargs=kwargs, num_envs=cfg.num_envs,
                        deterministic=cfg.deterministic,
                        seed=experiment.seed + cfg.seed_offset)  # fmt: skip


def _cv_table(summary: dict) -> str:
    rows = summary["per_fold"]
    keys = [k for k in rows[0] if k.startswith(("val_", "env_return"))]
    lines = [f"{summary['folds']}-fold cross-validation over {summary['episodes']} episodes:"]
    lines.append("  fold  " + "  ".join(f"{k:>16}" for k in keys))
    for r in rows:
        lines.append(f"  {r['fold']:>4}  " + "  ".join(f"{r[k]:>16.4g}" for k in keys))
    for what in ("mean", "std"):
        cells = [summary[what].get(k) for k in keys]
        lines.append(f"  {what:>4}  " + "  ".join(
            f"{c:>16.4g}" if c is not None else " " * 16 for c in cells))  # fmt: skip
    return "\n".join(lines)


# --- the run -----------------------------------------------------------------------------------


def check_config(cfg: BCConfig, action_space: spaces.Space) -> None:
    if cfg.loss == "mse" and not isinstance(action_space, spaces.Box):
        raise ConfigError(
            f"method.loss mse regresses continuous actions; the action space {action_space} "
            "is not a Box: use loss log_likelihood (cross-entropy)"
        )


def train(experiment: Experiment, run: RunFolder, resume: ResumePoint | None = None) -> Result:
    """Behaviour cloning as the experiment says, in the given run folder (or on from ``resume``)."""
    with training_setup(experiment, resume) as (venv, agent):
        check_config(experiment.method, venv.action_space)
        dataset = load_dataset(experiment, venv)
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
    policy = Policy(agent.policy, agent.action_space)
    data = samples(dataset, policy, agent.device)
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
        policy.normalizer.update(train_data.obs)

    optimizer = make_optimizer(policy, cfg, experiment)
    generator = torch.Generator().manual_seed(experiment.seed)  # minibatch order
    progress = FitProgress()
    if cfg.patience is not None:
        progress.best_weights = _copy(agent.policy.state_dict())
    state = TrainState()
    state.module("model", agent.policy)
    state.optimizer("optimizer", optimizer)
    state.torch_rng("generator", generator)
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
    session = TrainingSession(experiment, run, agent, venv, state, resume, steps)

    session.begin()
    with session.running():
        while session.stop_reason is None:
            metrics = fit_epoch(policy, optimizer, train_data, valid_data, cfg, generator,
                                progress)  # fmt: skip
            session.log(progress.steps, metrics)
            session.after_update(progress.steps)
            if session.stop_reason is None:
                session.stop_reason = progress.stop_reason(cfg, cfg.max_epochs)
        if not session.stop_reason.startswith("interrupted"):
            # The kept model: lowest validation loss. It is validated in the env (a candidate
            # for checkpoints/best/) and becomes final/; the stop reason stays the loop's.
            keep_best(policy, progress)
            reason = session.stop_reason
            session.validate(progress.steps)
            session.stop_reason = reason
    return session.result
