"""Evolution strategies: a policy's weights searched by perturbation and selection, with no
gradient of a loss (the workflow's "gradient descent or evolutionary methods").

    openai    OpenAI-ES (Salimans et al. 2017). Each generation draws population / 2 noise
              vectors from a shared noise table (a fixed array of normal numbers made from the
              run's seed: a member is its offset into it) and plays the antithetic pairs
              theta + sigma eps and theta - sigma eps. The returns become centered ranks in
              [-0.5, 0.5] (fitness shaping: an outlier episode moves nothing), the gradient
              estimate is g = sum_i w_i eps_i / (population sigma), and Adam steps along
              -g + weight_decay theta (an L2 term on the weights).
    cma       CMA-ES (Hansen & Ostermeier 2001) through the ``cmaes`` package: candidates drawn
              from N(m, sigma^2 C); the mean, the step size and the covariance adapt to the
              ranked returns. Its D x D covariance limits it to small policies
              (``MAX_CMA_PARAMETERS``: a linear policy or one small hidden layer).
    play      all members of a generation on the env copies at once: each copy plays a member's
              episode and takes the next member when it ends, so short episodes do not wait for
              long ones; one batched pass a step, each row through its own member's weights. A
              member's fitness is its mean return over ``episodes_per_member`` episodes. The
              copies restart at each generation with a seed of that generation (exact resume
              between generations without the envs' state). With ``distributed.workers``, the
              members are split among the Ray workers, each playing its part on its copies.
    network   ``ESPolicy``: a deterministic MLP (agent.network: hidden_sizes, activation), the
              argmax of its outputs for Discrete actions, tanh-squashed to the bounds for Box;
              observation normalization (env.normalize_obs) from the observations played.
    steps     env steps of the members' episodes (a copy's idle steps at a generation's end are
              not counted).

The agent is the population's mean (or CMA's mean): validation, evaluation and the saved policy
play it deterministically.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from mentor.agent import Agent
from mentor.core.activations import ACTIVATIONS
from mentor.core.normalize import ObsNormalizer
from mentor.core.vec_env import VecEnv
from mentor.envs.spaces import is_image, obs_encoder, unit_to_bounds
from mentor.errors import ConfigError
from mentor.experiment import ESConfig, Experiment
from mentor.runs.checkpoint import ResumePoint
from mentor.runs.folder import RunFolder
from mentor.runs.session import Result, TrainingSession, training_setup
from mentor.runs.state import TrainState

__all__ = ["ESPolicy", "build_networks", "train"]

MAX_CMA_PARAMETERS = 1000  # CMA-ES's covariance: D x D numbers, an O(D^3) decomposition


class ESPolicy(nn.Module):
    """A deterministic MLP whose weights can also be a population's, one member per row."""

    unit_box_actions = True  # Box: tanh in [-1, 1], rescaled to the bounds in ``predict``

    def __init__(
        self,
        obs_space: spaces.Space,
        action_space: spaces.Space,
        hidden_sizes: list[int],
        activation: str,
        normalize_obs: bool,
        clip_obs: float,
    ) -> None:
        super().__init__()
        _, obs_shape = obs_encoder(obs_space)
        self.normalizer = ObsNormalizer(obs_shape, normalize_obs, clip_obs)
        self.discrete = isinstance(action_space, spaces.Discrete)
        outputs = int(action_space.n) if self.discrete else int(np.prod(action_space.shape))
        sizes = [obs_shape[0], *hidden_sizes, outputs]
        self.layers = nn.ModuleList()
        for index, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
            layer = nn.Linear(fan_in, fan_out)
            last = index == len(sizes) - 2
            nn.init.orthogonal_(layer.weight, 0.01 if last else 1.0)  # small first actions
            nn.init.zeros_(layer.bias)
            self.layers.append(layer)
        self.activation = ACTIVATIONS[activation]()
        if not self.discrete:
            self.register_buffer("low", torch.as_tensor(action_space.low, dtype=torch.float32))
            self.register_buffer("high", torch.as_tensor(action_space.high, dtype=torch.float32))
            self.action_shape = action_space.shape

    # --- the weights as one vector ----------------------------------------------------------

    def flat(self) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self.parameters()])

    def set_flat(self, vector: torch.Tensor) -> None:
        with torch.no_grad():
            dtype = next(self.parameters()).dtype
            torch.nn.utils.vector_to_parameters(vector.to(dtype), self.parameters())

    def set_grad(self, vector: torch.Tensor) -> None:
        start = 0
        for param in self.parameters():
            param.grad = vector[start : start + param.numel()].view_as(param).clone()
            start += param.numel()

    def layers_of(self, thetas: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """A population's weights (members x D) as each layer's (members, out, in) weights and
        (members, out) biases, in the order of ``parameters``."""
        layers, start = [], 0
        for layer in self.layers:  # parameters() order: each layer's weight, then its bias
            weight, bias = layer.weight, layer.bias
            w = thetas[:, start : start + weight.numel()].view(-1, *weight.shape)
            start += weight.numel()
            b = thetas[:, start : start + bias.numel()]
            start += bias.numel()
            layers.append((w, b))
        return layers

    # --- acting ---------------------------------------------------------------------------

    def _outputs(self, x: torch.Tensor, layers: list[tuple[torch.Tensor, torch.Tensor]]) -> Any:
        """Rows of observations through per-row weights (``layers`` indexed by row)."""
        for index, (w, b) in enumerate(layers):
            x = torch.baddbmm(b.unsqueeze(-1), w, x.unsqueeze(-1)).squeeze(-1)
            if index < len(layers) - 1:
                x = self.activation(x)
        return x

    def _actions(self, outputs: torch.Tensor) -> torch.Tensor:
        if self.discrete:
            return outputs.argmax(-1)
        actions = unit_to_bounds(torch.tanh(outputs), self.low, self.high)
        return actions.view(-1, *self.action_shape)

    def act_rows(
        self, obs: torch.Tensor, layers: list[tuple[torch.Tensor, torch.Tensor]], rows: torch.Tensor
    ) -> torch.Tensor:
        """Actions for each observation, row r by member ``rows[r]`` of ``layers``."""
        own = [(w[rows], b[rows]) for w, b in layers]
        return self._actions(self._outputs(self.normalizer(obs), own))

    def policy_params(self, obs: torch.Tensor) -> torch.Tensor:
        x = self.normalizer(obs)
        for index, layer in enumerate(self.layers):
            x = layer(x)
            if index < len(self.layers) - 1:
                x = self.activation(x)
        return x

    def predict(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        """The mean's actions in the env's units; deterministic either way (ES's exploration
        is in the weights)."""
        return self._actions(self.policy_params(obs))

    def actor_parameters(self) -> list[nn.Parameter]:
        return list(self.parameters())


def build_networks(
    experiment: Experiment, obs_space: spaces.Space, action_space: spaces.Space
) -> ESPolicy:
    if is_image(obs_space):
        raise ConfigError("method es searches the weights of an MLP: image observations need a "
                          "CNN too large for it; use ppo or dqn")  # fmt: skip
    if isinstance(action_space, spaces.Box) and not (
        np.isfinite(action_space.low).all() and np.isfinite(action_space.high).all()
    ):
        raise ConfigError("method es squashes Box actions into their bounds: this action space "
                          f"has infinite bounds ({action_space})")  # fmt: skip
    network, env = experiment.agent.network, experiment.env
    if network.kind == "cnn" or network.memory is not None or network.convolutions:
        raise ConfigError("method es searches the weights of an MLP: agent.network.kind 'cnn', "
                          "convolutions and memory are not for it")  # fmt: skip
    policy = ESPolicy(obs_space, action_space, network.hidden_sizes, network.activation,
                      env.normalize_obs, env.clip_obs)  # fmt: skip
    cfg: ESConfig = experiment.method
    size = sum(p.numel() for p in policy.parameters())
    if cfg.algorithm == "cma" and size > MAX_CMA_PARAMETERS:
        raise ConfigError(
            f"method.algorithm cma keeps a D x D covariance, and this policy has D = {size:,} "
            f"weights (at most {MAX_CMA_PARAMETERS:,}): give agent.network.hidden_sizes fewer "
            "units ([] is a linear policy), or use algorithm openai"
        )
    if cfg.algorithm == "openai" and cfg.noise_table_size < size:
        raise ConfigError(f"method.noise_table_size {cfg.noise_table_size:,} is smaller than the "
                          f"policy's {size:,} weights; give at least that")  # fmt: skip
    return policy


# --- playing a generation ---------------------------------------------------------------------


@dataclass
class Played:
    """A generation's outcome: each member's mean return, the env steps of its episodes, the
    observations seen (for normalization statistics)."""

    fitness: np.ndarray
    steps: int
    episodes: int
    observations: torch.Tensor


def play(
    policy: ESPolicy,
    venv: VecEnv,
    thetas: torch.Tensor,
    episodes_per_member: int,
    seed: int,
    device: torch.device,
) -> Played:
    """Every member's episodes on the env copies at once (module docstring)."""
    members = len(thetas)
    queue = [m for m in range(members) for _ in range(episodes_per_member)]
    layers = policy.layers_of(thetas.to(device))
    playing = np.full(venv.num_envs, -1)  # each copy's member, -1: idle
    for copy, member in enumerate(queue[: venv.num_envs]):
        playing[copy] = member
    given = min(len(queue), venv.num_envs)
    returns = np.zeros(members)
    done = steps = 0
    seen: list[torch.Tensor] = []
    obs = venv.reset(seed=seed)
    venv.pop_episodes()
    with torch.inference_mode():
        while done < len(queue):
            active = playing >= 0
            obs_t = torch.from_numpy(obs).to(device)
            counted = active & ~venv.needs_reset  # a copy's reset step is no step of an episode
            steps += int(counted.sum())
            if policy.normalizer.enabled:
                seen.append(obs_t[torch.from_numpy(counted).to(device)].cpu())
            rows = torch.from_numpy(np.maximum(playing, 0)).to(device)
            actions = policy.act_rows(obs_t, layers, rows).cpu().numpy()
            obs, _, terminated, truncated = venv.step(actions)
            if (terminated | truncated).any():
                for episode in venv.pop_episodes():
                    member = playing[episode.env_index]
                    if member < 0:
                        continue  # an idle copy's episode
                    returns[member] += episode.ret
                    done += 1
                    playing[episode.env_index] = queue[given] if given < len(queue) else -1
                    given += 1
    observed = torch.cat(seen) if seen else torch.empty(0)
    return Played(returns / episodes_per_member, steps, len(queue), observed)


def play_on_worker(
    venv: VecEnv, policy: ESPolicy, state: dict[str, torch.Tensor], thetas: torch.Tensor,
    episodes_per_member: int, seed: int,
) -> Played:  # fmt: skip
    """``play`` in a Ray worker, its networks brought up to the learner's (the normalization
    statistics the members act with); nothing when the population left it no member."""
    if len(thetas) == 0:
        return Played(np.zeros(0), 0, 0, torch.empty(0))
    policy.load_state_dict(state)
    return play(policy, venv, thetas, episodes_per_member, seed, torch.device("cpu"))


def play_on_workers(
    venv: Any, policy: ESPolicy, thetas: torch.Tensor, episodes_per_member: int, seed: int
) -> Played:
    """The members split among the Ray workers (``distributed.workers``) in contiguous parts,
    each played on its worker's copies; the members' weights travel (population x weights x 4
    bytes a generation)."""
    state = {k: v.cpu() for k, v in policy.state_dict().items()}
    parts = torch.tensor_split(thetas, len(venv.actors))
    args = [(state, part, episodes_per_member, seed + 7919 * w) for w, part in enumerate(parts)]
    played = venv.run(play_on_worker, args)
    return Played(
        np.concatenate([p.fitness for p in played]), sum(p.steps for p in played),
        sum(p.episodes for p in played), torch.cat([p.observations for p in played]),
    )  # fmt: skip


def centered_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks scaled to [-0.5, 0.5] (ties broken by order): fitness shaping."""
    ranks = np.empty(len(values))
    ranks[np.argsort(values, kind="stable")] = np.arange(len(values))
    return ranks / (len(values) - 1) - 0.5


class NoiseTable:
    """A fixed array of standard normal numbers made from a seed: a perturbation is a slice of
    it, named by its offset (what workers would send instead of vectors)."""

    def __init__(self, size: int, seed: int) -> None:
        rng = np.random.default_rng([seed, 0x5EED])
        self.noise = torch.from_numpy(rng.standard_normal(size, dtype=np.float32))

    def draw(self, count: int, dim: int, generator: torch.Generator) -> torch.Tensor:
        offsets = torch.randint(0, len(self.noise) - dim + 1, (count,), generator=generator)
        return torch.stack([self.noise[o : o + dim] for o in offsets.tolist()])


# --- the two searches -------------------------------------------------------------------------


class OpenAIES:
    """Antithetic pairs from the noise table, centered ranks, Adam with weight decay."""

    def __init__(self, policy: ESPolicy, cfg: ESConfig, seed: int, state: TrainState) -> None:
        self.policy, self.cfg = policy, cfg
        self.table = NoiseTable(cfg.noise_table_size, seed)
        self.generator = torch.Generator().manual_seed(seed)
        self.optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.learning_rate)
        state.optimizer("optimizer", self.optimizer)
        state.torch_rng("rng_noise", self.generator)

    def ask(self) -> torch.Tensor:
        theta = self.policy.flat()
        self.eps = self.table.draw(self.cfg.population // 2, len(theta), self.generator)
        sigma = self.cfg.noise_std
        return torch.cat([theta + sigma * self.eps, theta - sigma * self.eps])

    def tell(self, fitness: np.ndarray) -> dict[str, float]:
        weights = torch.from_numpy(centered_ranks(fitness)).float()
        half = len(weights) // 2
        g = (weights[:half] - weights[half:]) @ self.eps / (len(weights) * self.cfg.noise_std)
        theta = self.policy.flat()
        self.policy.set_grad(-g + self.cfg.weight_decay * theta)
        self.optimizer.step()
        return {"es/gradient_norm": float(g.norm()), "es/weights_norm": float(theta.norm())}


class CMAES:
    """CMA-ES from the ``cmaes`` package, its state in the checkpoint as arrays and numbers."""

    def __init__(self, policy: ESPolicy, cfg: ESConfig, seed: int, state: TrainState) -> None:
        from cmaes import CMA

        self.policy, self.seed = policy, seed
        mean = policy.flat().double().numpy()
        self.cma = CMA(mean=mean, sigma=cfg.noise_std, population_size=cfg.population, seed=seed)
        state.add("cma", self.save, self.load)

    def ask(self) -> torch.Tensor:
        self.cma.reseed_rng(self.seed * 1_000_003 + self.cma.generation)  # resume: no RNG state
        self.xs = [self.cma.ask() for _ in range(self.cma.population_size)]
        return torch.from_numpy(np.stack(self.xs)).float()

    def tell(self, fitness: np.ndarray) -> dict[str, float]:
        self.cma.tell([(x, -float(f)) for x, f in zip(self.xs, fitness, strict=True)])
        self.policy.set_flat(torch.from_numpy(self.cma.mean))
        return {
            "es/sigma": float(self.cma._sigma),
            "es/weights_norm": float(self.policy.flat().norm()),
        }

    def save(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors, values = {}, {}
        for key, value in self.cma.__getstate__().items():
            if isinstance(value, np.ndarray):
                tensors[key] = torch.from_numpy(np.ascontiguousarray(value))
            elif isinstance(value, bool | int | float | str | None | np.floating | np.integer):
                values[key] = value.item() if isinstance(value, np.generic) else value
            else:
                raise TypeError(f"CMA-ES state '{key}' is a {type(value).__name__}")
        return tensors, values

    def load(self, tensors: dict[str, torch.Tensor] | None, values: dict[str, Any]) -> None:
        state = {**values, **{k: v.numpy() for k, v in (tensors or {}).items()}}
        self.cma.__setstate__(state)


@dataclass
class Generations:
    """The counters a checkpoint keeps."""

    generations: int = 0
    steps: int = 0


# --- the loop ---------------------------------------------------------------------------------


def train(experiment: Experiment, run: RunFolder, resume: ResumePoint | None = None) -> Result:
    """Evolution strategies as the experiment says, in the given run folder (or on from
    ``resume``)."""
    with training_setup(experiment, resume) as (venv, agent):
        return _train(experiment, run, venv, agent, resume)


def _train(
    experiment: Experiment, run: RunFolder, venv: VecEnv, agent: Agent, resume: ResumePoint | None
) -> Result:
    cfg: ESConfig = experiment.method
    policy: ESPolicy = agent.policy
    state = TrainState()
    state.module("model", policy)
    search = (OpenAIES if cfg.algorithm == "openai" else CMAES)(policy, cfg, experiment.seed, state)
    counters = Generations()
    state.fields("generations", counters, "generations", "steps")
    session = TrainingSession(experiment, run, agent, venv, state, resume)
    session.begin()
    with session.running():
        while session.stop_reason is None:
            thetas = search.ask()
            seed = experiment.seed * 1_000_003 + counters.generations + 1
            if experiment.distributed.workers is None:
                played = play(policy, venv, thetas, cfg.episodes_per_member, seed, agent.device)
            else:
                played = play_on_workers(venv, policy, thetas, cfg.episodes_per_member, seed)
            metrics = search.tell(played.fitness)
            if policy.normalizer.enabled and len(played.observations):
                policy.normalizer.update(played.observations.to(agent.device))
            counters.generations += 1
            counters.steps += played.steps
            metrics.update({
                "rollout/ep_return_mean": float(played.fitness.mean()),
                "es/fitness_max": float(played.fitness.max()),
                "es/fitness_min": float(played.fitness.min()),
                "time/generations": counters.generations,
                "time/episodes": played.episodes,
            })  # fmt: skip
            session.log(counters.steps, metrics)
            session.after_update(counters.steps)
    return session.result
