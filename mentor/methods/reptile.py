"""First-order meta-learning of a policy's initial weights: Reptile (Nichol et al. 2018,
arXiv:1803.02999) and first-order MAML (Finn et al. 2017, arXiv:1703.03400, section 2.2's
first-order approximation). The weights theta are learned so that a few policy-gradient steps
on a new task's few episodes make a good policy for that task.

The loop, top to bottom:

    tasks     meta_batch tasks a step, each a draw of the env's parameters from ``params``
              ({name: [low, high]}, uniform; PointNav's goal_x and goal_y), set on the envs as
              curricula set them (``envs.tasks.apply_params``)
    inner     on each task, from phi = theta: inner_steps times, play inner_episodes episodes
              with phi (sampled actions) and take one SGD step of inner_learning_rate on the
              REINFORCE loss -mean_t log pi(a_t | s_t) A_t. A_t is the discounted return-to-go
              minus a linear baseline fitted to it on the same episodes (features [s, s^2, t,
              t^2, t^3, 1], ridge: rllab's LinearFeatureBaseline, which MAML used), the
              advantages standardized over the batch. No critic: the value head of the network
              is left as it was built.
    outer     reptile: theta <- theta + meta_learning_rate * mean_i (phi_i - theta).
              fomaml: play query_episodes new episodes of task i with phi_i, take the gradient
              g_i of the same loss at phi_i (first order: no gradient through the inner steps)
              and theta <- theta - meta_learning_rate * mean_i g_i.
    validate  ``validation.episodes`` held-out tasks (drawn from the same ranges with the
              validation seed, the same ones at every validation): adapt from theta exactly as
              the inner loop does, then play one episode with the adapted weights. Its return,
              "the return after inner_steps x inner_episodes adaptation episodes", is the
              validation's return (the best checkpoint is chosen on it) and the final
              evaluation's (``evaluation.episodes`` other held-out tasks); the return of the
              first adaptation episodes, played by theta itself, is the info key
              ``unadapted_return`` beside it (validation.csv's ``unadapted_return_mean``), and
              ``adaptation_episodes`` says how many episodes adapted the weights.

Plain SGD in both loops, so each update is the formula above exactly, with each policy
gradient's norm clipped to ``max_grad_norm`` and the outer step size a number or a schedule
over the budget. Tasks and env seeds come
from one generator (``rng_tasks``), actions from torch's global one: both are in the checkpoint,
and every outer step starts its episodes afresh, so a resumed run is the unbroken one. Steps
count the env steps of every episode played for training. The saved agent is theta, the
initial policy: ``mentor eval`` plays it without adaptation. The episodes are played on env
copies of the method's own, in this process (a task's parameters set on each); the session's
copies (``env.num_envs``: the preset's one) are reset but not stepped.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from mentor.agent import Agent
from mentor.core.networks import ActorCritic
from mentor.core.schedules import value_at
from mentor.core.vec_env import Episode, VecEnv
from mentor.envs.meta import check_ranges
from mentor.envs.resolve import make_env
from mentor.envs.tasks import apply_params
from mentor.errors import ConfigError
from mentor.evaluation.evaluate import success_threshold, summarize_episodes
from mentor.evaluation.statistics import EvalSummary
from mentor.experiment import Experiment, ReptileConfig
from mentor.runs.checkpoint import ResumePoint
from mentor.runs.folder import RunFolder
from mentor.runs.session import Result, TrainingSession, training_setup
from mentor.runs.state import TrainState

__all__ = ["build_networks", "train"]

Task = Mapping[str, float]
FIRST_TOGETHER = 256  # tasks whose first episodes are played side by side (env copies: x k)


def build_networks(
    experiment: Experiment, obs_space: spaces.Space, action_space: spaces.Space
) -> ActorCritic:
    """PPO's actor-critic over vector observations; only its policy is adapted and meta-learned."""
    if not (isinstance(obs_space, spaces.Box) and len(obs_space.shape) == 1):
        raise ConfigError(f"method reptile plays vector observations; this env's are {obs_space}")
    network = experiment.agent.network
    if network.memory is not None or network.kind == "cnn":
        raise ConfigError("method reptile adapts an MLP policy's weights: agent.network.memory "
                          "and kind 'cnn' are not for it (a policy with memory: RL², ppo on "
                          "mentor/Trials-v0)")  # fmt: skip
    env = experiment.env
    return ActorCritic(obs_space, action_space, network, env.normalize_obs, env.clip_obs)


