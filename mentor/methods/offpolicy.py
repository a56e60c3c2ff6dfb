"""The loop DQN, SAC and TD3 share; each method supplies how it acts and how it updates.

    repeat until the session stops:
        act        on the current observations (uniformly at random before learning_starts)
        step       the envs; store the transition in the replay buffer
        update     gradient_steps times every train_freq env steps, once learning has started
        log        every logging.every_steps env steps; the session validates, checkpoints, stops

An env's action masks (``VecEnv.action_mask``) go into the replay buffer with the observations
they belong to; the method's explorer gets the current ones with the observations (DQN honours
them).

Each method acts through an ``Explorer``, its behaviour policy (DQN's epsilon-greedy, SAC's
sampled policy, TD3's noisy actor), made by a factory the method gives the loop: the loop makes
one for its envs, and on Ray (``distributed.workers``, Ape-X style: Horgan et al. 2018) each
rollout worker makes its own with its own random stream, acts with weights refreshed every
``distributed.actor_steps`` vector steps, and sends its transitions back in blocks; the learner
stores them row by row in one replay buffer and updates as the local loop does, so the
update-to-data ratio (``gradient_steps`` per ``train_freq`` env steps) is the experiment's.

``train_freq`` and ``learning_starts`` count env steps, so a run behaves the same whatever
``env.num_envs`` is, up to the granularity of one vector step.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from mentor.core.normalize import RewardScaler
from mentor.core.replay import ReplayBuffer
from mentor.core.vec_env import Episode, VecEnv
from mentor.envs.masks import mask_nvec
from mentor.errors import ConfigError
from mentor.experiment import Experiment
from mentor.runs.session import Result, TrainingSession
from mentor.transfer.loading import replay_source


class Explorer(Protocol):
    """A method's behaviour policy during training (module docstring)."""

    def __call__(
        self, obs: torch.Tensor, progress: float, warmup: bool, mask: np.ndarray | None,
        needs_reset: np.ndarray,
    ) -> tuple[torch.Tensor, np.ndarray]:  # fmt: skip
        """Actions to store and actions for the env, both batched, for ``obs`` (on the
        networks' device) whose action masks are ``mask`` (None: no masks); ``needs_reset``
        marks the envs whose next step is a reset (their action is ignored)."""

    def state_dict(self) -> dict[str, Any]:
        """Its random streams and processes, JSON-able (a Ray worker's checkpoint)."""

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class ExplorerFactory(Protocol):
    """Makes a method's explorer for ``num_envs`` envs; ``worker`` is (index, count) on Ray."""

    def __call__(
        self, experiment: Experiment, nets: torch.nn.Module, num_envs: int,
        rng: np.random.Generator, worker: tuple[int, int] | None = None,
    ) -> Explorer: ...  # fmt: skip


# (progress) -> metrics of one gradient step
UpdateFn = Callable[[float], dict[str, float]]


@dataclass
class OffPolicyState:
    """Counters the loop keeps; saved in checkpoints."""

    step: int = 0
    gradient_steps: int = 0
    update_rounds: int = 0
    metrics: dict[str, list[float]] = field(default_factory=dict)


def make_buffer(
    experiment: Experiment,
    venv: VecEnv,
    obs_dtype: torch.dtype,
    action_shape: tuple[int, ...],
    action_dtype: torch.dtype,
) -> ReplayBuffer:
    cfg = experiment.method
    # An env's masks are known after its first reset, or from its observation space at once.
    mask = venv.action_mask
    mask_size = 0 if mask is None else mask.shape[1]
    if mask is None and venv.mask_source == "obs":
        mask_size = sum(mask_nvec(venv.action_space, f"env '{experiment.env.id}'"))
    needed = ReplayBuffer.bytes_needed(
        cfg.buffer_size, venv.obs_shape, obs_dtype, action_shape, action_dtype, mask_size
    )
    available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if needed > 0.8 * available:
        fits = int(0.8 * available / needed * cfg.buffer_size)
        raise ConfigError(
            f"method.buffer_size {cfg.buffer_size:,} transitions of observations shaped "
            f"{venv.obs_shape} need {needed / 2**30:.1f} GiB; this machine has "
            f"{available / 2**30:.1f} GiB: use a buffer_size below {fits:,}"
        )
    return ReplayBuffer(
        cfg.buffer_size, venv.num_envs, venv.obs_shape, obs_dtype, action_shape, action_dtype,
        gamma=cfg.gamma, n_step=cfg.n_step, prioritized=getattr(cfg, "prioritized", False),
        priority_alpha=getattr(cfg, "priority_alpha", 0.6),
        cost_key=None if experiment.constraint is None else experiment.constraint.cost,
    )  # fmt: skip


