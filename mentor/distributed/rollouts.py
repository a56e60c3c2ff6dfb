"""Experience collection on Ray: rollout workers that step their own envs with the policy.

``RayVecEnv`` has ``VecEnv``'s interface for the training session (reset, last observations,
episode records, snapshots for exact resume) and two more methods: ``collect``, which on-policy
loops call instead of ``core.rollout.collect``, and ``transitions``, which the off-policy loop
calls instead of stepping. Synchronous on-policy collection, one rollout at a time:

    broadcast   the learner sends the policy's weights with each worker's call (inline up to
                64 KiB, else once through Ray's object store)
    collect     each of the N workers (a Ray actor holding a ``VecEnv`` of E = num_envs / N
                copies and a copy of the networks) runs ``core.rollout.collect`` on its own
                copies for num_steps steps: actions sampled, the rollout scored (log-probs,
                values, the value after it) in the worker
    gather      the learner writes each worker's (T, E) block into its own (T, N x E) storage,
                worker w's copies as columns w x E ... (w + 1) x E - 1, then scales the rewards
                step by step (``env.normalize_reward``) as the local loop does while stepping

Copy j of worker w is seeded as copy w x E + j of a local run is (its envs reset with seed
+ w x E), and each worker samples its actions with a torch generator of its own (seed + 1000 x
(w + 1)): with a fixed seed and number of workers a run is bitwise reproducible on a CPU; it is
not the local run's bitwise (other sampling streams), and learns like it in expectation.

Asynchronous (``distributed.mode: async``): every worker always has a rollout under way; the
learner takes the first N to arrive, whichever workers they come from, and restarts each
worker with the newest weights as soon as its rollout is in (``_collect_async``; PPO corrects
for the lag with V-trace). Off-policy (``transitions``): each worker acts with the method's
explorer for ``distributed.actor_steps`` vector steps and returns replay rows; the next block is
started before this one is returned, so workers act while the learner learns.

A multi-agent env's rows are its agents in each copy (``core/ma_env.py``): a worker's block is
its copies' rows, with what the rows wait for (turn-based games) and a centralized critic's
input, which each worker makes for its own copies.

What travels per rollout: the weights to each worker (inline with the call when small, else one
object-store copy per node), and each worker's block of the storage back (observations, actions,
masks, log-probs, values, rewards and flags: about 4 x (obs size + 8) bytes per env step for a
vector observation).

``connect`` starts a local Ray (as many logical CPUs as workers, at least the machine's: a
worker that mostly waits on its env needs no core of its own), or joins ``address``. Before each
round of calls the learner probes the cluster's head: a cluster that went away stops the run
with ``ClusterLostError`` (the session saves the last update).
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from typing import Any

import numpy as np
import torch

from mentor.core.normalize import RewardScaler
from mentor.core.rollout import collect as collect_locally
from mentor.core.rollout import scale_rewards
from mentor.core.storage import RolloutStorage
from mentor.core.vec_env import (
    Episode,
    VecEnv,
    check_curriculum,
    multiagent_curriculum,
    rollout_metrics,
)
from mentor.distributed.tasks import DealtTasks, TaskDealer, report_from_json, report_to_json
from mentor.envs.pettingzoo import is_multiagent
from mentor.errors import (
    ClusterLostError,
    ConfigError,
    EnvError,
    EnvWorkerError,
    MissingPackageError,
)


def ray_module() -> Any:
    """Ray, or the error saying how to install it."""
    return _ray()


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingPackageError(
            "distributed.workers needs Ray, which is not installed: pip install 'mentor[ray]'"
        ) from None
    return ray


def connect(workers: int, address: str | None) -> None:
    """Start a local Ray, or join the cluster at ``address``; refuse more workers than it has
    CPUs (a cluster's)."""
    ray = _ray()
    if ray.is_initialized():
        return
    if address is None:  # a Ray of this run's own, on the loopback address only
        cpus = max(workers, os.cpu_count() or 1)
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False,
                 configure_logging=False, _node_ip_address="127.0.0.1")  # fmt: skip
        return
    problem = _unreachable(address)
    if problem is not None:
        raise ConfigError(
            f"distributed.address '{address}': no Ray cluster could be reached there "
            f"({problem}); start one with `ray start --head --port 6379` and give its "
            "host:port, or leave the address out to start a local Ray"
        )
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)  # fmt: skip
    except Exception as exc:  # ConnectionError and Ray's own: one line, naming the address
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"distributed.address '{address}': no Ray cluster could be reached there ({first}); "
            "start one with `ray start --head --port 6379` and give its host:port, or leave "
            "the address out to start a local Ray"
        ) from None
    cpus = int(ray.cluster_resources().get("CPU", 0))
    if workers > cpus:
        ray.shutdown()
        raise ConfigError(
            f"distributed.workers={workers}: the Ray cluster at '{address}' has {cpus} CPUs; "
            f"give at most {cpus} workers, or add nodes"
        )