# --- playing a task ---------------------------------------------------------------------------


@dataclass
class Episodes:
    """Episodes played side by side on one task, padded to the longest: (T, n, ...) tensors,
    ``valid`` False after an episode's end."""

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    valid: torch.Tensor

    @property
    def returns(self) -> torch.Tensor:
        return (self.rewards * self.valid).sum(0)

    @property
    def steps(self) -> int:
        return int(self.valid.sum())

    def part(self, start: int, stop: int) -> Episodes:
        """Episodes ``start`` to ``stop`` of those played together."""
        return Episodes(*(x[:, start:stop] for x in (self.obs, self.actions, self.rewards,
                                                     self.valid)))  # fmt: skip


class Player:
    """In-process copies of one env that play episodes together: each copy's task (its
    parameters) set on it, each copy reset with its own seed, one batched policy call a step."""

    def __init__(
        self, env_id: str, kwargs: dict[str, Any], params: dict[str, Any] | None,
        max_episode_steps: int | None = None,
    ) -> None:  # fmt: skip
        self.env_id, self.kwargs = env_id, dict(kwargs or {})
        self.max_episode_steps = max_episode_steps
        self.ranges = None if params is None else check_ranges(params, "method reptile")
        self.envs: list[Any] = []
        self._grow(1)
        base = self.envs[0].unwrapped
        missing = [name for name in self.ranges or {} if not hasattr(base, name)]
        if missing:
            known = sorted(k for k, v in vars(base).items() if isinstance(v, int | float))
            self.close()
            raise ConfigError(f"method.params: env '{env_id}' has no parameter '{missing[0]}'; "
                              f"its numeric attributes: {', '.join(known) or 'none'}")  # fmt: skip

    def _grow(self, copies: int) -> None:
        while len(self.envs) < copies:
            env = make_env(self.env_id, self.kwargs)
            if self.max_episode_steps is not None:  # env.max_episode_steps, as VecEnv applies it
                env = gym.wrappers.TimeLimit(env, self.max_episode_steps)
            self.envs.append(env)

    def draw(self, rng: np.random.Generator, count: int) -> list[dict[str, float]]:
        """``count`` tasks: a uniform draw of each parameter within its range."""
        ranges = self.ranges or {}
        return [{k: float(rng.uniform(lo, hi)) for k, (lo, hi) in ranges.items()}
                for _ in range(count)]  # fmt: skip

    def play(
        self,
        policy: ActorCritic,
        tasks: Task | Sequence[Task],
        seeds: Sequence[int],
        deterministic: bool = False,
    ) -> Episodes:
        """One episode per seed, of one task or of each copy's own (``tasks``, one per seed)."""
        if isinstance(tasks, Mapping):
            tasks = [tasks] * len(seeds)
        self._grow(len(seeds))
        envs = self.envs[: len(seeds)]
        space = envs[0].action_space
        device = next(policy.parameters()).device
        current = []
        for env, task, seed in zip(envs, tasks, seeds, strict=True):
            apply_params(env, task, self.env_id)
            current.append(np.asarray(env.reset(seed=int(seed))[0], np.float32))
        active = np.ones(len(envs), bool)
        obs_rows, action_rows, reward_rows, valid_rows = [], [], [], []
        while active.any():
            obs = torch.from_numpy(np.stack(current)).to(device)
            with torch.inference_mode():
                actions = policy.predict(obs, deterministic)
            sent = actions.cpu().numpy()
            if isinstance(space, spaces.Box):  # the Gaussian's draw, clipped at the env
                sent = np.clip(sent, space.low, space.high)
            rewards = np.zeros(len(envs), np.float32)
            valid = active.copy()
            for i in np.flatnonzero(active):
                obs_i, reward, terminated, truncated, _ = envs[i].step(sent[i])
                rewards[i] = reward
                current[i] = np.asarray(obs_i, np.float32)
                active[i] = not (terminated or truncated)
            obs_rows.append(obs.cpu())
            action_rows.append(actions.cpu().clone())
            reward_rows.append(torch.from_numpy(rewards))
            valid_rows.append(torch.from_numpy(valid))
        rows = (obs_rows, action_rows, reward_rows, valid_rows)
        return Episodes(*(torch.stack(r).to(device) for r in rows))

    def close(self) -> None:
        for env in self.envs:
            env.close()