def train_off_policy(
    experiment: Experiment,
    session: TrainingSession,
    venv: VecEnv,
    buffer: ReplayBuffer,
    explorer: Explorer,
    make_explorer: ExplorerFactory,
    update: UpdateFn,
    loop: OffPolicyState,
    observe: Callable[[torch.Tensor], None] | None = None,
    before_log: Callable[[list[Episode]], dict[str, float]] | None = None,
) -> Result:
    """Run the shared loop. ``observe`` sees each batch of observations (for normalization);
    ``before_log`` the episodes finished since the last log, before they are logged (a
    constraint's multiplier steps there), and returns more metrics.
    ``explorer`` acts on ``venv`` here; on Ray workers ``make_explorer`` makes theirs. The
    method has listed its own pieces in ``session.state``; the loop adds its counters, the
    replay buffer and the reward statistics before the session begins (or resumes)."""
    cfg = experiment.method
    device = session.agent.device
    total = experiment.stopping.total_steps
    log_every = experiment.logging.every_steps
    reward_scaler = RewardScaler(venv.num_envs, cfg.gamma, experiment.env.normalize_reward)
    state = session.state
    state.fields("progress", loop, "step", "gradient_steps", "update_rounds", "metrics")
    state.stateful("replay", buffer)
    state.stateful("reward_scaler", reward_scaler)
    if session.continual is not None:  # replay rehearsal keeps a finished task's transitions
        session.continual.buffer = buffer
    if experiment.agent.init_replay and session.resume is None:  # the source run's transitions
        folder, replay = replay_source(experiment.agent.init)
        try:
            taken = buffer.prefill(replay)
        except ValueError as exc:
            raise ConfigError(
                f"agent.init_replay: '{folder}': {exc} (the same env.num_envs and a buffer_size "
                "at least the source's are needed)"
            ) from None
        if session.agent.init_report is not None:
            session.agent.init_report.replay = {"source": str(folder), "transitions": taken}
            session.run.update(init=session.agent.init_report.to_json())
        print(f"init: replay buffer filled with {taken:,} transitions from {folder}",
              file=sys.stderr)  # fmt: skip
    remote = getattr(venv, "transitions", None)  # Ray rollout workers (mentor/distributed)
    if remote is not None:
        venv.set_explorer(make_explorer, experiment)
    obs = session.begin()
    next_log = (loop.step // log_every + 1) * log_every
    tic, steps_at_tic = time.perf_counter(), loop.step

    def learn(progress: float) -> None:
        """The gradient steps due at ``loop.step``: gradient_steps per train_freq env steps."""
        if loop.step - venv.num_envs < cfg.learning_starts or len(buffer) < 1:
            return
        rounds_due = (loop.step - cfg.learning_starts) // cfg.train_freq
        while loop.update_rounds < rounds_due:
            loop.update_rounds += 1
            for _ in range(cfg.gradient_steps):
                _accumulate(loop.metrics, update(progress))
                loop.gradient_steps += 1

    with session.running():
        while session.stop_reason is None:
            if remote is None:
                progress = loop.step / total
                obs_t = torch.from_numpy(obs)
                if observe is not None:
                    observe(obs_t)
                warmup = loop.step < cfg.learning_starts
                valid, mask = ~venv.needs_reset, venv.action_mask
                with torch.inference_mode():
                    stored, env_actions = explorer(
                        obs_t.to(device), progress, warmup, mask, venv.needs_reset
                    )
                obs, rewards, terminated, truncated = venv.step(env_actions)
                rewards = reward_scaler(rewards, terminated | truncated)
                costs = None if buffer.cost_key is None else venv.step_value(buffer.cost_key)
                buffer.add(obs_t, stored.cpu(), rewards, terminated, truncated, valid, mask, costs)
                loop.step += venv.num_envs
                learn(progress)
            else:  # a block of rows from every worker, stored and learned from row by row
                block = remote(session.agent.policy, loop.step)
                buffer.truncate_last(block["cut"])
                for t in range(len(block["rewards"])):
                    progress = loop.step / total
                    obs_t = torch.from_numpy(block["obs"][t])
                    if observe is not None:
                        observe(obs_t)
                    done = block["terminated"][t] | block["truncated"][t]
                    rewards = reward_scaler(block["rewards"][t], done)
                    masks = None if block["masks"] is None else block["masks"][t]
                    buffer.add(obs_t, block["actions"][t], rewards, block["terminated"][t],
                               block["truncated"][t], block["valid"][t], masks)  # fmt: skip
                    loop.step += venv.num_envs
                    learn(progress)

            if loop.step >= next_log or loop.step >= total:
                elapsed = time.perf_counter() - tic
                extra = {} if before_log is None else before_log(venv.episodes)
                metrics = _log_row(loop, venv, (loop.step - steps_at_tic) / max(elapsed, 1e-9))
                metrics.update(extra)
                session.log(loop.step, metrics)
                next_log = (loop.step // log_every + 1) * log_every
                tic, steps_at_tic = time.perf_counter(), loop.step
            session.after_update(loop.step)
    return session.result


def _accumulate(totals: dict[str, list[float]], metrics: dict[str, float]) -> None:
    for key, value in metrics.items():
        totals.setdefault(key, []).append(value)


def _log_row(loop: OffPolicyState, venv: VecEnv, sps: float) -> dict[str, float]:
    row = {key: float(np.mean(values)) for key, values in loop.metrics.items()}
    loop.metrics.clear()
    row.update({"time/sps": sps, "time/gradient_steps": loop.gradient_steps})
    return {**row, **venv.episode_metrics()}


class PolyakUpdate:
    """target ← (1 - tau) target + tau online, for every parameter and float buffer (tau 1: a
    copy of everything). The tensor lists are gathered once: walking the modules on every call
    costs more than the update itself for small networks."""

    def __init__(self, target: torch.nn.Module, online: torch.nn.Module) -> None:
        pairs = list(zip([*target.parameters(), *target.buffers()],
                         [*online.parameters(), *online.buffers()], strict=True))  # fmt: skip
        self.targets, self.onlines = [t for t, _ in pairs], [o for _, o in pairs]
        floats = [(t, o) for t, o in pairs if t.is_floating_point()]
        self.float_targets, self.float_onlines = [t for t, _ in floats], [o for _, o in floats]

    @torch.no_grad()
    def __call__(self, tau: float) -> None:
        if tau >= 1.0:
            torch._foreach_copy_(self.targets, self.onlines)
        else:
            torch._foreach_lerp_(self.float_targets, self.float_onlines, tau)