def _unreachable(address: str, seconds: float = 3.0) -> str | None:
    """Why nothing answers at ``address`` (host:port, or ray://host:port), None if something
    does: asked before Ray is, whose own attempt retries for minutes. A loopback host is also
    tried as this node's IP, where Ray itself joins it (`ray start --head` listens there)."""
    if address == "auto":
        return None
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return "not of the form host:port"
    hosts = [host]
    if host in ("127.0.0.1", "localhost", "::1"):
        hosts.append(_ray().util.get_node_ip_address())
    problem = None
    for candidate in hosts:
        try:
            socket.create_connection((candidate, int(port)), timeout=seconds).close()
        except OSError as exc:
            problem = problem or exc.strerror or str(exc) or type(exc).__name__
        else:
            return None
    return problem


# Seconds a new worker may take to start and take its networks (a cluster that went away hangs).
STARTUP_SECONDS = 60.0

# What a worker sends back of its rollout storage.
BLOCK_FIELDS = ("obs", "actions", "log_probs", "values", "rewards", "terminated", "truncated",
                "valid", "masks", "critic_obs", "waiting")  # fmt: skip
# What an off-policy worker sends back per vector step: a replay buffer's row for its copies.
ROW_FIELDS = ("obs", "actions", "rewards", "terminated", "truncated", "valid", "masks")