# --- the inner loop's loss --------------------------------------------------------------------


def returns_to_go(rewards: torch.Tensor, valid: torch.Tensor, gamma: float) -> torch.Tensor:
    """Discounted returns from each step to its episode's end, (T, n); 0 after the end."""
    out = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in range(len(rewards) - 1, -1, -1):
        running = (rewards[t] + gamma * running) * valid[t]
        out[t] = running
    return out


def linear_baseline(obs: torch.Tensor, valid: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """rllab's LinearFeatureBaseline: a ridge fit of the returns-to-go on [s, s^2, t, t^2, t^3,
    1] (t = step / 100) over the valid steps, its prediction at every step."""
    steps = torch.arange(len(obs), dtype=torch.float64, device=obs.device) / 100.0
    t = steps.view(-1, 1, 1).expand(*obs.shape[:2], 1)
    s = obs.double().clamp(-10, 10)
    features = torch.cat([s, s**2, t, t**2, t**3, torch.ones_like(t)], -1)
    x, y = features[valid], targets.double()[valid]
    eye = torch.eye(x.shape[1], dtype=torch.float64, device=obs.device)
    weights = torch.linalg.solve(x.T @ x + 1e-5 * eye, x.T @ y)
    return (features @ weights).to(targets.dtype)


def policy_gradient_loss(policy: ActorCritic, episodes: Episodes, gamma: float) -> torch.Tensor:
    """REINFORCE with the linear baseline, advantages standardized: -mean_t log pi(a|s) A."""
    targets = returns_to_go(episodes.rewards, episodes.valid, gamma)
    advantages = targets - linear_baseline(episodes.obs, episodes.valid, targets)
    valid = episodes.valid
    kept = advantages[valid]
    advantages = (advantages - kept.mean()) / (kept.std(unbiased=False) + 1e-8)
    t, n = valid.shape
    params = policy.policy_params(episodes.obs.flatten(0, 1))
    log_probs = policy.dist.log_prob(params, episodes.actions.flatten(0, 1)).view(t, n)
    return -(log_probs * advantages * valid).sum() / valid.sum()


def actor_vector(policy: ActorCritic) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in policy.actor_parameters()])


def set_actor_vector(policy: ActorCritic, vector: torch.Tensor) -> None:
    with torch.no_grad():
        torch.nn.utils.vector_to_parameters(vector, policy.actor_parameters())


def gradient(policy: ActorCritic, episodes: Episodes, cfg: ReptileConfig) -> torch.Tensor:
    """The loss's gradient over the policy's parameters, as one vector, its norm clipped to
    ``max_grad_norm``."""
    loss = policy_gradient_loss(policy, episodes, cfg.gamma)
    params = policy.actor_parameters()
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    vector = torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1)
                        for p, g in zip(params, grads, strict=True)])  # fmt: skip
    norm = vector.norm()
    if cfg.max_grad_norm is not None and norm > cfg.max_grad_norm:
        vector = vector * (cfg.max_grad_norm / norm)
    return vector


