"""A process-pool vector env that survives faulty envs: mentor's own ``AsyncVectorEnv``.

Gymnasium's ``AsyncVectorEnv`` gives up for good when a worker raises, dies or hangs.
``WorkerVecEnv`` runs one process per env copy and, when one fails, ends it, starts a new one from
the same env function and reports the failed transition as a truncation, so training goes on.
From top to bottom:

- ``_worker``, the loop of one process. It ignores SIGINT first thing, so a Ctrl-C in the terminal
  reaches only the training process, which stops gracefully and closes the pool. It makes its env
  at the first command ("make", sent by the pool's constructor, or the first after a restart),
  then answers each command on its pipe (make, step, reset, call, snapshot, restore, close) with
  ``("ok", result)``, ``("error", (type name, message, traceback))`` or ``("unavailable",
  reason)`` for ``SnapshotUnavailable``. An env whose spaces differ from the pool's is answered
  with ``("mismatch", message)`` and ends the worker: the pool closes and raises ``EnvError``,
  without a restart, since a new worker would make the same env.
- Processes are daemons started with "forkserver" (or "spawn" where there is none), never "fork":
  by the time envs are made the training process has usually started torch's thread pools, and a
  forked child inherits their locks in whatever state they were, then deadlocks in its first
  torch call. Env functions travel pickled with cloudpickle (lambdas and closures work); as with
  any such start method, a script that builds a pool must guard its entry point with
  ``if __name__ == "__main__":``. The spaces come from one env made in the parent and closed
  again: the shared memory must exist before the workers start.
- Data. Observations go through shared memory with Gymnasium's public ``create_shared_memory``,
  ``read_from_shared_memory`` and ``write_to_shared_memory`` (any space they support): worker i
  writes slot i, the parent copies the batch out. Rewards, flags and results go through the pipes,
  and so do the keys of each step's info that the pool was given (``info_keys``, the experiment's
  ``env.info_keys``) and an action mask (``info["action_mask"]``, see ``envs/masks.py``), and
  nothing else of it: the rest of an info may be large and mentor does not read it. ``step``
  returns them as Gymnasium's vector envs do, one array per key with its ``_key`` mask; of a
  reset's info (``reset``, and the autoreset inside ``step``) only the action mask comes back.
- Autoreset is Gymnasium's NEXT_STEP mode, as ``SyncVectorEnv`` does it, with the flags in the
  parent (``_autoreset_envs``) so that they can be snapshotted: after env i's episode ends, the
  next ``step`` resets env i instead of stepping it, ignores its action and returns reward 0, not
  terminated, not truncated, and the reset observation. ``reset(seed=s)`` seeds env i with s + i.
- Faults. ``_exchange`` sends every worker its command, then waits for the replies until one
  deadline, ``timeout`` seconds on. An env that raises, a worker that dies (end of file on its
  pipe) and one that does not answer in time are handled alike: the process is ended (terminate,
  join for 1 s, kill), a new one starts with the same env function and shared-memory slot, and
  ``on_restart`` gets the env index, what happened, the restart count and the worker's traceback.
  That env's transition is a truncation, reward 0, with its last good observation: the parent
  keeps a copy of the last batch, as a worker may fail after writing its slot. Its next step
  resets it, in the new worker; ``restarted_envs`` marks the envs restarted in the last step,
  whose info is empty. A fault in ``make`` or ``reset`` restarts the worker and retries once.
  ``max_restarts`` counts restarts over the pool's lifetime; a fault past it closes the pool
  and raises ``EnvWorkerError``, one line, with the worker's traceback as ``.traceback``. Faults
  in ``call``, snapshots and restores are raised as ``EnvWorkerError`` at once, without a restart.
- Seeding. A restarted env's first reset gets the seed that env had at the last ``reset`` plus
  1000 x the pool's restart count (``reset(seed=7)``, env 2, restart 1: 1009), so a run with faults
  replays exactly; after an unseeded ``reset`` it is unseeded too.
- Snapshots. ``mentor_snapshot`` gives the parent's state that shapes what comes next (autoreset
  flags, restart count, seeds, last observations) and, per worker, ``env_snapshot(env)`` computed
  in the worker; ``mentor_restore`` sends each worker its part for ``restore_env``. Both come from
  ``mentor.envs.snapshot`` (whose ``vector_snapshot`` finds these methods); ``SnapshotUnavailable``
  from a worker is raised again in the parent with the same reason.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import multiprocessing as mp
import signal
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import cloudpickle
import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import (
    batch_space,
    create_shared_memory,
    iterate,
    read_from_shared_memory,
    write_to_shared_memory,
)

from mentor.envs.spaces import MASK_KEY, check_same_spaces
from mentor.errors import EnvError, EnvWorkerError

CLOSE_SECONDS = 5.0  # how long close() waits for the workers to close their envs


def _worker(
    index: int,
    env_fn: bytes,
    spaces: tuple[gym.Space, gym.Space],
    shared_obs: Any,
    pipe: Any,
    info_keys: tuple[str, ...] = (),
) -> None:
    """Serve the parent's commands to one env until "close", or until the parent is gone."""
    obs_space, action_space = spaces
    step_keys = (*info_keys, MASK_KEY)  # what the parent reads of a step's info
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    env = None
    while True:
        try:
            command, data = pipe.recv()
        except (EOFError, OSError):
            break
        try:
            if command == "close":
                if env is not None:
                    env.close()
                pipe.send(("ok", None))
                break
            if env is None:  # made at the first command: an error in env_fn is then its reply
                env = cloudpickle.loads(env_fn)()
                try:
                    check_same_spaces(index, env, obs_space, action_space)
                except EnvError as exc:
                    pipe.send(("mismatch", str(exc)))
                    env.close()
                    break
            if command == "make":
                result = None
            elif command == "step":
                obs, reward, terminated, truncated, info = env.step(data)
                write_to_shared_memory(obs_space, index, obs, shared_obs)
                kept = {k: info[k] for k in step_keys if k in info}
                result = (float(reward), bool(terminated), bool(truncated), kept)
            elif command == "reset":
                obs, info = env.reset(seed=data[0], options=data[1])
                write_to_shared_memory(obs_space, index, obs, shared_obs)
                result = {MASK_KEY: info[MASK_KEY]} if MASK_KEY in info else {}
            elif command == "call":
                name, args, kwargs = data
                attribute = getattr(env, name)
                result = attribute(*args, **kwargs) if callable(attribute) else attribute
            elif command == "snapshot":
                from mentor.envs.snapshot import env_snapshot

                result = env_snapshot(env)
            else:  # restore
                from mentor.envs.snapshot import restore_env

                result = restore_env(env, data)
            pipe.send(("ok", result))
        except Exception as exc:
            snapshot = sys.modules.get("mentor.envs.snapshot")
            if snapshot is not None and isinstance(exc, snapshot.SnapshotUnavailable):
                pipe.send(("unavailable", exc.reason))
            else:
                pipe.send(("error", (type(exc).__name__, str(exc), traceback.format_exc())))