class RolloutWorker:
    """One Ray actor's envs and networks (made a Ray actor class by ``RayVecEnv.make``)."""

    def __init__(
        self, index: int, env_id: str, kwargs: dict[str, Any], num_envs: int, seed: int,
        options: dict[str, Any],
    ) -> None:  # fmt: skip
        torch.set_num_threads(1)
        self.index, self.num_envs = index, num_envs
        self.policy: torch.nn.Module | None = None
        # A curriculum's tasks: the learner deals them (``distributed/tasks.py``).
        first = options.pop("tasks", None)
        self.tasks = None if first is None else DealtTasks(*first)
        self.venv = VecEnv.make(env_id, kwargs, num_envs, teacher=self.tasks, **options)
        self.generator_seed = seed + 1000 * (index + 1)
        torch.manual_seed(self.generator_seed)
        self.scaler = RewardScaler(1, 0.0, False)  # rewards are scaled by the learner
        self.explorer: Any = None  # an off-policy method's behaviour policy (set_explorer)
        self.critic_input: Any = None  # what a centralized critic reads (set_critic_input)

    def set_policy(self, policy: torch.nn.Module) -> None:
        """The networks the worker acts with; their weights come with every ``collect``."""
        self.policy = policy.to("cpu").eval()

    def set_explorer(self, factory: Any, experiment: Any, workers: int) -> None:
        """An off-policy method's explorer for this worker's copies, on its own random stream;
        and what it needs to know each step's progress and warm-up from the global step."""
        rng = np.random.default_rng(self.generator_seed)
        self.explorer = factory(experiment, self.policy, self.num_envs, rng, (self.index, workers))
        self.total_steps = experiment.stopping.total_steps
        self.learning_starts = experiment.method.learning_starts
        self.all_envs = experiment.env.num_envs

    def explore(
        self, weights: dict[str, np.ndarray], start: int, steps: int,
        lead_obs: np.ndarray | None = None, queues: list | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """``steps`` replay rows of this worker's copies, acted on by the explorer with these
        weights; the global env step at row t is start + t x env.num_envs (all workers').
        ``lead_obs``: this worker replaces a lost one, whose copies' episodes ended in these
        observations; the first row is then their reset step (not learned from), holding them,
        as a vector env's reset step holds the final observation."""
        self._load(weights)
        self._start_round(queues)
        venv, explorer = self.venv, self.explorer
        rows: dict[str, list[Any]] = {name: [] for name in ROW_FIELDS}
        lead = lead_obs is not None
        with torch.inference_mode():
            for t in range(lead, steps):
                step = start + t * self.all_envs
                obs, mask, needs_reset = venv.last_obs, venv.action_mask, venv.needs_reset
                progress, warmup = step / self.total_steps, step < self.learning_starts
                stored, actions = explorer(torch.from_numpy(obs), progress, warmup, mask,
                                           needs_reset)  # fmt: skip
                _, rewards, terminated, truncated = venv.step(actions)
                row = (obs, stored.numpy(), rewards, terminated, truncated, ~needs_reset, mask)
                for name, value in zip(ROW_FIELDS, row, strict=True):
                    rows[name].append(value)
        if lead:
            e = self.num_envs
            first = {"obs": lead_obs, "actions": np.zeros_like(rows["actions"][0]),
                     "rewards": np.zeros(e, np.float32), "terminated": np.zeros(e, bool),
                     "truncated": np.zeros(e, bool), "valid": np.zeros(e, bool),
                     "masks": None if rows["masks"][0] is None
                     else np.ones_like(rows["masks"][0])}  # fmt: skip
            for name in ROW_FIELDS:
                rows[name].insert(0, first[name])
        block = {name: None if values[0] is None else np.stack(values)
                 for name, values in rows.items()}  # fmt: skip
        return {**block, "last_obs": venv.last_obs, "episodes": self._episodes(), "cut": lead,
                "curriculum": self._round_report()}  # fmt: skip

    def _load(self, weights: dict[str, np.ndarray]) -> None:
        self.policy.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})

    def _start_round(self, queues: list | None) -> None:
        if self.tasks is not None:
            self.tasks.start_round(queues)

    def _round_report(self) -> dict[str, Any] | None:
        return None if self.tasks is None else self.tasks.report(self.index * self.num_envs)

    def _episodes(self) -> list[Episode]:
        """The episodes finished since the last call, numbered as the learner's copies."""
        offset = self.index * self.num_envs
        return [Episode(e.env_index + offset, e.ret, e.length, e.info)
                for e in self.venv.pop_episodes()]  # fmt: skip

    def set_critic_input(self, factory: Any, experiment: Any) -> None:
        """A centralized critic's input for this worker's copies (MAPPO's ``CriticInput``)."""
        self.critic_input = factory(experiment, self.venv)

    def spaces(self) -> dict[str, Any]:
        """What the learner's ``RayVecEnv`` shows of the envs (a multi-agent env's agents)."""
        venv = self.venv
        return {"observation_space": venv.observation_space, "action_space": venv.action_space,
                "obs_shape": venv.obs_shape, "mask_source": venv.mask_source,
                "agents_spec": getattr(venv, "agents_spec", None),
                "agents": getattr(venv, "agents", None),
                "turn_based": venv.waiting is not None}  # fmt: skip

    def reset(self, seed: int | None) -> tuple[np.ndarray, np.ndarray | None]:
        offset = None if seed is None else seed + self.index * self.num_envs
        obs = self.venv.reset(seed=offset)
        return obs, self.venv.action_mask

    def collect(
        self, weights: dict[str, np.ndarray], num_steps: int, obs_dtype: torch.dtype,
        action_shape: tuple[int, ...], action_dtype: torch.dtype, queues: list | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        self._load(weights)
        self._start_round(queues)
        venv, mask = self.venv, self.venv.action_mask
        critic = self.critic_input
        storage = RolloutStorage(
            num_steps, venv.num_envs, venv.obs_shape, obs_dtype, action_shape, action_dtype,
            None if critic is None else critic.space.shape,
            None if mask is None else mask.shape[1], turns=venv.waiting is not None,
        )  # fmt: skip
        obs, last_value = collect_locally(
            self.policy, venv, storage, venv.last_obs, self.scaler, torch.device("cpu"), critic
        )
        # NumPy arrays, not tensors: Ray moves them without pickling (a third of the time).
        block = {
            name: None if getattr(storage, name) is None else getattr(storage, name).numpy()
            for name in BLOCK_FIELDS
        }
        return {**block, "last_value": last_value.numpy(), "last_obs": obs,
                "action_mask": venv.action_mask, "needs_reset": venv.needs_reset.copy(),
                "episodes": self._episodes(), "curriculum": self._round_report()}  # fmt: skip

    def snapshot(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors, values = self.venv.snapshot()
        values["torch_rng"] = torch.get_rng_state().tolist()
        if self.explorer is not None:
            values["explorer"] = self.explorer.state_dict()
        return tensors, values

    def restore(self, tensors: dict[str, torch.Tensor] | None, values: dict[str, Any], seed: int):
        offset = seed + self.index * self.num_envs
        note = self.venv.restore(tensors, values, offset)
        if "torch_rng" in values:
            torch.set_rng_state(torch.tensor(values["torch_rng"], dtype=torch.uint8))
        if self.explorer is not None and "explorer" in values:
            self.explorer.load_state_dict(values["explorer"])
        return note, self.venv.last_obs, self.venv.action_mask

    def run(self, function: Any, *args: Any) -> Any:
        """``function(venv, policy, *args)`` on this worker's envs and networks: a method's own
        use of its workers (evolution strategies play their members here)."""
        return function(self.venv, self.policy, *args)

    def close(self) -> None:
        self.venv.close()


class RayVecEnv:
    """``num_envs`` copies of an env in ``workers`` Ray actors (module docstring)."""

    def __init__(
        self, actors: list[Any], env_id: str, num_envs: int, info: tuple,
        spawn: Any = None, seed: int = 0, timeout: float | None = None, max_restarts: int = 0,
        mode: str = "sync", max_staleness: int = 1,
    ) -> None:  # fmt: skip
        self.actors = actors
        self.asynchronous, self.max_staleness = mode == "async", max_staleness
        self._version = 0  # async: updates so far, the version of the newest weights
        # async: each call under way -> (its worker, the weights' version, its arguments)
        self._running: dict[Any, tuple[int, int, tuple]] = {}
        self.staleness: list[int] = []  # async: of the last rollout's blocks, in updates
        self.dropped = 0  # async: blocks dropped as too stale, over the run
        self.head: str | None = None  # the cluster's GCS (host:port), probed before each round
        self.lost = False  # the cluster went away: nothing more is asked of Ray
        self._spawn = spawn  # index -> a new actor for that worker
        self.seed, self.timeout, self.max_restarts = seed, timeout, max_restarts
        self._policy_ref: Any = None
        self.env_id = env_id
        self.observation_space, self.action_space = info["observation_space"], info["action_space"]
        self.obs_shape, self.mask_source = info["obs_shape"], info["mask_source"]
        # A multi-agent env's rows are its agents in each copy (``core/ma_env.py``).
        self.agents_spec, self.agents = info["agents_spec"], info["agents"]
        self.num_agents = 1 if self.agents is None else len(self.agents)
        self.num_copies, self.num_envs = num_envs, num_envs * self.num_agents
        self.per_worker = self.num_envs // len(actors)  # rows: the columns of a worker's block
        self.waiting = np.zeros(self.num_envs, bool) if info["turn_based"] else None
        self.restarts: list[str] = []
        self._explorer: tuple[Any, Any] | None = None  # (factory, experiment), off-policy
        self._critic_input: tuple[Any, Any] | None = None  # (factory, experiment), MAPPO
        self._ahead: tuple[list[Any], int, tuple] | None = None  # rows being collected
        self._tail_obs: list[np.ndarray | None] = [None] * len(actors)  # each worker's last obs
        self.last_obs: np.ndarray | None = None
        self.action_mask: np.ndarray | None = None
        self.needs_reset = np.zeros(self.num_envs, dtype=bool)
        self.episodes: list[Episode] = []
        self.info_keys: dict[str, str] = {}
        self.teacher: Any = None  # a curriculum's, dealing tasks through ``dealer``
        self.dealer: TaskDealer | None = None
        self._queues: list[list | None] = [None] * len(actors)  # this round's, per worker

    @classmethod
    def make(
        cls, env_id: str, kwargs: dict[str, Any], num_envs: int, *, workers: int,
        address: str | None, seed: int, worker_timeout: float | None = None,
        worker_restarts: int = 0, mode: str = "sync", max_staleness: int = 1,
        teacher: Any = None, **options: Any,
    ) -> RayVecEnv:  # fmt: skip
        dealer = None
        if teacher is not None:  # refused here, not in a worker, and the first tasks dealt
            if is_multiagent(env_id, kwargs):
                raise ConfigError(multiagent_curriculum(env_id))
            check_curriculum(teacher, options.get("vectorization", "auto"),
                             options.get("max_episode_steps"))  # fmt: skip
            dealer = TaskDealer(teacher, num_envs)
            dealer.first_tasks()
        ray = _ray()
        connect(workers, address)
        actor = ray.remote(num_cpus=1)(RolloutWorker)
        per_worker = num_envs // workers

        def spawn(index: int) -> Any:  # a replacement starts its copies on their current tasks
            own = dict(options)
            if dealer is not None:
                first = dealer.current[index * per_worker : (index + 1) * per_worker]
                own["tasks"] = (first, teacher.tasks())
            return actor.remote(index, env_id, kwargs, per_worker, seed, own)

        actors = [spawn(w) for w in range(workers)]
        try:  # every worker made its envs (from the id and kwargs: the env is never pickled)
            info = ray.get([actor.spaces.remote() for actor in actors])[0]
        except ray.exceptions.RayError as exc:
            for actor in actors:
                ray.kill(actor)
            cause = getattr(exc, "cause", None) or exc
            lines = str(cause).strip().splitlines()
            raise EnvError(
                f"env '{env_id}': the Ray rollout workers could not make it "
                f"({type(cause).__name__}: {lines[-1] if lines else ''}); a worker makes the env "
                "from its id in a process of its own, so the id must be registered, or its "
                "module importable, there: put it in an installed package or a module on "
                "PYTHONPATH (not only registered in this script)"
            ) from None
        venv = cls(actors, env_id, num_envs, info, spawn, seed, worker_timeout, worker_restarts,
                   mode, max_staleness)  # fmt: skip
        venv.info_keys = dict(options.get("info_keys") or {})
        venv.head = ray.get_runtime_context().gcs_address
        venv.teacher, venv.dealer = teacher, dealer
        return venv

    def set_critic_input(self, factory: Any, experiment: Any) -> None:
        """Every worker makes the centralized critic's input for its copies (``factory`` is the
        ``CriticInput``'s class: made from the experiment and the worker's vector env)."""
        self._critic_input = (factory, experiment)
        self._gather([a.set_critic_input.remote(factory, experiment) for a in self.actors])

    def set_policy(self, policy: torch.nn.Module) -> None:
        """Give every worker a copy of the networks (once; weights travel with each rollout)."""
        self._policy_ref = _ray().put(policy.to("cpu"))
        self._gather([actor.set_policy.remote(self._policy_ref) for actor in self.actors])

    def _gather(self, calls: list[Any]) -> list[Any]:
        return _ray().get(calls)

    def run(self, function: Any, args: list[tuple]) -> list[Any]:
        """``function(venv, policy, *args[w])`` on worker w's envs and networks, on every
        worker at once; the results in worker order. ``function`` must be importable where the
        workers run (a module's function, not a closure of this process)."""
        self._check_cluster()
        return self._gather([actor.run.remote(function, *own) for actor, own in
                             zip(self.actors, args, strict=True)])  # fmt: skip

    def reset(self, seed: int | None = None) -> np.ndarray:
        parts = self._gather([actor.reset.remote(seed) for actor in self.actors])
        self._take_obs(parts)
        self.needs_reset[:] = False
        return self.last_obs

    def _deal(self, steps: int) -> None:
        """A curriculum's queues for the round, each worker's copies' (``distributed/tasks.py``)."""
        if self.dealer is not None:
            queues, e = self.dealer.deal(steps), self.per_worker
            self._queues = [queues[w * e : (w + 1) * e] for w in range(len(self.actors))]

    def _take(self, worker: int, block: dict[str, Any]) -> None:
        """What worker ``worker``'s copies played this round, for the teacher to hear."""
        if self.dealer is not None:
            self.dealer.take(block["curriculum"], worker * self.per_worker)

    def _take_obs(self, parts: list[tuple[np.ndarray, np.ndarray | None]]) -> None:
        self.last_obs = np.concatenate([obs for obs, _ in parts])
        masks = [mask for _, mask in parts]
        self.action_mask = None if masks[0] is None else np.concatenate(masks)

    def collect(
        self, policy: torch.nn.Module, storage: RolloutStorage, scaler: RewardScaler,
    ) -> tuple[np.ndarray, torch.Tensor]:  # fmt: skip
        """One rollout from every worker into ``storage`` (module docstring); returns the next
        observations and their values, as ``core.rollout.collect`` does."""
        self._check_cluster()
        if self.asynchronous:
            return self._collect_async(policy, storage, scaler)
        weights = _weights(policy)
        shapes = (storage.obs.dtype, tuple(storage.actions.shape[2:]), storage.actions.dtype)
        args = (weights, storage.num_steps, *shapes)
        self._deal(storage.num_steps)
        refs = [actor.collect.remote(*args, queues=self._queues[w])
                for w, actor in enumerate(self.actors)]  # fmt: skip
        blocks = [self._collected(w, ref, args) for w, ref in enumerate(refs)]
        e = self.per_worker
        for w, block in enumerate(blocks):
            _write_block(storage, slice(w * e, (w + 1) * e), block)
            self.episodes += block["episodes"]
            self._take(w, block)
        self.last_obs = np.concatenate([block["last_obs"] for block in blocks])
        masks = [block["action_mask"] for block in blocks]
        self.action_mask = None if masks[0] is None else np.concatenate(masks)
        self.needs_reset = np.concatenate([block["needs_reset"] for block in blocks])
        if scaler.enabled:  # as the local loop scales while stepping: step by step, in order
            scale_rewards(storage, scaler)
        last_value = torch.from_numpy(np.concatenate([block["last_value"] for block in blocks]))
        return self.last_obs, last_value

    # --- off-policy: replay rows from every worker, one block ahead ----------------------------

    def set_explorer(self, factory: Any, experiment: Any) -> None:
        """Give every worker an off-policy method's explorer (``methods/offpolicy.py``)."""
        self._explorer = (factory, experiment)
        workers = len(self.actors)
        self._gather([a.set_explorer.remote(factory, experiment, workers) for a in self.actors])

    def transitions(self, policy: torch.nn.Module, step: int) -> dict[str, Any]:
        """The next ``distributed.actor_steps`` replay rows of every copy, from global env step
        ``step``: arrays (rows, num_envs, ...) with each worker's copies as its columns, and
        ``cut`` (num_envs,), True for the copies of a worker replaced since the last block. The
        next block is started with the current weights before this one is returned, so the
        workers act while the learner learns (the workers' actions lag by one block)."""
        self._check_cluster()
        rows = self._explorer[1].distributed.actor_steps
        if self._ahead is None:
            self._ahead = self._launch(policy, step, rows)
        parts, start, args = self._ahead
        if start != step:
            raise RuntimeError(
                f"the workers' rows start at env step {start}, the learner is at {step}"
            )
        blocks = [self._explored(w, part, args) for w, part in enumerate(parts)]
        for w, block in enumerate(blocks):  # heard before the next block is dealt
            self._tail_obs[w] = block["last_obs"]
            self.episodes += block["episodes"]
            self._take(w, block)
        self._ahead = self._launch(policy, step + rows * self.num_envs, rows)
        out: dict[str, Any] = {}
        for name in ROW_FIELDS:
            out[name] = (
                None
                if blocks[0][name] is None
                else np.concatenate([block[name] for block in blocks], axis=1)
            )
        out["cut"] = np.repeat([block["cut"] for block in blocks], self.per_worker)
        return out

    def _launch(self, policy: torch.nn.Module, start: int, rows: int) -> tuple[list, int, tuple]:
        weights = _weights(policy)
        args = (weights, start, rows)
        self._deal(rows)
        calls = [actor.explore.remote(*args, queues=self._queues[w])
                 for w, actor in enumerate(self.actors)]  # fmt: skip
        return calls, start, args

    def _explored(self, index: int, part: Any, args: tuple) -> dict[str, Any]:
        """Worker ``index``'s rows (``part``: its call, or its rows already gathered); a lost
        worker is replaced as in ``_collected``, and its new copies' first row is their reset
        step, from the observations the lost copies were last in."""
        ray = _ray()
        while not isinstance(part, dict):
            try:
                part = ray.get(part, timeout=self.timeout)
            except (ray.exceptions.RayError, TimeoutError) as exc:
                self._replace(index, _why(exc, self.timeout))
                part = self.actors[index].explore.remote(
                    *args, self._tail_obs[index], queues=self._queues[index]
                )
        return part

    # --- asynchronous on-policy collection ------------------------------------------------------

    def _collect_async(
        self, policy: torch.nn.Module, storage: RolloutStorage, scaler: RewardScaler,
    ) -> tuple[np.ndarray, torch.Tensor]:  # fmt: skip
        """The first ``workers`` rollouts to arrive fill the storage's blocks of columns, in
        arrival order (a fast worker's two rollouts may both be there, a slow one's none); each
        worker goes on with the newest weights as soon as its rollout is in. A rollout whose
        weights are more than ``max_staleness`` updates old is dropped. ``staleness`` lists
        each block's lag; the log-probs in the storage are the behaviour policy's, for V-trace."""
        ray = _ray()
        weights = _weights(policy)
        shapes = (storage.obs.dtype, tuple(storage.actions.shape[2:]), storage.actions.dtype)
        args = (weights, storage.num_steps, *shapes)
        if not self._running:  # the first rollout, or the first after a checkpoint
            for w in range(len(self.actors)):
                self._launch_rollout(w, args)
        blocks: list[tuple[int, int, dict[str, Any]]] = []
        while len(blocks) < len(self.actors):
            ready, _ = ray.wait(list(self._running), num_returns=1, timeout=self.timeout)
            if not ready:  # nothing arrived in time: the longest-running worker hung
                ref = next(iter(self._running))
                w, _, _ = self._running.pop(ref)
                self._replace(w, _why(TimeoutError(), self.timeout))
                self._launch_rollout(w, args)
                continue
            w, version, _ = self._running.pop(ready[0])
            try:
                block = ray.get(ready[0])
            except ray.exceptions.RayError as exc:
                self._replace(w, _why(exc, self.timeout))
                self._launch_rollout(w, args)
                continue
            self._launch_rollout(w, args)
            if self._version - version > self.max_staleness:
                self.dropped += 1
                continue
            blocks.append((w, self._version - version, block))
        self._version += 1
        e = self.per_worker
        for slot, (w, _, block) in enumerate(blocks):
            columns = slice(slot * e, (slot + 1) * e)
            _write_block(storage, columns, block)
            if scaler.enabled:  # each copy's running return is its own, whichever slot
                _scale_copies(storage, scaler, columns, slice(w * e, (w + 1) * e))
            self.episodes += block["episodes"]
        self.staleness = [lag for _, lag, _ in blocks]
        self.last_obs = np.concatenate([block["last_obs"] for _, _, block in blocks])
        last_value = torch.from_numpy(np.concatenate([b["last_value"] for _, _, b in blocks]))
        return self.last_obs, last_value

    def _launch_rollout(self, index: int, args: tuple) -> None:
        ref = self.actors[index].collect.remote(*args)
        self._running[ref] = (index, self._version, args)

    def _collected(self, index: int, ref: Any, args: tuple) -> dict[str, Any]:
        """Worker ``index``'s block; a worker that died, hung past the timeout or whose env
        raised is replaced (its copies start new episodes) and collects again."""
        ray = _ray()
        while True:
            try:
                return ray.get(ref, timeout=self.timeout)
            except (ray.exceptions.RayError, TimeoutError) as exc:
                self._replace(index, _why(exc, self.timeout))
                ref = self.actors[index].collect.remote(*args, queues=self._queues[index])

    def _replace(self, index: int, why: str) -> None:
        """Kill worker ``index`` and start another with the same copies, seeded afresh; or stop
        the run when the cluster itself is gone (its head does not answer)."""
        ray = _ray()
        self._check_cluster(why, index)
        if len(self.restarts) >= self.max_restarts:
            raise EnvWorkerError(
                f"Ray rollout worker {index} {why}, and distributed.max_restarts="
                f"{self.max_restarts} workers were replaced already: training stops (the last "
                "checkpoint is intact; mentor resume continues)"
            )
        with contextlib.suppress(Exception):
            ray.kill(self.actors[index])
        self.actors[index] = actor = self._spawn(index)
        restart = len(self.restarts) + 1
        calls = [actor.set_policy.remote(self._policy_ref)]
        if self._explorer is not None:
            calls.append(actor.set_explorer.remote(*self._explorer, len(self.actors)))
        if self._critic_input is not None:
            calls.append(actor.set_critic_input.remote(*self._critic_input))
        calls.append(actor.reset.remote(self.seed + 1000 * restart))
        try:  # in order (an actor runs its calls one by one); a cluster that is gone hangs here
            ray.get(calls, timeout=STARTUP_SECONDS)
        except (ray.exceptions.RayError, TimeoutError) as exc:
            self._check_cluster(why, index)
            raise EnvWorkerError(
                f"Ray rollout worker {index} {why}, and its replacement did not start "
                f"({_why(exc, STARTUP_SECONDS)}): training stops (the last checkpoint is "
                "intact; mentor resume continues)"
            ) from None
        message = f"Ray rollout worker {index} {why}; replaced (restart {restart})"
        print(message, file=sys.stderr)
        self.restarts.append(message)

    def _check_cluster(self, why: str = "", index: int | None = None) -> None:
        """Raise ``ClusterLostError`` when the cluster's head (its GCS) no longer answers: asked
        before each round of calls and when a worker is lost. (Ray ends a driver whose own
        node's Ray died while it waits on that node's object store: then the run's periodic
        checkpoints are what is left, and ``mentor resume`` goes on from the newest.)"""
        problem = None if self.head is None else _unreachable(self.head, seconds=5.0)
        if problem is None:
            return
        self.lost = True
        event = "" if index is None else f" after rollout worker {index} {why}"
        raise ClusterLostError(
            f"the Ray cluster went away: its head at {self.head} does not answer ({problem})"
            f"{event}; training stops with a checkpoint of the last update: `mentor resume "
            "RUN` continues it, on a new cluster with --set distributed.address=HOST:PORT, or "
            "in one process with --set distributed.workers=null"
        )

    def pop_episodes(self) -> list[Episode]:
        out, self.episodes = self.episodes, []
        return out

    def episode_metrics(self) -> dict[str, float]:
        keys = {key: f"rollout/{key}_mean" for key in self.info_keys}
        if self.agents is not None:  # each agent's return, as a multi-agent vector env logs it
            keys = {f"return/{agent}": f"rollout/return_{agent}_mean" for agent in self.agents}
        metrics = rollout_metrics(self.pop_episodes(), keys)
        if self.dealer is not None:
            metrics.update(self.dealer.metrics())
        return metrics

    def snapshot(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Every worker's envs and sampling generator, for exact resume with the same number
        of workers."""
        ahead = self._settle_ahead()  # the rows being collected belong to the workers' state
        if self.asynchronous:  # rollouts under way: the workers' envs are mid-flight
            return {}, {
                "available": False,
                "reason": "asynchronous collection on Ray workers (distributed.mode=async)",
                "episodes": [e.to_json() for e in self.episodes],
            }
        parts = self._gather([actor.snapshot.remote() for actor in self.actors])
        tensors = {f"w{w}/{k}": v for w, (part, _) in enumerate(parts) for k, v in part.items()}
        tensors.update(ahead[0])
        # "available" is the local VecEnv's word: a run resumed without Ray starts new episodes.
        values = {
            "ray_workers": [values for _, values in parts],
            "episodes": [e.to_json() for e in self.episodes],
            "available": False,
            "reason": f"the envs were in {len(parts)} Ray rollout workers",
            **ahead[1],
        }
        if self.dealer is not None:
            values["dealer"] = self.dealer.snapshot()
        return tensors, values

    def _settle_ahead(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The off-policy block being collected, gathered, as checkpoint tensors and values."""
        if self._ahead is None:
            return {}, {}
        parts, start, args = self._ahead
        parts = [self._explored(w, part, args) for w, part in enumerate(parts)]
        self._ahead = (parts, start, args)
        tensors = {
            f"ahead/w{w}/{name}": torch.from_numpy(np.array(part[name]))
            for w, part in enumerate(parts) for name in (*ROW_FIELDS, "last_obs")
            if part[name] is not None
        }  # fmt: skip
        values = {"ahead": {"start": start, "rows": args[2], "workers": [
            {"cut": part["cut"], "episodes": [e.to_json() for e in part["episodes"]],
             "curriculum": report_to_json(part["curriculum"])}
            for part in parts
        ]}}  # fmt: skip
        return tensors, values

    def restore(
        self, tensors: dict[str, torch.Tensor] | None, values: dict[str, Any], seed: int
    ) -> str:
        saved = values.get("ray_workers")
        if self.asynchronous or tensors is None or saved is None or len(saved) != len(self.actors):
            self.reset(seed=seed)
            if saved is None and values.get("available") is False and "reason" in values:
                return f"reset to new episodes: the checkpoint has no envs ({values['reason']})"
            had = "no Ray workers' state" if saved is None else f"{len(saved)} workers' state"
            return f"reset to new episodes: the checkpoint has {had}, this run {len(self.actors)}"
        calls = []
        for w, (actor, part) in enumerate(zip(self.actors, saved, strict=True)):
            own = {k.split("/", 1)[1]: v for k, v in tensors.items() if k.startswith(f"w{w}/")}
            calls.append(actor.restore.remote(own, part, seed))
        results = self._gather(calls)
        self._take_obs([(obs, mask) for _, obs, mask in results])
        if self.dealer is not None and "dealer" in values:
            self.dealer.restore(values["dealer"])
        self.episodes = [Episode.from_json(e) for e in values.get("episodes", [])]
        ahead = values.get("ahead")
        if ahead is not None:  # the off-policy block that was being collected
            parts = []
            for w, saved_part in enumerate(ahead["workers"]):
                part = {name: None for name in ROW_FIELDS}
                prefix = f"ahead/w{w}/"
                part.update({k[len(prefix):]: v.numpy() for k, v in tensors.items()
                             if k.startswith(prefix)})  # fmt: skip
                part["cut"] = saved_part["cut"]
                part["episodes"] = [Episode.from_json(e) for e in saved_part["episodes"]]
                part["curriculum"] = report_from_json(saved_part.get("curriculum"))
                parts.append(part)
            weights = None  # a gathered block is not collected again
            self._ahead = (parts, ahead["start"], (weights, ahead["start"], ahead["rows"]))
        notes = {note for note, _, _ in results}
        return notes.pop() if len(notes) == 1 else "; ".join(sorted(notes))

    def close(self) -> None:
        if self.lost:  # nothing left to close, and asking a dead cluster can hang
            return
        ray = _ray()
        for actor in self.actors:
            with contextlib.suppress(Exception):  # a dead worker has nothing left to close
                ray.get(actor.close.remote(), timeout=10)
            ray.kill(actor)


# Weights up to this size travel inline with each call (Ray's own limit for inlined arguments is
# 100 KiB); larger ones are put in the object store once per round, for every worker to read.
INLINE_BYTES = 64 * 1024


def _weights(policy: torch.nn.Module) -> Any:
    """The policy's weights as NumPy arrays, inline or as an object-store reference."""
    arrays = {k: v.detach().cpu().numpy() for k, v in policy.state_dict().items()}
    if sum(a.nbytes for a in arrays.values()) <= INLINE_BYTES:
        return arrays
    return _ray().put(arrays)


def _write_block(storage: RolloutStorage, columns: slice, block: dict[str, Any]) -> None:
    """A worker's (T, E) rollout into the storage's ``columns``."""
    for name in BLOCK_FIELDS:
        if getattr(storage, name) is not None and block[name] is not None:
            getattr(storage, name)[:, columns].numpy()[...] = block[name]


def _scale_copies(
    storage: RolloutStorage, scaler: RewardScaler, columns: slice, copies: slice
) -> None:
    """Scale the rewards in ``columns`` of the storage, which env copies ``copies`` collected,
    with those copies' own running returns (``RewardScaler`` keeps one per copy)."""
    returns = scaler.returns
    scaler.returns = returns[copies].copy()
    done = (storage.terminated[:, columns] | storage.truncated[:, columns]).numpy()
    for t in range(storage.num_steps):
        rewards = storage.rewards[t, columns].numpy()
        storage.rewards[t, columns] = torch.from_numpy(scaler(rewards, done[t]))
    returns[copies] = scaler.returns
    scaler.returns = returns


def _why(exc: BaseException, timeout: float | None) -> str:
    """What happened to a worker, in a few words, for the restart's message."""
    name = type(exc).__name__
    if "Timeout" in name:
        return f"did not finish its rollout in {timeout:g} s (distributed.timeout)"
    if "ActorDied" in name or "ActorError" in name or "Unavailable" in name:
        return "died (killed, out of memory, or its node was lost)"
    cause = getattr(exc, "cause", None) or exc
    text = str(cause).strip().splitlines()
    return f"raised {type(cause).__name__}: {text[-1] if text else ''}".rstrip(": ")