# --- adapting, and the outer update -----------------------------------------------------------


@dataclass
class Adapted:
    """A task's adapted copy of the policy and what its adaptation played."""

    policy: ActorCritic
    first_returns: torch.Tensor  # the first inner step's episodes: theta's own returns
    steps: int


def play_first(
    policy: ActorCritic, tasks: list[dict[str, float]], player: Player, cfg: ReptileConfig,
    rng: np.random.Generator, deterministic: bool = False,
) -> list[Episodes]:  # fmt: skip
    """Every task's first inner episodes together, ``FIRST_TOGETHER`` tasks at a time: all are
    played by theta itself."""
    k = cfg.inner_episodes
    seeds = rng.integers(2**31, size=len(tasks) * k)
    out = []
    for start in range(0, len(tasks), FIRST_TOGETHER):
        some = tasks[start : start + FIRST_TOGETHER]
        copies = [t for t in some for _ in range(k)]
        own = seeds[start * k : (start + len(some)) * k]
        played = player.play(policy, copies, own, deterministic)
        out += [played.part(i * k, (i + 1) * k) for i in range(len(some))]
    return out


def adapt(
    policy: ActorCritic, task: Task, first: Episodes, player: Player, cfg: ReptileConfig,
    rng: np.random.Generator, scratch: ActorCritic | None = None,
) -> Adapted:  # fmt: skip
    """phi from theta: inner_steps SGD steps, the first on ``first`` (theta's episodes of the
    task), each next on inner_episodes new ones; in ``scratch`` (a copy of the policy to
    overwrite) when given."""
    fast = copy.deepcopy(policy) if scratch is None else scratch
    set_actor_vector(fast, actor_vector(policy))
    episodes, steps = first, first.steps
    for step in range(cfg.inner_steps):
        if step:
            episodes = player.play(fast, task, rng.integers(2**31, size=cfg.inner_episodes))
            steps += episodes.steps
        phi = actor_vector(fast) - cfg.inner_learning_rate * gradient(fast, episodes, cfg)
        set_actor_vector(fast, phi)
    return Adapted(fast, first.returns, steps)


def meta_step(
    policy: ActorCritic,
    tasks: list[dict[str, float]],
    player: Player,
    cfg: ReptileConfig,
    rng: np.random.Generator,
    meta_learning_rate: float,
) -> tuple[int, dict[str, float]]:
    """One outer update of theta over ``tasks`` with this step size; the env steps played and
    the metrics."""
    theta = actor_vector(policy)
    directions, first, query, steps = [], [], [], 0
    scratch = copy.deepcopy(policy)
    firsts = play_first(policy, tasks, player, cfg, rng)
    for task, played in zip(tasks, firsts, strict=True):
        adapted = adapt(policy, task, played, player, cfg, rng, scratch)
        steps += adapted.steps
        first.append(adapted.first_returns.mean().item())
        if cfg.algorithm == "reptile":
            directions.append(actor_vector(adapted.policy) - theta)
        else:  # first-order MAML: the query loss's gradient at phi_i, applied to theta
            episodes = player.play(
                adapted.policy, task, rng.integers(2**31, size=cfg.query_episodes)
            )
            steps += episodes.steps
            query.append(episodes.returns.mean().item())
            directions.append(-gradient(adapted.policy, episodes, cfg))
    direction = torch.stack(directions).mean(0)
    set_actor_vector(policy, theta + meta_learning_rate * direction)
    metrics = {
        "rollout/ep_return_mean": float(np.mean(first)),
        "meta/update_norm": float(meta_learning_rate * direction.norm()),
        "meta/learning_rate": meta_learning_rate,
    }
    if query:
        metrics["meta/query_return_mean"] = float(np.mean(query))
    return steps, metrics


# --- validation: the return after adaptation on held-out tasks -----------------------------------


