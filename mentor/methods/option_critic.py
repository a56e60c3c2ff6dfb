"""Option-critic (Bacon, Harb & Precup 2017): options whose intra-option policies and
termination functions are learned with the critic over options, end to end. Discrete actions.

    networks  one feature body (agent.network) and three heads on it: Q_Omega(s, ·) over the
              options, each option's intra-option softmax policy pi_w(· | s) and its sigmoid
              termination beta_w(s). The body is shared (the paper's deep variant; on the
              four-rooms one-hot with hidden_sizes [] each head is a table, the paper's tabular
              setting).
    act       every env copy has an option in force; where it has none (an episode's start) or
              the option terminated, a new one is chosen epsilon-greedily on Q_Omega
              (exploration.epsilon); then a ~ pi_w(s).
    target    g = r + gamma U(s', w),  U(s', w) = (1 - beta_w(s')) Q_Omega(s', w)
                                                  + beta_w(s') max_w' Q_Omega(s', w')
              (0 after termination; truncated episodes bootstrap from their final observation),
              one step, from the target network when method.target_update_freq is set, else
              from the online critic, detached.
    critic    critic_coef * 1/2 (Q_Omega(s, w) - g)^2
    policy    -log pi_w(a | s) (g - Q_Omega(s, w)) - entropy_coef H(pi_w(s)): the intra-option
              policy gradient, with g as the estimate of Q_U(s, w, a) and Q_Omega(s, w) as the
              baseline (both detached)
    terminate termination_coef * beta_w(s') (Q_Omega(s', w) - V_Omega(s') + xi), the
              advantage detached, V_Omega(s') = max_w Q_Omega(s', w) and xi the termination
              regularizer (method.termination_reg, Harb et al.'s deliberation cost): its
              gradient on beta's logit is beta (1 - beta) (Q - V + xi), the termination
              gradient theorem's, so an option that is worse than the best one here ends and a
              good one goes on. Left out where s' is terminal (nothing follows to choose).

All three losses are summed into one Adam step per vector step on the batch of env copies
(online, as the paper's Algorithm 1; with num_envs copies, the synchronous batch of A2OC,
Harb et al. 2018). The option each copy has in force, the random streams and the option usage
counts are saved in checkpoints, so a run resumes exactly.

**The saved agent** acts with its option in force as its state: ``mentor.load``, ``mentor
eval`` and validation carry it through ``Agent``'s memory seam (``policy.memory``, one number a
row: the option + 1, 0 for none, forgotten when an episode restarts). Deterministic play keeps
the option while beta_w(s) < 1/2, then takes the greedy option on Q_Omega, and acts by the mode
of pi_w; stochastic play samples terminations and actions, and chooses options
epsilon-greedily with the epsilon training ended with. ``predict`` alone (no state) acts by the
greedy option at each step.

**Option usage**: where observations are one-hot vectors (a grid's cell, as on
``mentor/FourRooms-v0``), the run counts which option is in force in each state and writes
``options.json`` in the run folder with the greedy option and the terminations of each state;
``mentor report`` plots them on the grid (``mentor/report/options.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn
from torch.nn import functional as F

from mentor.agent import Agent, trainable
from mentor.core.distributions import Categorical
from mentor.core.networks import init_linear, mlp, observation_encoder
from mentor.core.optim import descend, set_lr
from mentor.core.schedules import value_at
from mentor.core.vec_env import VecEnv
from mentor.experiment import Experiment, NetworkConfig, OptionCriticConfig
from mentor.methods.offpolicy import PolyakUpdate
from mentor.runs.checkpoint import ResumePoint
from mentor.runs.folder import RunFolder, write_json
from mentor.runs.session import Result, TrainingSession, training_setup
from mentor.runs.state import TrainState
from mentor.transfer.loading import scaled_groups

OPTIONS_FILE = "options.json"
MAX_USAGE_STATES = 10_000  # one-hot observations up to this size have their usage counted


@dataclass
class OptionOutputs:
    """The heads for a batch: Q_Omega (B, O), beta (B, O), intra-option logits (B, O, A)."""

    q: torch.Tensor
    beta: torch.Tensor
    logits: torch.Tensor


class OptionCritic(nn.Module):
    """The feature body and the three heads (module docstring)."""

    def __init__(self, obs_space: spaces.Space, num_actions: int, num_options: int,
                 config: NetworkConfig, normalize_obs: bool, clip_obs: float) -> None:  # fmt: skip
        super().__init__()
        self.normalizer, self.cnn, in_size = observation_encoder(
            obs_space, config, normalize_obs, clip_obs
        )
        self.body = mlp(in_size, config.hidden_sizes, config.activation)
        size = config.hidden_sizes[-1] if config.hidden_sizes else in_size
        self.num_options, self.num_actions = num_options, num_actions
        self.q_head = nn.Linear(size, num_options)
        self.termination_head = nn.Linear(size, num_options)
        self.policy_head = nn.Linear(size, num_options * num_actions)
        if config.ortho_init:
            init_linear(self, 2**0.5)

    def forward(self, obs: torch.Tensor) -> OptionOutputs:
        x = self.normalizer(obs) if self.normalizer.enabled else obs
        x = self.body(self.cnn(x) if self.cnn is not None else x)
        logits = self.policy_head(x).view(-1, self.num_options, self.num_actions)
        return OptionOutputs(self.q_head(x), torch.sigmoid(self.termination_head(x)), logits)


class OptionState:
    """The option in force as an agent's memory (``Agent``'s seam for policies with state):
    one number a row, the option + 1, 0 where none is in force; ``forget`` zeroes a row whose
    episode restarts, so its next step chooses anew."""

    state_size = 1

    def initial(self, rows: int, device: torch.device | str = "cpu") -> torch.Tensor:
        return torch.zeros(rows, 1, device=device)


def choose_options(
    q: torch.Tensor, epsilon: float, generator: torch.Generator | None
) -> torch.Tensor:
    """Epsilon-greedy options on Q_Omega (B, O): the greedy one, or with probability epsilon
    one drawn uniformly."""
    greedy = q.argmax(-1)
    if epsilon <= 0:
        return greedy
    draws = torch.rand(len(q), generator=generator, device=q.device)
    random = torch.randint(q.shape[-1], (len(q),), generator=generator, device=q.device)
    return torch.where(draws < epsilon, random, greedy)


def of_option(values: torch.Tensor, options: torch.Tensor) -> torch.Tensor:
    """Each row's entry for its option: (B, O) -> (B,), or (B, O, A) -> (B, A)."""
    index = options.view(-1, *([1] * (values.dim() - 1)))
    if values.dim() == 3:
        index = index.expand(-1, 1, values.shape[-1])
    return values.gather(1, index).squeeze(1)