class WorkerVecEnv(gym.vector.VectorEnv):
    """One process per env copy; envs that raise, die or hang are restarted (see the module)."""

    def __init__(
        self,
        env_fns: list[Callable[[], gym.Env]],
        *,
        max_restarts: int = 3,
        timeout: float | None = 60.0,
        context: str | None = None,
        on_restart: Callable[[str], None] | None = None,
        info_keys: Sequence[str] = (),
    ) -> None:
        self.closed = True  # until the workers start: close() has nothing to do
        if not env_fns:
            raise ValueError("WorkerVecEnv needs at least one env function")
        self.num_envs = n = len(env_fns)
        self.max_restarts, self.timeout = max_restarts, timeout
        self.info_keys = tuple(info_keys)
        self.on_restart = on_restart or logging.getLogger(__name__).warning
        probe = env_fns[0]()
        self.single_observation_space = probe.observation_space
        self.single_action_space = probe.action_space
        self.metadata = {**probe.metadata, "autoreset_mode": AutoresetMode.NEXT_STEP}
        self.render_mode = probe.render_mode
        probe.close()
        self.observation_space = batch_space(self.single_observation_space, n)
        self.action_space = batch_space(self.single_action_space, n)

        if context is None:
            context = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        self._ctx = mp.get_context(context)
        self._shared_obs = create_shared_memory(self.single_observation_space, n, ctx=self._ctx)
        self._obs = read_from_shared_memory(self.single_observation_space, self._shared_obs, n)
        self._last_obs = copy.deepcopy(self._obs)  # what an env that fails reports
        self._env_fns = [cloudpickle.dumps(fn) for fn in env_fns]
        self._processes: list[Any] = [None] * n
        self._pipes: list[Any] = [None] * n
        self._autoreset_envs = np.zeros(n, dtype=np.bool_)
        self.restarted_envs = np.zeros(n, dtype=np.bool_)  # in the last step
        self._restarts = 0
        self._reset_seeds: list[int | None] = [None] * n  # each env's seed at the last reset
        self._next_seeds: list[int | None] = [None] * n  # a restarted env's next reset seed
        self.closed = False
        for i in range(n):
            self._start(i)
        self._exchange_retrying({i: ("make", None) for i in range(n)})

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict | None = None
    ) -> tuple[Any, dict]:
        n = self.num_envs
        if seed is None or isinstance(seed, int | np.integer):
            seeds = [None if seed is None else int(seed) + i for i in range(n)]
        else:
            seeds = list(seed)
        if len(seeds) != n:
            raise ValueError(f"reset got {len(seeds)} seeds for {n} envs")
        self._reset_seeds = seeds
        results = self._exchange_retrying({i: ("reset", (seeds[i], options)) for i in range(n)})
        self._next_seeds = [None] * n
        self._autoreset_envs[:] = False
        infos: dict[str, Any] = {}
        for i, info in results.items():
            if info:
                infos = self._add_info(infos, info, i)
        return self._read_obs(), infos

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict]:
        messages = {}
        for i, action in enumerate(iterate(self.action_space, actions)):
            if self._autoreset_envs[i]:  # NEXT_STEP autoreset: the action is ignored
                messages[i] = ("reset", (self._next_seeds[i], None))
                self._next_seeds[i] = None
            else:
                messages[i] = ("step", action)
        rewards = np.zeros(self.num_envs, dtype=np.float64)
        terminations = np.zeros(self.num_envs, dtype=np.bool_)
        truncations = np.zeros(self.num_envs, dtype=np.bool_)
        failed = {}
        infos: dict[str, Any] = {}
        for i, (kind, result) in self._exchange(messages).items():
            if kind == "fault":
                failed[i] = result
            else:
                if messages[i][0] == "step":
                    rewards[i], terminations[i], truncations[i], info = result
                else:  # the autoreset's info: its action mask, if any
                    info = result
                if info:
                    infos = self._add_info(infos, info, i)
        self.restarted_envs = np.zeros(self.num_envs, dtype=np.bool_)
        if failed:  # truncations with the last good observations; the next step resets them
            space = self.single_observation_space
            last_obs = list(iterate(self.observation_space, self._last_obs))
            for i, fault in failed.items():
                self._restart(i, fault)
                write_to_shared_memory(space, i, last_obs[i], self._shared_obs)
                truncations[i] = True
                self.restarted_envs[i] = True
        self._autoreset_envs = terminations | truncations
        return self._read_obs(), rewards, terminations, truncations, infos

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple:
        """Call method ``name`` of every env (or read attribute ``name``); one result per env."""
        replies = self._exchange({i: ("call", (name, args, kwargs)) for i in range(self.num_envs)})
        return tuple(self._result(i, reply) for i, reply in replies.items())

    def call_each(self, name: str, args: dict[int, tuple]) -> dict[int, Any]:
        """Call method ``name`` of the envs in ``args``, each with its own arguments (a
        curriculum's next task for the copies whose episode ended); one result per env."""
        replies = self._exchange({i: ("call", (name, a, {})) for i, a in args.items()})
        return {i: self._result(i, reply) for i, reply in replies.items()}

    def mentor_snapshot(self) -> dict:
        """The pool's state for an exact resume (raises SnapshotUnavailable for an env that
        cannot give its state)."""
        replies = self._exchange({i: ("snapshot", None) for i in range(self.num_envs)})
        return {
            "autoreset_envs": self._autoreset_envs.copy(),
            "restarts": self._restarts,
            "reset_seeds": list(self._reset_seeds),
            "next_seeds": list(self._next_seeds),
            "last_obs": copy.deepcopy(self._last_obs),
            "envs": [self._result(i, reply) for i, reply in replies.items()],
        }

    def mentor_restore(self, snapshot: dict) -> None:
        """Put the pool and every env back in the state ``mentor_snapshot`` returned."""
        if len(snapshot["envs"]) != self.num_envs:
            raise ValueError(f"snapshot of {len(snapshot['envs'])} envs for {self.num_envs} envs")
        replies = self._exchange({i: ("restore", part) for i, part in enumerate(snapshot["envs"])})
        for i, reply in replies.items():
            self._result(i, reply)
        self._autoreset_envs = np.array(snapshot["autoreset_envs"], dtype=np.bool_)
        self._restarts = int(snapshot["restarts"])
        self._reset_seeds = list(snapshot["reset_seeds"])
        self._next_seeds = list(snapshot["next_seeds"])
        self._last_obs = copy.deepcopy(snapshot["last_obs"])

    def close(self, **kwargs: Any) -> None:
        """End the workers (each closes its env) and free the shared memory; safe to repeat."""
        if self.closed:
            return
        self.closed = True
        for pipe in self._pipes:
            with contextlib.suppress(OSError, AttributeError):  # gone already, or never started
                pipe.send(("close", None))
        deadline = time.monotonic() + CLOSE_SECONDS
        for i, process in enumerate(self._processes):
            if process is not None:
                process.join(max(0.0, deadline - time.monotonic()))
                self._end(i)
        self._shared_obs = self._obs = self._last_obs = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    # The machinery: starting and ending workers, talking to them, restarting them.

    def _start(self, i: int) -> None:
        parent_end, child_end = self._ctx.Pipe()
        spaces = (self.single_observation_space, self.single_action_space)
        args = (i, self._env_fns[i], spaces, self._shared_obs, child_end, self.info_keys)
        process = self._ctx.Process(target=_worker, args=args, name=f"mentor-env-{i}", daemon=True)
        process.start()
        child_end.close()  # so that the parent's end reads end-of-file when the worker dies
        self._processes[i], self._pipes[i] = process, parent_end

    def _end(self, i: int, wait: float = 0.0) -> int | None:
        """End worker i's process (join for ``wait`` s, terminate, kill); its exit code."""
        process = self._processes[i]
        self._pipes[i].close()
        process.join(wait)
        if process.is_alive():
            process.terminate()
            process.join(1.0)
        if process.is_alive():
            process.kill()
            process.join()
        return process.exitcode

    def _exchange(self, messages: dict[int, tuple[str, Any]]) -> dict[int, tuple[str, Any]]:
        """Send each worker its message, then gather the replies against one deadline: ("ok",
        result), ("unavailable", reason) or ("fault", (one-line description, traceback)). A
        worker that died or did not answer in time is ended at once."""
        if self.closed:
            raise gym.error.ClosedEnvironmentError("WorkerVecEnv is closed")
        replies: dict[int, tuple[str, Any]] = {}
        for i, message in messages.items():
            try:
                self._pipes[i].send(message)
            except OSError:
                replies[i] = ("died", None)
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        for i, (command, _) in messages.items():
            kind, data = replies.get(i) or self._receive(i, deadline)
            if kind == "mismatch":  # not a fault: a new worker would make the same env
                self.close()
                raise EnvError(data)
            if kind == "error":
                name, text, worker_traceback = data
                what = f"env {i} raised {name} in {command}: {' '.join(text.split())}"
                kind, data = "fault", (what, worker_traceback.rstrip())
            elif kind == "hung":
                self._end(i)
                what = f"env {i} did not answer a {command} within {self.timeout} s"
                kind, data = "fault", (what, "")
            elif kind == "died":
                what = f"env {i}'s worker died in {command} (exit code {self._end(i, 1.0)})"
                kind, data = "fault", (what, "")
            replies[i] = kind, data
        return dict(sorted(replies.items()))

    def _exchange_retrying(self, messages: dict[int, tuple[str, Any]]) -> dict[int, Any]:
        """Exchange; restart each worker that failed and send it its message once more. Returns
        each worker's result."""
        replies = self._exchange(messages)
        failed = {i: r[1] for i, r in replies.items() if r[0] == "fault"}
        for i, fault in failed.items():
            self._restart(i, fault)
        retried = self._exchange({i: messages[i] for i in failed})
        for kind, fault in retried.values():
            if kind == "fault":
                self.close()
                raise _worker_error(f"{fault[0]}, again after a restart", fault[1])
        return {i: data for i, (_, data) in sorted({**replies, **retried}.items())}

    def _receive(self, i: int, deadline: float | None) -> tuple[str, Any]:
        """Worker i's reply; ("hung", None) past the deadline, ("died", None) on end of file."""
        pipe = self._pipes[i]
        try:
            if deadline is not None and not pipe.poll(max(0.0, deadline - time.monotonic())):
                return "hung", None
            return pipe.recv()
        except (EOFError, OSError):
            return "died", None

    def _restart(self, i: int, fault: tuple[str, str]) -> None:
        """End worker i after a fault and start a new one, or raise past the restart limit."""
        what, worker_traceback = fault
        self._end(i)
        if self._restarts >= self.max_restarts:
            self.close()
            message = f"{what}; restart limit ({self.max_restarts}) used up"
            raise _worker_error(message, worker_traceback)
        self._restarts += 1
        self._start(i)
        seed = self._reset_seeds[i]
        self._next_seeds[i] = None if seed is None else seed + 1000 * self._restarts
        message = f"{what}; restarted it (restart {self._restarts} of {self.max_restarts})"
        self.on_restart(f"{message}\n{worker_traceback}" if worker_traceback else message)

    def _result(self, i: int, reply: tuple[str, Any]) -> Any:
        """The result of a call, snapshot or restore; their faults raise, without a restart."""
        kind, data = reply
        if kind == "unavailable":
            from mentor.envs.snapshot import SnapshotUnavailable

            raise SnapshotUnavailable(data)
        if kind == "fault":
            if not self._processes[i].is_alive():  # died or hung, and ended: the pool is done
                self.close()
            raise _worker_error(*data)
        return data

    def _read_obs(self) -> Any:
        """A copy of the batch in shared memory, also kept as the last good observations."""
        self._last_obs = copy.deepcopy(self._obs)
        return copy.deepcopy(self._last_obs)


def _worker_error(message: str, worker_traceback: str) -> EnvWorkerError:
    error = EnvWorkerError(message)
    error.traceback = worker_traceback
    return error
