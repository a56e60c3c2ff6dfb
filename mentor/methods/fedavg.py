"""Federated averaging (McMahan et al. 2017, arXiv:1602.05629) of PPO clients.

K clients each train on a private variant of the env (``method.clients``: their own parameter
values, kwargs or env id; different pole lengths, different market data) and share weights,
never experience. Each round:

    broadcast   the server's weights (the run's agent) go to every client
    local       each client loads them and trains by PPO (``ppo.learn_turn``: rollouts on its
                own env copies, each followed by an update) for its ``steps`` env steps
    send        each client sends n_k x (its weights - the server's), n_k being the weight of
                its vote: its steps (or 1 under differential privacy, below)
    average     the server adds the K contributions and divides by the sum of the n_k; its
                weights move by that average (server step size 1, as in FedAvg)

A client keeps its own optimizer (Adam's moments), reward scaler and env state from round to
round; its weights are the server's at the start of each round. The run's agent is the server's
model: validation, the final evaluation, checkpoints and ``mentor eval`` use it.

**Secure aggregation** (``secure_aggregation: true``; the arithmetic of Bonawitz et al. 2017):
each contribution is written in fixed point (2^-24 steps) as 64-bit integers, and every pair of
clients (i < j) draws one mask from a seed they share: i adds it, j subtracts it, modulo 2^64.
A masked contribution is uniformly random on its own; in the sum every mask meets its negative
and cancels exactly, so the server learns the sum and nothing else. Here the pair seeds come
from the run's seed, which stands in for the key agreement (Diffie-Hellman) of the real protocol
and its recovery of clients that drop out: this shows what the server computes, it is no
cryptographic guarantee. The per-client matrix then has the server's row only (below).

**Differential privacy** (``dp_clip: C``, ``dp_noise: z``; DP-FedAvg, McMahan et al. 2018):
each client's update is clipped to L2 norm C, each counts once (n_k = 1), and the server adds
Gaussian noise of standard deviation z x C to the sum before it averages: a Gaussian mechanism
of noise multiplier z on each round, at the level of clients (one client's whole data is the
unit protected), every client taking part in every round. Its privacy loss is reported as
(epsilon, delta = ``dp_delta``) after the rounds done, from the Renyi accountant (Mironov 2017):
T rounds at order a cost T a / (2 z^2), which is (T a / (2 z^2) + log(1/delta) / (a - 1), delta)
-DP, minimized over a > 1 in closed form (``dp_epsilon``). The guarantee covers the weights;
the scalar summaries a client sends for the logs (its episodes' mean return, its losses) are
outside it, as are the matrix's returns.

**Where clients run**: in this process, one after another (``distributed.workers`` unset), or
each as a Ray actor of its own (``distributed.workers`` set; every client's round at once). Both
give the same contributions for the same seed, but a Ray run samples its actions with each
actor's own generator, so it is reproducible, not bitwise the local run.

**The per-client matrix** (``federation.json``, the report's Federated section): at the end
each client plays ``matrix_episodes`` episodes of its own variant with the server's weights and,
without secure aggregation, with each client's last local weights: model i on variant j, every
client scoring only on its own env and sending back a mean return.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from mentor.core.device import set_threads
from mentor.core.learner import Learner
from mentor.core.optim import set_lr
from mentor.core.schedules import value_at
from mentor.core.vec_env import VecEnv
from mentor.envs.tasks import apply_params
from mentor.errors import ConfigError
from mentor.evaluation.evaluate import run_episodes
from mentor.experiment import Experiment, FedAvgConfig
from mentor.methods import ppo
from mentor.methods.ppo import build_networks
from mentor.runs.checkpoint import ResumePoint
from mentor.runs.folder import RunFolder, write_json
from mentor.runs.session import Result, TrainingSession, training_setup
from mentor.runs.state import TrainState

__all__ = ["build_networks", "train"]

FIXED_POINT = 2.0**24  # secure aggregation's resolution: contributions in steps of 2^-24


# --- aggregation: what the server computes --------------------------------------------------


def encode(values: np.ndarray) -> np.ndarray:
    """Fixed point as integers modulo 2^64 (numpy's uint64 arithmetic wraps around)."""
    return np.round(values * FIXED_POINT).astype(np.int64).view(np.uint64)


def decode(total: np.ndarray) -> np.ndarray:
    return total.view(np.int64).astype(np.float64) / FIXED_POINT


def pair_mask(seed: int, round_index: int, i: int, j: int, size: int) -> np.ndarray:
    """The mask clients i and j share in a round: uniform over the 64-bit integers."""
    rng = np.random.default_rng([seed, round_index, min(i, j), max(i, j)])
    return rng.integers(0, 2**64, size, dtype=np.uint64, endpoint=False)


def mask(encoded: np.ndarray, index: int, clients: int, seed: int, round_index: int) -> np.ndarray:
    """Client ``index``'s contribution as the server sees it: plus each mask shared with a
    client after it, minus each shared with one before it (all modulo 2^64)."""
    out = encoded.copy()
    for other in range(clients):
        if other != index:
            shared = pair_mask(seed, round_index, index, other, encoded.size)
            out = out + shared if index < other else out - shared
    return out


def clip(delta: np.ndarray, bound: float) -> np.ndarray:
    """``delta`` scaled down to L2 norm ``bound`` when longer."""
    norm = float(np.linalg.norm(delta))
    return delta * min(1.0, bound / norm) if norm > 0 else delta


def aggregate(
    contributions: list[np.ndarray], weights: list[float], secure: bool,
    noise: np.ndarray | None = None,
) -> np.ndarray:  # fmt: skip
    """The server's step: the sum of the contributions (modulo 2^64 when masked), plus the
    privacy noise, divided by the sum of the weights."""
    if secure:
        total = np.zeros_like(contributions[0])
        for part in contributions:
            total = total + part  # uint64: wraps, and the masks cancel
        summed = decode(total)
    else:
        summed = np.sum(contributions, axis=0)
    if noise is not None:
        summed = summed + noise
    return summed / float(sum(weights))


def dp_epsilon(rounds: int, noise_multiplier: float, delta: float) -> float:
    """(epsilon, delta)-DP of ``rounds`` Gaussian mechanisms of noise multiplier z, every client
    in every round (module docstring): T/(2z^2) + 2 sqrt(T log(1/delta) / (2z^2))."""
    if rounds == 0:
        return 0.0
    if noise_multiplier <= 0:
        return math.inf
    rho = rounds / (2.0 * noise_multiplier**2)
    return rho + 2.0 * math.sqrt(rho * math.log(1.0 / delta))


# --- a client ---------------------------------------------------------------------------------


@dataclass
class Update:
    """What a client sends the server: its contribution (n_k x its weight change, masked under
    secure aggregation), the weight n_k of its vote, its env steps, and scalar metrics (its
    episodes' mean return, its losses). ``local`` is its new weights, kept for the per-client
    matrix when the server may see them (no secure aggregation)."""

    contribution: np.ndarray
    weight: float
    steps: int
    metrics: dict[str, float] = field(default_factory=dict)
    local: np.ndarray | None = None


class Client:
    """One client's env copies (its variant), networks, optimizer and reward scaler. Made in
    this process or inside a Ray actor, from the experiment and its index alone."""

    def __init__(self, experiment: Experiment, index: int, remote: bool = False) -> None:
        if remote:
            set_threads(experiment.num_threads)
            torch.manual_seed(experiment.seed + 7919 * (index + 1))
        cfg: FedAvgConfig = experiment.method
        own = cfg.clients[index]
        env = experiment.env
        self.index, self.remote, self.cfg = index, remote, cfg
        self.env_id = own.env or env.id
        self.params = dict(own.params)
        self.kwargs = {**(env.kwargs if own.env is None else {}), **own.kwargs}
        self.max_episode_steps = env.max_episode_steps
        self.venv = VecEnv.make(
            self.env_id, self.kwargs, env.num_envs, vectorization="sync",
            max_episode_steps=env.max_episode_steps, info_keys=env.info_keys,
        )  # fmt: skip
        self._apply_params(self.venv)
        self.policy = build_networks(experiment, self.venv.observation_space,
                                     self.venv.action_space)  # fmt: skip
        self.device = torch.device("cpu")
        rate = value_at(cfg.learning_rate, 0.0)
        optimizer = torch.optim.Adam(self.trainable(), lr=rate, eps=cfg.adam_eps)
        self.learner = Learner.make(f"client_{index}", self.policy, optimizer, self.venv,
                                    cfg.num_steps, cfg.gamma, env.normalize_reward)  # fmt: skip
        self.generator = torch.Generator().manual_seed(experiment.seed + 1000 * (index + 1))
        rollout = env.num_envs * cfg.num_steps
        self.updates = max(1, math.ceil((own.steps or cfg.local_steps) / rollout))
        self.steps = self.updates * rollout
        self.seed = experiment.seed

    def _apply_params(self, venv: VecEnv) -> None:
        for env in getattr(venv.env, "envs", []):
            apply_params(env, self.params, self.env_id, what=f"method.clients[{self.index}]")

    def trainable(self) -> list[torch.nn.Parameter]:
        return [p for p in self.policy.parameters() if p.requires_grad]

    def spaces(self) -> tuple[spaces.Space, spaces.Space]:
        return self.venv.observation_space, self.venv.action_space

    def reset(self, seed: int) -> None:
        self.venv.reset(seed=seed)

    def train_round(
        self, weights: np.ndarray, round_index: int, rates: tuple[float, float, float],
        clients: int,
    ) -> Update:  # fmt: skip
        """Load the server's weights, train ``steps`` env steps by PPO, send the change."""
        params = self.trainable()
        vector_to_parameters(torch.as_tensor(weights, dtype=torch.float32), params)
        learning_rate, clip_coef, entropy_coef = rates
        set_lr([self.learner.optimizer], learning_rate)
        metrics: dict[str, float] = {}
        for _ in range(self.updates):
            metrics.update(ppo.learn_turn(self.learner, self.venv, self.generator, self.cfg,
                                          clip_coef, entropy_coef, self.device))  # fmt: skip
        episodes = self.venv.pop_episodes()
        own = {key.rsplit("/", 1)[1]: float(v) for key, v in metrics.items()}
        if episodes:
            own["return_mean"] = float(np.mean([e.ret for e in episodes]))
        own["episodes"] = float(len(episodes))
        local = parameters_to_vector(params).detach().double().numpy()
        delta = local - np.asarray(weights, np.float64)
        cfg = self.cfg
        weight = float(self.steps)
        if cfg.dp_clip is not None:
            delta, weight = clip(delta, cfg.dp_clip), 1.0
        contribution = weight * delta
        if cfg.secure_aggregation:
            contribution = mask(encode(contribution), self.index, clients, self.seed, round_index)
        return Update(contribution, weight, self.steps, own,
                      None if cfg.secure_aggregation else local)  # fmt: skip

    def score(self, weights: list[np.ndarray], episodes: int, seed: int) -> list[float]:
        """The mean return of each of ``weights`` on this client's variant, deterministic
        actions, on env copies made for it (training's are left where they are)."""
        venv = VecEnv.make(self.env_id, self.kwargs, min(episodes, 8), vectorization="sync",
                           max_episode_steps=self.max_episode_steps)  # fmt: skip
        self._apply_params(venv)
        params = self.trainable()
        kept = parameters_to_vector(params).detach().clone()
        out = []
        try:
            for vector in weights:
                vector_to_parameters(torch.as_tensor(vector, dtype=torch.float32), params)

                def act(obs: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
                    with torch.inference_mode():
                        obs_t = torch.from_numpy(obs)
                        return self.policy.predict(obs_t, deterministic=True).numpy()

                played = run_episodes(act, venv, episodes, seed)
                out.append(float(np.mean([e.ret for e in played])))
        finally:
            vector_to_parameters(kept, params)
            venv.close()
        return out

    # exact resume: the optimizer, reward scaler, minibatch order, env state (and, in a Ray
    # actor, its action-sampling generator); the weights are the server's each round
    def save(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors, values = self.state().save()
        flat = {f"{piece}/{key}": t for piece, part in tensors.items() for key, t in part.items()}
        return flat, values

    def load(self, tensors: dict[str, torch.Tensor], values: dict[str, Any]) -> None:
        parts: dict[str, dict[str, torch.Tensor]] = {}
        for key, tensor in tensors.items():
            piece, _, name = key.partition("/")
            parts.setdefault(piece, {})[name] = tensor
        self.state().load(parts, values, f"client {self.index}")

    def state(self) -> TrainState:
        state = TrainState()
        state.optimizer("optimizer", self.learner.optimizer)
        state.stateful("reward_scaler", self.learner.scaler)
        state.torch_rng("rng_minibatches", self.generator)
        state.add("env", self.venv.snapshot, self._restore_env)
        if self.remote:  # in this process, the session keeps the global generator
            state.add("rng_actions", lambda: ({"state": torch.get_rng_state()}, None),
                      lambda t, _: torch.set_rng_state(t["state"]))  # fmt: skip
        return state

    def _restore_env(self, tensors: dict[str, torch.Tensor] | None, values: Any) -> None:
        self.venv.restore(tensors, values, self.seed + 10_000 * (self.index + 1))
        self._apply_params(self.venv)

    def close(self) -> None:
        self.venv.close()


# --- the clients, here or on Ray ------------------------------------------------------------


class Clients:
    """The K clients, called alike wherever they run: ``call(name, args)`` runs the method on
    every client (one argument tuple each) and gives the results in client order; on Ray, all
    at once. ``one(k, name, *args)`` calls client k alone."""

    def __init__(self, experiment: Experiment) -> None:
        count = len(experiment.method.clients)
        self.ray = None
        if experiment.distributed.workers is None:
            self.members: list[Any] = [Client(experiment, k) for k in range(count)]
            return
        from mentor.distributed.rollouts import connect, ray_module

        self.ray = ray_module()
        connect(experiment.distributed.workers, experiment.distributed.address)
        actor = self.ray.remote(num_cpus=0)(Client)  # processes of their own; the OS shares cores
        self.members = [actor.remote(experiment, k, True) for k in range(count)]

    def call(self, name: str, args: list[tuple]) -> list[Any]:
        if self.ray is None:
            return [getattr(m, name)(*own) for m, own in zip(self.members, args, strict=True)]
        calls = [getattr(m, name).remote(*own) for m, own in zip(self.members, args, strict=True)]
        return self.ray.get(calls)

    def one(self, index: int, name: str, *args: Any) -> Any:
        member = self.members[index]
        if self.ray is None:
            return getattr(member, name)(*args)
        return self.ray.get(getattr(member, name).remote(*args))

    def close(self) -> None:
        if self.ray is None:
            for member in self.members:
                member.close()
            return
        for member in self.members:
            self.ray.kill(member)


class Federation:
    """The clients as the training session sees its envs: reset with the run's seed (client k
    with seed + 10,000 x (k + 1)); each client's env state is in its own piece of the training
    state (``client_<k>``), so this one's snapshot is empty."""

    def __init__(self, clients: Clients, venv: VecEnv) -> None:
        self.clients = clients
        self.env_id, self.num_envs, self.num_copies = venv.env_id, venv.num_envs, venv.num_copies
        self.observation_space, self.action_space = venv.observation_space, venv.action_space
        self.obs_shape, self.agents_spec, self.info_keys = venv.obs_shape, None, venv.info_keys
        self.mask_source = self.action_mask = self.waiting = None
        self.restarts: list[str] = []
        self.last_obs = np.zeros((0,), np.float32)  # the loop reads no observation of its own

    def reset(self, seed: int | None = None) -> np.ndarray:
        base = 0 if seed is None else seed
        count = len(self.clients.members)
        self.clients.call("reset", [(base + 10_000 * (k + 1),) for k in range(count)])
        return self.last_obs

    def snapshot(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        return {}, {"available": True, "where": "each client's piece (client_<k>)"}

    def restore(
        self, tensors: dict[str, torch.Tensor] | None, values: dict[str, Any], seed: int
    ) -> str:
        return "restored exactly"  # each client's envs, from its own piece


# --- the loop ---------------------------------------------------------------------------------


@dataclass
class Rounds:
    """The counters a checkpoint keeps."""

    step: int = 0
    rounds: int = 0


def train(experiment: Experiment, run: RunFolder, resume: ResumePoint | None = None) -> Result:
    """FedAvg as the experiment says, in the given run folder (or on from ``resume``)."""
    with training_setup(experiment, resume, local=True) as (venv, agent):
        clients = Clients(experiment)
        try:
            return _train(experiment, run, venv, agent, clients, resume)
        finally:
            clients.close()


def check_spaces(experiment: Experiment, clients: Clients, venv: VecEnv) -> None:
    """Every client's spaces are the run's: one model serves them all."""
    own = (venv.observation_space, venv.action_space)
    for k, theirs in enumerate(clients.call("spaces", [()] * len(clients.members))):
        if tuple(theirs) != own:
            client = experiment.method.clients[k]
            raise ConfigError(
                f"method.clients[{k}] (env '{client.env or experiment.env.id}') has "
                f"observations {theirs[0]} and actions {theirs[1]}; the run's env has {own[0]} "
                f"and {own[1]}: federated clients share one model, so their spaces must match"
            )


def _train(
    experiment: Experiment, run: RunFolder, venv: VecEnv, agent: Any, clients: Clients,
    resume: ResumePoint | None,
) -> Result:  # fmt: skip
    cfg: FedAvgConfig = experiment.method
    check_spaces(experiment, clients, venv)
    policy = agent.policy
    params = [p for p in policy.parameters() if p.requires_grad]
    count = len(cfg.clients)
    noise_rng = np.random.default_rng([experiment.seed, 0xFEDA])
    counters = Rounds()
    state = TrainState()
    state.module("model", policy)
    for k in range(count):
        state.add(f"client_{k}", lambda k=k: clients.one(k, "save"),
                  lambda t, v, k=k: clients.one(k, "load", t or {}, v))  # fmt: skip
    state.numpy_rng("rng_noise", noise_rng)
    state.fields("progress", counters, "step", "rounds")
    federation = Federation(clients, venv)
    session = TrainingSession(experiment, run, agent, federation, state, resume)
    session.begin()
    locals_: list[np.ndarray | None] = [None] * count
    with session.running():
        while session.stop_reason is None:
            tic = time.perf_counter()
            progress = counters.step / experiment.stopping.total_steps
            rates = (value_at(cfg.learning_rate, progress), value_at(cfg.clip_coef, progress),
                     value_at(experiment.exploration.entropy_coef, progress))  # fmt: skip
            weights = parameters_to_vector(params).detach().double().numpy()
            updates: list[Update] = clients.call(
                "train_round", [(weights, counters.rounds, rates, count)] * count
            )
            noise = None
            if cfg.dp_clip is not None and cfg.dp_noise > 0:
                noise = noise_rng.normal(0.0, cfg.dp_noise * cfg.dp_clip, weights.size)
            step = aggregate([u.contribution for u in updates], [u.weight for u in updates],
                             cfg.secure_aggregation, noise)  # fmt: skip
            vector_to_parameters(torch.as_tensor(weights + step, dtype=torch.float32), params)
            locals_ = [u.local for u in updates]
            counters.rounds += 1
            counters.step += sum(u.steps for u in updates)
            metrics = round_metrics(updates, step)
            metrics.update({
                "train/learning_rate": rates[0],
                "time/rounds": counters.rounds,
                "time/sps": sum(u.steps for u in updates) / (time.perf_counter() - tic),
            })  # fmt: skip
            if cfg.dp_clip is not None:
                metrics["dp/epsilon"] = dp_epsilon(counters.rounds, cfg.dp_noise, cfg.dp_delta)
            session.log(counters.step, metrics)
            session.after_update(counters.step)
        if cfg.matrix_episodes > 0 and counters.rounds > 0:
            weights = parameters_to_vector(params).detach().double().numpy()
            write_json(run.path / "federation.json",
                       matrix(experiment, clients, weights, locals_, counters))  # fmt: skip
    return session.result


def round_metrics(updates: list[Update], step: np.ndarray) -> dict[str, float]:
    """Each client's mean return and losses (``fed/client_<k>/...``), their mean over the
    clients (``rollout/ep_return_mean``), and the size of the server's step."""
    out: dict[str, float] = {"fed/step_norm": float(np.linalg.norm(step))}
    returns = []
    for k, update in enumerate(updates):
        for key, value in update.metrics.items():
            out[f"fed/client_{k}/{key}"] = value
        if "return_mean" in update.metrics:
            returns.append(update.metrics["return_mean"])
    if returns:
        out["rollout/ep_return_mean"] = float(np.mean(returns))
    return out


def matrix(
    experiment: Experiment, clients: Clients, weights: np.ndarray,
    locals_: list[np.ndarray | None], counters: Rounds,
) -> dict[str, Any]:  # fmt: skip
    """Model i (the server's, then each client's last local weights when the server saw them)
    scored on variant j by client j (module docstring)."""
    cfg: FedAvgConfig = experiment.method
    models = {"server": weights}
    if all(local is not None for local in locals_):
        models.update({f"client_{k}": local for k, local in enumerate(locals_)})
    count = len(cfg.clients)
    seed = experiment.seed + 54_321
    scores = clients.call("score", [(list(models.values()), cfg.matrix_episodes, seed)] * count)
    rows = {name: [scores[j][i] for j in range(count)] for i, name in enumerate(models)}
    out: dict[str, Any] = {
        "clients": [c.model_dump() for c in cfg.clients],
        "rounds": counters.rounds,
        "steps": counters.step,
        "episodes": cfg.matrix_episodes,
        "returns": rows,
        "secure_aggregation": cfg.secure_aggregation,
    }
    if cfg.dp_clip is not None:
        epsilon = dp_epsilon(counters.rounds, cfg.dp_noise, cfg.dp_delta)
        out["dp"] = {"clip": cfg.dp_clip, "noise_multiplier": cfg.dp_noise, "delta": cfg.dp_delta,
                     "epsilon": epsilon if math.isfinite(epsilon) else None}  # fmt: skip
    return out