class MetaSession(TrainingSession):
    """The session, its validation and final evaluation on held-out tasks adapted to (module
    docstring): a task is one "episode" of the summary, the return of its episode after
    adaptation."""

    def __init__(self, *args: Any, make_player: Callable[[], Player], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._player: Player | None = None
        self._make_player = make_player

    def close_player(self) -> None:
        if self._player is not None:
            self._player.close()

    def evaluate_agent(
        self,
        episodes: int,
        deterministic: bool,
        seed_shift: int,
        num_envs: int | None = None,
        on_episode: Callable[[], None] | None = None,
        task: Any = None,
    ) -> EvalSummary:
        cfg: ReptileConfig = self.experiment.method
        if self._player is None:
            self._player = self._make_player()
        seed = self.experiment.seed + self.experiment.validation.seed_offset + seed_shift
        rng = np.random.default_rng([seed, 0xADA])  # the same held-out tasks each time
        policy = self.agent.policy
        adaptation = float(cfg.inner_steps * cfg.inner_episodes)
        tasks = self._player.draw(rng, episodes)
        firsts = play_first(policy, tasks, self._player, cfg, rng)
        scratch = copy.deepcopy(policy)
        out = []
        for index, (held_out, first) in enumerate(zip(tasks, firsts, strict=True)):
            adapted = adapt(policy, held_out, first, self._player, cfg, rng, scratch)
            played = self._player.play(adapted.policy, held_out, rng.integers(2**31, size=1),
                                       deterministic)  # fmt: skip
            unadapted = float(adapted.first_returns.mean())
            info = {"unadapted_return": unadapted, "adaptation_episodes": adaptation}
            out.append(Episode(index, float(played.returns[0]), played.steps, info))
            if on_episode is not None:
                on_episode()
        env_id = self.experiment.validation.env.id or self.experiment.env.id
        return summarize_episodes(out, success_threshold(self.experiment, env_id))


@dataclass
class OuterSteps:
    """The counters a checkpoint keeps."""

    outer_steps: int = 0
    steps: int = 0


# --- the loop ---------------------------------------------------------------------------------


def train(experiment: Experiment, run: RunFolder, resume: ResumePoint | None = None) -> Result:
    """Reptile or first-order MAML as the experiment says, in the given run folder (or on from
    ``resume``)."""
    with training_setup(experiment, resume) as (venv, agent):
        return _train(experiment, run, venv, agent, resume)


def _train(
    experiment: Experiment, run: RunFolder, venv: VecEnv, agent: Agent, resume: ResumePoint | None
) -> Result:
    cfg: ReptileConfig = experiment.method
    policy: ActorCritic = agent.policy
    env = experiment.env
    player = Player(env.id, env.kwargs, cfg.params, env.max_episode_steps)
    validation = experiment.validation.env
    kwargs = validation.kwargs if validation.kwargs is not None else env.kwargs

    def validation_player() -> Player:
        return Player(validation.id or env.id, kwargs, cfg.params, env.max_episode_steps)

    rng = np.random.default_rng([experiment.seed, 0x7A5C])
    state = TrainState()
    state.module("model", policy)
    state.numpy_rng("rng_tasks", rng)
    counters = OuterSteps()
    state.fields("progress", counters, "outer_steps", "steps")
    session = MetaSession(
        experiment, run, agent, venv, state, resume, make_player=validation_player
    )
    session.begin()
    try:
        with session.running():
            while session.stop_reason is None:
                tasks = player.draw(rng, cfg.meta_batch)
                progress = counters.steps / experiment.stopping.total_steps
                meta_lr = value_at(cfg.meta_learning_rate, progress)
                steps, metrics = meta_step(policy, tasks, player, cfg, rng, meta_lr)
                counters.outer_steps += 1
                counters.steps += steps
                metrics["time/outer_steps"] = counters.outer_steps
                session.log(counters.steps, metrics)
                session.after_update(counters.steps)
    finally:
        player.close()
        session.close_player()
    return session.result