class OptionCriticNetworks(nn.Module):
    """The online networks, the critic's target, and how the saved agent acts (module
    docstring). The policy interface (``policy_params``): the greedy option's logits."""

    unit_box_actions = False
    honours_masks = False

    def __init__(self, online: OptionCritic, target: OptionCritic, epsilon: float = 0.0) -> None:
        super().__init__()
        self.online = online
        self.target = target.requires_grad_(False)
        self.dist = Categorical([online.num_actions])
        self.memory = OptionState()
        self.epsilon = epsilon
        self.target_in_use = False  # method.target_update_freq set: the TD targets read target
        self.sampling = (f"sampled actions and terminations, options epsilon-greedy with "
                         f"epsilon {epsilon:g} (exploration.epsilon at the end)")  # fmt: skip

    @property
    def normalizer(self) -> nn.Module:
        return self.online.normalizer

    def policy_params(self, obs: torch.Tensor) -> torch.Tensor:
        out = self.online(obs)
        return of_option(out.logits, out.q.argmax(-1))

    def actor_parameters(self) -> list[nn.Parameter]:
        return list(self.online.parameters())

    def predict(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        """Without a state: the greedy option's action at each step."""
        params = self.policy_params(obs)
        return self.dist.sample(params, deterministic=deterministic)

    def predict_step(
        self, obs: torch.Tensor, state: torch.Tensor, deterministic: bool = True,
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """Actions with the option in force, and the state after them (module docstring)."""
        out = self.online(obs)
        option = state[:, 0].long() - 1
        held = option >= 0
        if held.any():
            beta = of_option(out.beta, option.clamp(min=0))
            ends = beta >= 0.5 if deterministic else torch.rand_like(beta) < beta
            held = held & ~ends
        epsilon = 0.0 if deterministic else self.epsilon
        option = torch.where(held, option, choose_options(out.q, epsilon, None))
        actions = self.dist.sample(of_option(out.logits, option), deterministic=deterministic)
        return actions, (option + 1).float().unsqueeze(-1)


def build_networks(
    experiment: Experiment, obs_space: spaces.Space, action_space: spaces.Space
) -> OptionCriticNetworks:
    cfg: OptionCriticConfig = experiment.method
    env = experiment.env

    def make() -> OptionCritic:
        return OptionCritic(obs_space, int(action_space.n), cfg.num_options,
                            experiment.agent.network, env.normalize_obs, env.clip_obs)  # fmt: skip

    online, target = make(), make()
    target.load_state_dict(online.state_dict())
    nets = OptionCriticNetworks(online, target, value_at(experiment.exploration.epsilon, 1.0))
    nets.target_in_use = getattr(cfg, "target_update_freq", None) is not None
    return nets


# --- the losses -------------------------------------------------------------------------------


def termination_loss(
    beta_next: torch.Tensor, q_next: torch.Tensor, options: torch.Tensor, xi: float
) -> torch.Tensor:
    """Per row: beta_w(s') (Q_Omega(s', w) - V_Omega(s') + xi), the advantage detached, V the
    max over options. Descending it moves beta's logit by -beta (1 - beta) (Q - V + xi)."""
    q_next = q_next.detach()
    advantage = of_option(q_next, options) - q_next.max(-1).values + xi
    return of_option(beta_next, options) * advantage


def intra_option_loss(
    logits: torch.Tensor, actions: torch.Tensor, advantages: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: -log pi_w(a | s) A (A detached) and the entropy of pi_w(s); ``logits`` are the
    option's own (B, A)."""
    log_probs = F.log_softmax(logits, -1)
    chosen = log_probs.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
    entropy = -(log_probs.exp() * log_probs).sum(-1)
    return -chosen * advantages.detach(), entropy


def option_critic_loss(
    nets: OptionCriticNetworks, cfg: OptionCriticConfig, obs: torch.Tensor,
    options: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor,
    next_obs: torch.Tensor, terminated: torch.Tensor, valid: torch.Tensor, entropy_coef: float,
) -> tuple[dict[str, torch.Tensor], dict[str, float], torch.Tensor]:  # fmt: skip
    """The loss terms over the valid rows of one vector step, diagnostics, and beta_w(s')
    (detached) for the termination draws."""
    both = nets.online(torch.cat([obs, next_obs]))
    n = len(obs)
    q, q_next = both.q[:n], both.q[n:]
    beta_next = both.beta[n:]
    with torch.no_grad():
        bootstrap = nets.target(next_obs).q if nets.target_in_use else q_next
        b = of_option(beta_next, options)
        u_next = (1 - b) * of_option(bootstrap, options) + b * bootstrap.max(-1).values
        targets = rewards + cfg.gamma * (1.0 - terminated) * u_next
    q_option = of_option(q, options)
    weight = valid / valid.sum().clamp(min=1.0)
    critic = (0.5 * (q_option - targets).square() * weight).sum()
    policy, entropy = intra_option_loss(
        of_option(both.logits[:n], options), actions, targets - q_option.detach()
    )
    terminate = termination_loss(beta_next, q_next, options, cfg.termination_reg)
    alive = weight * (1.0 - terminated)
    terms = {
        "loss/critic": cfg.critic_coef * critic,
        "loss/policy": (policy * weight).sum(),
        "loss/entropy": -entropy_coef * (entropy * weight).sum(),
        "loss/termination": cfg.termination_coef * (terminate * alive).sum(),
    }
    with torch.no_grad():
        stats = {
            "train/q_mean": float((q_option * weight).sum()),
            "train/td_abs": float(((q_option - targets).abs() * weight).sum()),
            "train/entropy": float((entropy * weight).sum()),
        }
    return terms, stats, beta_next.detach()


# --- option usage -----------------------------------------------------------------------------


class OptionUsage:
    """Counts of the option in force per state, where states are one-hot observations, and
    each option's steps (its share of the run)."""

    def __init__(self, num_options: int, obs_shape: tuple[int, ...]) -> None:
        size = obs_shape[0] if len(obs_shape) == 1 and obs_shape[0] <= MAX_USAGE_STATES else 0
        self.counts = np.zeros((num_options, size))
        self.steps = np.zeros(num_options)

    def add(self, obs: np.ndarray, options: np.ndarray, valid: np.ndarray) -> None:
        np.add.at(self.steps, options[valid], 1.0)
        if self.counts.shape[1] == 0:
            return
        rows = obs[valid]
        cells = rows.argmax(-1)
        if not (rows.sum(-1) == 1).all() or not (rows[np.arange(len(rows)), cells] == 1).all():
            self.counts = self.counts[:, :0]  # not one-hot: states are not countable
            return
        np.add.at(self.counts, (options[valid], cells), 1.0)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"counts": torch.from_numpy(self.counts.copy()),
                "steps": torch.from_numpy(self.steps.copy())}  # fmt: skip

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.counts, self.steps = state["counts"].numpy().copy(), state["steps"].numpy().copy()


def write_usage(run: RunFolder, experiment: Experiment, nets: OptionCriticNetworks,
                usage: OptionUsage) -> None:  # fmt: skip
    """``options.json``: the usage counts, and per state the greedy option and each option's
    termination probability (one-hot states: the identity's rows)."""
    states = usage.counts.shape[1]
    data: dict[str, Any] = {
        "env_id": experiment.env.id,
        "num_options": nets.online.num_options,
        "option_steps": usage.steps.tolist(),
        "states": states,
    }
    if states:
        device = next(nets.parameters()).device
        with torch.inference_mode():
            out = nets.online(torch.eye(states, device=device))
        data.update(counts=usage.counts.tolist(), greedy_option=out.q.argmax(-1).tolist(),
                    termination=out.beta.T.tolist())  # fmt: skip
    write_json(run.path / OPTIONS_FILE, data)


# --- the loop ---------------------------------------------------------------------------------


@dataclass
class Progress:
    """The loop's counters (saved in checkpoints)."""

    step: int = 0
    updates: int = 0
    last_target_sync: int = 0
    switches: int = 0


def train(experiment: Experiment, run: RunFolder, resume: ResumePoint | None = None) -> Result:
    """Train option-critic as the experiment says, in the run folder (or on from ``resume``)."""
    with training_setup(experiment, resume) as (venv, agent):
        return _train(experiment, run, venv, agent, resume)


def _train(
    experiment: Experiment, run: RunFolder, venv: VecEnv, agent: Agent, resume: ResumePoint | None
) -> Result:
    cfg: OptionCriticConfig = experiment.method
    exploration = experiment.exploration
    nets: OptionCriticNetworks = agent.policy
    params = trainable(nets.online, "option-critic networks", experiment.agent)
    learning_rate = value_at(cfg.learning_rate, 0.0)
    optimizer = torch.optim.Adam(
        scaled_groups(params, nets, experiment.agent.lr_scale, learning_rate),
        lr=learning_rate, eps=cfg.adam_eps, fused=True,
    )  # fmt: skip
    device = agent.device
    generator = torch.Generator(device=device).manual_seed(experiment.seed)
    sync_target = PolyakUpdate(nets.target, nets.online)
    usage = OptionUsage(cfg.num_options, venv.obs_shape)
    # The option each copy has in force (-1: none, choose at its next step).
    holder = {"options": torch.full((venv.num_envs,), -1, dtype=torch.int64)}
    counters = Progress()
    state = TrainState()
    state.module("model", nets)
    state.optimizer("optimizer", optimizer)
    state.torch_rng("rng_options", generator)
    state.fields("progress", counters, "step", "updates", "last_target_sync", "switches")
    state.add("options", lambda: ({"in_force": holder["options"].clone()}, None),
              lambda tensors, _: holder.update(options=tensors["in_force"].clone()))  # fmt: skip
    state.stateful("option_usage", usage)
    session = TrainingSession(experiment, run, agent, venv, state, resume)
    obs = session.begin()
    log_every = experiment.logging.every_steps
    next_log = (counters.step // log_every + 1) * log_every
    metrics: dict[str, list[float]] = {}
    with session.running():
        while session.stop_reason is None:
            progress = counters.step / experiment.stopping.total_steps
            epsilon = value_at(exploration.epsilon, progress)
            obs_t = torch.from_numpy(obs).to(device)
            options = holder["options"].to(device)
            with torch.no_grad():
                out = nets.online(obs_t)
                new = options < 0
                if new.any():
                    options = torch.where(new, choose_options(out.q, epsilon, generator), options)
                probs = F.softmax(of_option(out.logits, options), -1)
                actions = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
            valid_np = ~venv.needs_reset  # a copy's reset step is no transition to learn from
            valid = torch.from_numpy(valid_np).to(device)
            next_obs, rewards, terminated, truncated = venv.step(actions.cpu().numpy())
            counters.step += venv.num_envs
            usage.add(obs, options.cpu().numpy(), valid_np)
            set_lr([optimizer], value_at(cfg.learning_rate, progress))
            terms, stats, beta_next = option_critic_loss(
                nets, cfg, obs_t, options, actions, torch.from_numpy(rewards).to(device),
                torch.from_numpy(next_obs).to(device),
                torch.from_numpy(terminated.astype(np.float32)).to(device), valid.float(),
                value_at(exploration.entropy_coef, progress),
            )  # fmt: skip
            if session.penalty is not None:  # a continual run's terms (mentor/continual/keep.py)
                terms.update(session.penalty(params))
            if valid.any():
                stats["train/grad_norm"] = descend(
                    optimizer, params, terms, cfg.max_grad_norm, "option-critic"
                )
                counters.updates += 1
            if nets.target_in_use and counters.step - counters.last_target_sync >= (
                cfg.target_update_freq
            ):
                sync_target(1.0)
                counters.last_target_sync = counters.step
            # Terminations at s', drawn with beta_w(s'); an episode's end ends its option.
            ends = torch.rand(len(options), generator=generator, device=device) < of_option(
                beta_next, options
            )
            done = torch.from_numpy(terminated | truncated).to(device)
            counters.switches += int((ends & valid & ~done).sum())
            holder["options"] = torch.where(ends | done | ~valid, -1, options).cpu()
            obs = next_obs
            for key, value in {**{k: float(t.detach()) for k, t in terms.items()}, **stats,
                               "options/beta_mean": float(of_option(beta_next, options).mean())
                               }.items():  # fmt: skip
                metrics.setdefault(key, []).append(value)
            if counters.step >= next_log or counters.step >= experiment.stopping.total_steps:
                row = {k.replace("loss/", "train/loss_"): float(np.mean(v))
                       for k, v in metrics.items()}  # fmt: skip
                metrics.clear()
                shares = usage.steps / max(usage.steps.sum(), 1.0)
                row.update({f"options/share_{i}": float(s) for i, s in enumerate(shares)})
                row.update({
                    "options/switches": counters.switches,
                    "explore/epsilon": epsilon,
                    "train/learning_rate": value_at(cfg.learning_rate, progress),
                    "time/updates": counters.updates,
                    **venv.episode_metrics(),
                })  # fmt: skip
                session.log(counters.step, row)
                next_log = (counters.step // log_every + 1) * log_every
            session.after_update(counters.step)
    write_usage(run, experiment, nets, usage)
    return session.result
