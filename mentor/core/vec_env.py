"""The vectorized env as mentor's loops see it: one contract, normalised once at the edge.

- Observations come out encoded (see ``spaces.obs_encoder``), actions go in as the network gives
  them (Box actions are clipped to the bounds).
- Autoreset is Gymnasium's NEXT_STEP mode, checked, never assumed: after an episode ends, the
  observation returned is the *final* one (truncated episodes bootstrap from it), and the next
  ``step`` call resets that env, ignoring its action and returning reward 0. ``needs_reset`` says
  which envs are in that state, so their next transition is left out of learning.
- NaN and infinity in observations or rewards stop the run with the env index and step.
- Action masks (``envs/masks.py``): ``action_mask`` is an ``(num_envs, size)`` bool array, True
  where an action is allowed, for the observations returned last — or None for an env without
  masks, and then nothing about masks costs anything. ``mask_source`` says where they come
  from: "obs" (a Dict observation space with an ``"action_mask"`` entry, known when the VecEnv
  is made) or "info" (the first reset's info had ``"action_mask"``: known after that reset).
  ``size`` is n for Discrete(n), sum(nvec) for MultiDiscrete (the dimensions' masks
  concatenated); another action space with a mask is an ``EnvError``. A copy whose episode just
  ended (``needs_reset``) has a valid mask too: the env's when it gave one that allows
  something, else all True (its next action is ignored). A mask that allows nothing where the
  action counts is an ``AllMaskedError`` naming the copy and the vector step. The multi-agent
  vector env has the same attribute, per agent.
- ``waiting`` is None: every copy acts at every step. (The multi-agent vector env of a
  turn-based game marks there the rows whose agent waits for another's move.)
- Finished episodes are collected as they happen, as ``Episode`` records: the env copy, the
  return, the length and the declared keys of the env's ``info`` (``env.info_keys``), each kept
  the way it was declared: "last", the value in the info of the episode's last step (the final
  step's info is that step's own under NEXT_STEP autoreset), or "sum", summed over the episode's
  steps (not over its reset, which is no step). Values must be numbers and are NaN-checked like
  rewards. A declared key the env does not report is an ``EnvError`` naming it, the env and the
  keys the info had: a "last" key at the end of any episode, a "sum" key when an episode ends and
  no step has reported it yet (a per-step key may be sparse, as a cost reported only when paid).
- ``snapshot``/``restore`` capture all of it, and the envs' own state where they can give it
  (``mentor.envs.snapshot``), for exact resume. ``async`` runs each copy in a restartable worker
  process (``core/workers.py``): an env that raises, hangs or dies is restarted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode

from mentor.core.workers import WorkerVecEnv
from mentor.envs.atari import LearningSignals, atari_vector_env, check_preset, is_ale
from mentor.envs.masks import MaskReader, MaskSource, mask_nvec, obs_mask_source
from mentor.envs.resolve import make_env, spec
from mentor.envs.snapshot import (
    SnapshotUnavailable,
    from_json,
    restore_vector,
    to_json,
    vector_snapshot,
)
from mentor.envs.spaces import MASK_KEY, check_same_spaces, obs_encoder, to_env_actions
from mentor.envs.tasks import Task, TaskEnv
from mentor.errors import ConfigError, EnvError, NonFiniteError


def make_vector_env(
    env_id: str,
    kwargs: dict[str, Any],
    num_envs: int,
    vectorization: str = "auto",
    max_episode_steps: int | None = None,
    max_restarts: int = 3,
    timeout: float | None = 60.0,
    on_restart: Any = None,
    info_keys: tuple[str, ...] = (),
    teacher: Any = None,
    preset: str | None = None,
) -> gym.vector.VectorEnv:
    """A Gymnasium vector env: the env's native implementation when it has one, sync, or async
    (mentor's restartable worker processes, which send back the ``info_keys`` of each step's
    info and nothing else of it). With a curriculum's ``teacher``, each copy is a ``TaskEnv``
    whose first task the teacher gives (``mentor.envs.tasks``). ``preset: atari``: ale-py's
    vector env with the standard preprocessing (``mentor.envs.atari``); without it an ALE id is
    the raw game, one env per copy (ale-py's vector env preprocesses: it is the preset's)."""
    env_spec = spec(env_id)
    check_preset(preset, env_id, env_spec)
    if preset == "atari":
        if teacher is not None or vectorization in ("sync", "async"):
            raise ConfigError(
                "env.preset 'atari' runs the copies in ale-py's own vector env: use "
                "env.vectorization auto or native, and no curriculum"
            )
        return atari_vector_env(env_spec, kwargs, num_envs, max_episode_steps)
    native = env_spec is not None and env_spec.vector_entry_point is not None
    if native and is_ale(env_spec):
        if vectorization == "native":
            raise ConfigError(
                f"env '{env_id}': ale-py's vector env preprocesses the frames; set "
                "env.preset: atari for it, or use auto, sync or async for the raw game"
            )
        native = False
    if teacher is not None:
        return _task_vector_env(env_id, num_envs, vectorization, max_episode_steps, teacher,
                                max_restarts=max_restarts, timeout=timeout, on_restart=on_restart,
                                info_keys=info_keys)  # fmt: skip
    if vectorization == "native" and not native:
        raise ConfigError(
            f"env.vectorization 'native': env '{env_id}' has no vectorized implementation; "
            "use auto, sync or async"
        )
    # A native implementation pays per-call costs (action checks, stacking) that a plain loop
    # over a few envs does not: for CartPole, sync is faster up to about 4 copies.
    if native and (vectorization == "native" or (vectorization == "auto" and num_envs >= 8)):
        extra = {"max_episode_steps": max_episode_steps} if max_episode_steps else {}
        return gym.make_vec(
            env_spec.id, num_envs, vectorization_mode="vector_entry_point", **kwargs, **extra
        )
    extra = {"max_episode_steps": max_episode_steps} if max_episode_steps and env_spec else {}

    def factory() -> gym.Env:
        return make_env(env_id, kwargs, **extra)

    if vectorization == "async":
        return WorkerVecEnv([factory] * num_envs, max_restarts=max_restarts, timeout=timeout,
                            on_restart=on_restart, info_keys=info_keys)  # fmt: skip
    envs = [factory() for _ in range(num_envs)]
    try:
        for index, env in enumerate(envs[1:], start=1):
            check_same_spaces(index, env, envs[0].observation_space, envs[0].action_space)
    except EnvError:
        for env in envs:
            env.close()
        raise
    return gym.vector.SyncVectorEnv(
        [lambda env=env: env for env in envs], autoreset_mode=AutoresetMode.NEXT_STEP
    )


def _task_vector_env(
    env_id: str, num_envs: int, vectorization: str, max_episode_steps: int | None, teacher: Any,
    **async_options: Any,
) -> gym.vector.VectorEnv:  # fmt: skip
    """Copies that change task (``TaskEnv``), stepped in this process: the teacher sets each
    copy's next task between the step that ends its episode and the one that resets it."""
    make = check_curriculum(teacher, vectorization, max_episode_steps)
    first = [teacher.next_task(index) for index in range(num_envs)]
    if vectorization == "async":  # each copy's TaskEnv in its worker process
        return WorkerVecEnv([partial(TaskEnv, make, task) for task in first], **async_options)
    envs = [TaskEnv(make, task) for task in first]
    return gym.vector.SyncVectorEnv(
        [lambda env=env: env for env in envs], autoreset_mode=AutoresetMode.NEXT_STEP
    )


def check_curriculum(
    teacher: Any, vectorization: str, max_episode_steps: int | None
) -> Callable[[str, Any], gym.Env]:
    """Refuse what cannot take a task per copy (a native vector env; tasks whose spaces differ);
    returns how a copy makes a task's env."""
    if vectorization == "native":
        raise ConfigError(
            "curriculum: env.vectorization 'native' cannot take a task per copy (a native "
            "vector env has no per-copy settings); use env.vectorization sync or async"
        )

    def make(task_id: str, kwargs: Any) -> gym.Env:
        extra = (
            {"max_episode_steps": max_episode_steps} if max_episode_steps and spec(task_id) else {}
        )
        return make_env(task_id, dict(kwargs), **extra)

    _check_task_spaces(teacher.tasks(), make)
    return make


def multiagent_curriculum(env_id: str) -> str:
    return (
        f"curriculum: env '{env_id}' is a multi-agent env; curricula set tasks on single-agent "
        "envs for now"
    )


def _check_task_spaces(tasks: list[Any], make: Any) -> None:
    """Every env setting a teacher may give must have the first's spaces (no silent reshape).
    Each distinct env is made once (parameter bins and levels share one)."""
    first, checked = None, []
    for task in tasks:
        if any(task.same_env(seen) for seen in checked):
            continue
        checked.append(task)
        env = make(task.env_id, task.kwargs)
        try:
            spaces = (env.observation_space, env.action_space)
        finally:
            env.close()
        if first is None:
            first = (task, spaces)
            continue
        for what, mine, theirs in zip(("observation", "action"), spaces, first[1], strict=True):
            if mine != theirs:
                raise ConfigError(
                    f"curriculum: task {task.name} ({task.env_id}) has {what} space {mine}, "
                    f"task {first[0].name} ({first[0].env_id}) has {theirs}: every task of a "
                    "curriculum or continual sequence must have the same spaces (an env that "
                    "maps them to one space is the adapter: register it and name it as the task)"
                )


@dataclass(frozen=True)
class Episode:
    """One finished episode: the env copy that played it (-1: unknown, in a checkpoint written
    before episodes were records), its return and length, and the env's declared info keys at
    its end (module docstring). An episode that an async worker's restart cut short has its
    "sum" keys so far and no "last" keys."""

    env_index: int
    ret: float
    length: int
    info: Mapping[str, float] = field(default_factory=dict)

    def success(self, threshold: float | None) -> bool | None:
        """The env's own verdict, ``info["is_success"]``, when it gave one; else whether the
        return reached ``threshold``; None with neither."""
        if "is_success" in self.info:
            return self.info["is_success"] != 0.0
        return None if threshold is None else self.ret >= threshold

    def to_json(self) -> dict[str, Any]:
        return {
            "env_index": self.env_index,
            "ret": self.ret,
            "length": self.length,
            "info": dict(self.info),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Episode:
        info = {key: float(value) for key, value in data["info"].items()}
        return cls(int(data["env_index"]), float(data["ret"]), int(data["length"]), info)


class VecEnv:
    """A vector env with encoded observations, checked values, action masks and episode
    records (module docstring)."""

    def __init__(
        self,
        env: gym.vector.VectorEnv,
        check_finite: bool = True,
        info_keys: Mapping[str, str] | None = None,
        env_id: str | None = None,
        preset: str | None = None,
    ) -> None:
        mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        if AutoresetMode(mode) != AutoresetMode.NEXT_STEP:
            raise EnvError(f"vector env uses autoreset mode {mode}; mentor expects NextStep")
        self.env = env
        self.env_id = env_id or (env.spec.id if env.spec is not None else type(env).__name__)
        self.num_envs = env.num_envs
        self.num_copies = env.num_envs  # copies of the env: one row each (see core/ma_env.py)
        self.agents_spec = None  # a multi-agent env's agents (core/ma_env.py)
        self.observation_space = env.single_observation_space
        self.action_space = env.single_action_space
        self.encode, self.obs_shape = obs_encoder(self.observation_space)
        self.check_finite = check_finite
        self.info_keys = dict(info_keys or {})
        self._last_keys = [key for key, how in self.info_keys.items() if how == "last"]
        self._sum_keys = [key for key, how in self.info_keys.items() if how == "sum"]
        self.needs_reset = np.zeros(self.num_envs, dtype=bool)
        self.episode_return = np.zeros(self.num_envs, dtype=np.float64)
        self.episode_length = np.zeros(self.num_envs, dtype=np.int64)
        # Each copy's running sum of each "sum" key, and the "sum" keys reported so far.
        self.info_sums = np.zeros((self.num_envs, len(self._sum_keys)), dtype=np.float64)
        self.step_sums = np.zeros_like(self.info_sums)  # each "sum" key at the last step
        self._sums_seen: set[str] = set()
        self.episodes: list[Episode] = []
        self.steps = 0
        self.last_obs: np.ndarray | None = None
        self.restarts: list[str] = []  # what each worker restart said (async only)
        self.teacher: Any = None  # a curriculum's (``mentor.curricula``): tasks per copy
        self.tasks: list[Any] = []  # with a teacher: each copy's task, as the teacher gave it
        self.action_mask: np.ndarray | None = None
        self.waiting: np.ndarray | None = None
        self.mask_source: MaskSource | None = None
        self._masks: MaskReader | None = None
        source = obs_mask_source(self.observation_space, self.action_space, f"env '{self.env_id}'")
        if source is not None:
            self._use_masks(source)
        self._masks_decided = source is not None  # else by the first reset's info
        # env.preset atari: clipped rewards and life losses for the learner (envs/atari.py)
        self.signals = LearningSignals(self.num_envs) if preset == "atari" else None

    @classmethod
    def make(cls, env_id: str, kwargs: dict[str, Any], num_envs: int, **options: Any) -> VecEnv:
        """``num_envs`` copies of the env ``env_id`` names; a PettingZoo env's copies as a
        ``MultiAgentVecEnv``, which has this class's interface (``core/ma_env.py``)."""
        from mentor.envs.pettingzoo import is_multiagent

        if is_multiagent(env_id, kwargs):
            from mentor.core.ma_env import MultiAgentVecEnv

            if options.get("teacher") is not None:
                raise ConfigError(multiagent_curriculum(env_id))
            return MultiAgentVecEnv.make(env_id, kwargs, num_envs, **options)
        options.pop("agent_ids", None)  # a multi-agent option
        check_finite = options.pop("check_finite", True)
        info_keys = options.pop("info_keys", None) or {}
        restarts: list[str] = []
        env = make_vector_env(
            env_id,
            kwargs,
            num_envs,
            on_restart=restarts.append,
            info_keys=tuple(info_keys),
            **options,
        )
        venv = cls(env, check_finite, info_keys, env_id, options.get("preset"))
        venv.restarts = restarts
        venv.teacher = options.get("teacher")
        if venv.teacher is not None:  # each copy's task (the one its episode plays, or will)
            tasks = env.call("pending") if isinstance(env, WorkerVecEnv) else [
                e.pending for e in env.envs
            ]  # fmt: skip
            venv.tasks = list(tasks)
        return venv

    def reset(self, seed: int | None = None) -> np.ndarray:
        obs, infos = self.env.reset(seed=seed)
        self.needs_reset[:] = False
        self.episode_return[:] = 0.0
        self.episode_length[:] = 0
        self.info_sums[:] = 0.0
        if not self._masks_decided:
            self._masks_decided = True
            if isinstance(infos, Mapping) and MASK_KEY in infos:
                self._use_masks("info")
        self.last_obs = self._checked_obs(obs)
        self.action_mask = self._read_masks(obs, infos)
        if self.signals is not None:
            self.signals.reset(infos)
        return self.last_obs

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Step every env; returns (obs, rewards, terminated, truncated)."""
        obs, rewards, terminated, truncated, infos = self.env.step(
            to_env_actions(self.action_space, actions)
        )
        self.steps += 1
        rewards = np.asarray(rewards, dtype=np.float32)
        if self.check_finite and not np.isfinite(rewards).all():
            index = int(np.flatnonzero(~np.isfinite(rewards))[0])
            raise NonFiniteError(
                f"env {index} returned reward {rewards[index]} at vector step {self.steps}"
            )
        started = self.needs_reset  # these envs just reset: no reward, no step of an episode
        self.episode_return += rewards
        self.episode_length += ~started
        self.step_sums[:] = 0.0
        for column, key in enumerate(self._sum_keys):
            reported = self._info_values(infos, key)
            if reported is not None:
                values, where = reported
                self._sums_seen.add(key)
                self.step_sums[:, column] = np.where(where & ~started, values, 0.0)
        self.info_sums += self.step_sums
        done = terminated | truncated
        if done.any():  # most steps end no episode: skip the bookkeeping then
            self._record_episodes(np.flatnonzero(done), infos)
            self.episode_return[done] = 0.0
            self.episode_length[done] = 0
            self.info_sums[done] = 0.0
            if self.teacher is not None:
                self._next_tasks(np.flatnonzero(done))
        self.needs_reset = done
        self.last_obs = self._checked_obs(obs)
        self.action_mask = self._read_masks(obs, infos)
        if self.signals is not None:  # the learner's view; the records above keep the game's
            rewards, terminated = self.signals(rewards, terminated, infos, started)
        return self.last_obs, rewards, terminated, truncated

    def _next_tasks(self, ended: np.ndarray) -> None:
        """Tell the teacher how each ended episode went, and set the copy's next task before the
        step that resets it (``mentor.envs.tasks``): in copy order, so deterministic. The
        copies' TaskEnvs are here (sync) or in worker processes (async: one message each)."""
        given: dict[int, tuple] = {}
        for index, episode in zip(ended, self.episodes[-len(ended) :], strict=True):
            index = int(index)
            self.teacher.observe(index, self.tasks[index], episode)
            task = self.tasks[index] = self.teacher.next_task(index)
            given[index] = (task,)
        if isinstance(self.env, WorkerVecEnv):
            self.env.call_each("set_task", given)
        else:
            for index, (task,) in given.items():
                self.env.envs[index].set_task(task)

    # --- action masks ----------------------------------------------------------------------------

    def _use_masks(self, source: MaskSource) -> None:
        where = "observations" if source == "obs" else "info"
        nvec = mask_nvec(self.action_space, f"env '{self.env_id}' gives action masks ({where})")
        self.mask_source = source
        self._masks = MaskReader(nvec, source, self.env_id)

    def _read_masks(self, obs: Any, infos: Any) -> np.ndarray | None:
        if self._masks is None:
            return None
        return self._masks.read(obs, infos, self.needs_reset, self.steps)

    # --- episode records ---------------------------------------------------------------------

    def _record_episodes(self, indices: np.ndarray, infos: dict[str, Any]) -> None:
        """An ``Episode`` for each copy in ``indices``, whose episode just ended."""
        # A copy whose worker was restarted reports no info: its episode was cut short.
        restarted = getattr(self.env, "restarted_envs", None)
        cut = np.zeros(self.num_envs, bool) if restarted is None else np.asarray(restarted)
        last = {key: self._info_values(infos, key) for key in self._last_keys}
        for index in indices:
            info: dict[str, float] = {}
            for key, reported in last.items():
                if reported is not None and reported[1][index]:
                    info[key] = float(reported[0][index])
                elif not cut[index]:
                    self._missing(key, int(index), infos, "at the end of its episode")
            if not cut[index] and len(self._sums_seen) < len(self._sum_keys):
                key = next(k for k in self._sum_keys if k not in self._sums_seen)
                self._missing(key, int(index), infos, "at any step before its episode ended")
            info.update(zip(self._sum_keys, self.info_sums[index].tolist(), strict=True))
            info = {key: info[key] for key in self.info_keys if key in info}  # declared order
            ret, length = float(self.episode_return[index]), int(self.episode_length[index])
            self.episodes.append(Episode(int(index), ret, length, info))

    def _info_values(self, infos: Any, key: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(values, reported): one float64 value per copy of ``infos[key]`` and the mask of the
        copies that reported it (Gymnasium's ``_key``; all of them when a native vector env
        gives none); None when no copy did. Raises for values that are not numbers and, with
        ``check_finite``, for NaN and infinity."""
        if not isinstance(infos, dict) or key not in infos:
            return None
        n = self.num_envs
        raw = infos[key]
        mask = infos.get(f"_{key}")
        reported = np.ones(n, bool) if mask is None else np.asarray(mask, dtype=bool)
        array = np.asarray(raw)
        if array.ndim == 0:  # one value for every copy
            array = np.full(n, raw, dtype=array.dtype)
        if array.shape != (n,) or reported.shape != (n,):
            raise EnvError(
                f"env '{self.env_id}' reported info['{key}'] of shape {array.shape}: "
                f"env.info_keys keeps one number per episode, so each of the {n} copies must "
                "report a single number"
            )
        if array.dtype.kind in "biuf":
            values = np.where(reported, array, 0).astype(np.float64)
        else:  # Gymnasium batches other types in an object array
            values = np.zeros(n, dtype=np.float64)
            for index in np.flatnonzero(reported):
                value = array[index]
                if not isinstance(value, int | float | np.number | np.bool_):  # bool is an int
                    raise EnvError(
                        f"env {index} ({self.env_id}) reported info['{key}'] = {value!r} at "
                        f"vector step {self.steps}: env.info_keys keeps numbers (bool, int, "
                        "float) only"
                    )
                values[index] = float(value)
        if self.check_finite and not np.isfinite(values).all():
            index = int(np.flatnonzero(~np.isfinite(values))[0])
            raise NonFiniteError(
                f"env {index} reported info['{key}'] = {values[index]} at vector step {self.steps}"
            )
        return values, reported

    def _missing(self, key: str, index: int, infos: Any, when: str) -> None:
        """Raise for a declared key that env copy ``index`` did not report."""
        had = _reported_keys(infos, index)
        raise EnvError(
            f"env '{self.env_id}' did not report info key '{key}' (declared in env.info_keys as "
            f"{self.info_keys[key]}) {when} (env {index}, vector step {self.steps}); its info "
            f"had {'keys ' + ', '.join(had) if had else 'no keys'}"
        )

    def pop_episodes(self) -> list[Episode]:
        """The episodes finished since the last call, in the order they ended."""
        out, self.episodes = self.episodes, []
        return out

    def step_value(self, key: str) -> np.ndarray:
        """Each copy's value of the declared "sum" info key ``key`` at the last step (0 where it
        was not reported, and at the step that reset a copy): a per-step cost, say."""
        return self.step_sums[:, self._sum_keys.index(key)]

    def episode_metrics(self) -> dict[str, float]:
        """The ``rollout/`` metrics of the episodes finished since the last call ({} if none):
        return and length, and the mean of each declared info key (``rollout/<key>_mean``)."""
        keys = {key: f"rollout/{key}_mean" for key in self.info_keys}
        return rollout_metrics(self.pop_episodes(), keys)

    # --- exact resume ----------------------------------------------------------------------------

    def snapshot(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(tensors, JSON-ready values): where every env is, for a checkpoint."""
        tensors = {
            "last_obs": torch.from_numpy(np.array(self.last_obs)),
            "needs_reset": torch.from_numpy(self.needs_reset.copy()),
            "episode_return": torch.from_numpy(self.episode_return.copy()),
            "episode_length": torch.from_numpy(self.episode_length.copy()),
        }
        if self._sum_keys:
            tensors["info_sums"] = torch.from_numpy(self.info_sums.copy())
        if self.action_mask is not None:
            tensors["action_mask"] = torch.from_numpy(self.action_mask.copy())
        values: dict[str, Any] = {
            "steps": self.steps,
            "episodes": [episode.to_json() for episode in self.episodes],
            "info_sum_keys": list(self._sum_keys),
            "info_sums_seen": sorted(self._sums_seen),
        }
        if self.mask_source is not None:
            values["mask_source"] = self.mask_source
        if self.teacher is not None:
            values["tasks"] = [task.to_json() for task in self.tasks]
        try:
            values.update(available=True, vector=to_json(vector_snapshot(self.env)))
        except SnapshotUnavailable as exc:
            values.update(available=False, reason=exc.reason)
        return tensors, values

    def restore(
        self, tensors: dict[str, torch.Tensor] | None, values: dict[str, Any], seed: int
    ) -> str:
        """Put every env back where a snapshot found it; returns what was done. Envs that could
        not give their state start new episodes instead (reset with ``seed``).

        A checkpoint written before episodes were records (issue 11) has their returns and
        lengths only, and no info state: its finished episodes get env index -1 and no info,
        and the running sums of "sum" keys start at 0. A "sum" key declared since the
        checkpoint was written starts at 0 too. The action masks of the last observations are
        restored with them (all True from a checkpoint without them)."""
        if not values.get("available") or tensors is None:
            self.reset(seed=seed)
            return f"reset to new episodes: {values.get('reason', 'no env state saved')}"
        restore_vector(self.env, from_json(values["vector"]))
        if "tasks" in values:
            self.tasks = [Task.from_json(task) for task in values["tasks"]]
        self.last_obs = tensors["last_obs"].numpy().copy()
        self.needs_reset = tensors["needs_reset"].numpy().copy()
        self.episode_return = tensors["episode_return"].numpy().copy()
        self.episode_length = tensors["episode_length"].numpy().copy()
        self.steps = values["steps"]
        if "episodes" in values:
            self.episodes = [Episode.from_json(episode) for episode in values["episodes"]]
        else:
            pairs = zip(values["finished_returns"], values["finished_lengths"], strict=True)
            self.episodes = [Episode(-1, float(ret), int(length)) for ret, length in pairs]
        saved_keys = list(values.get("info_sum_keys", []))
        saved_sums = tensors.get("info_sums")
        self.info_sums[:] = 0.0
        for column, key in enumerate(self._sum_keys):
            if saved_sums is not None and key in saved_keys:
                self.info_sums[:, column] = saved_sums[:, saved_keys.index(key)].numpy()
        self._sums_seen = set(values.get("info_sums_seen", [])) & set(self._sum_keys)
        if self._masks is None and values.get("mask_source") is not None:
            self._use_masks(values["mask_source"])
        self._masks_decided = True
        if self._masks is not None:
            saved_mask = tensors.get("action_mask")
            shape = (self.num_envs, self._masks.size)
            self.action_mask = (
                np.ones(shape, bool) if saved_mask is None else saved_mask.numpy().copy()
            )
        return "restored exactly"

    def _checked_obs(self, obs: Any) -> np.ndarray:
        encoded = self.encode(obs)
        if self.check_finite and encoded.dtype.kind == "f" and not np.isfinite(encoded).all():
            env_index, element = np.argwhere(~np.isfinite(encoded.reshape(self.num_envs, -1)))[0]
            raise NonFiniteError(
                f"env {env_index} returned an observation with "
                f"{encoded.reshape(self.num_envs, -1)[env_index, element]} at element {element} "
                f"(vector step {self.steps})"
            )
        return encoded

    def close(self) -> None:
        self.env.close()


def rollout_metrics(episodes: list[Episode], keys: Mapping[str, str]) -> dict[str, float]:
    """The ``rollout/`` metrics of some episodes ({} for none): the return's mean and std, the
    mean length, the count, and for each info key in ``keys`` the mean over the episodes that
    have it, logged under the name ``keys`` gives it."""
    if not episodes:
        return {}
    returns = [episode.ret for episode in episodes]
    metrics: dict[str, float] = {
        "rollout/ep_return_mean": float(np.mean(returns)),
        "rollout/ep_return_std": float(np.std(returns)),
        "rollout/ep_length_mean": float(np.mean([episode.length for episode in episodes])),
        "rollout/episodes": len(episodes),
    }
    for key, name in keys.items():
        values = [episode.info[key] for episode in episodes if key in episode.info]
        if values:
            metrics[name] = float(np.mean(values))
    return metrics


def _reported_keys(infos: Any, index: int) -> list[str]:
    """The keys of a vector info that env copy ``index`` reported (Gymnasium's masks aside)."""
    if not isinstance(infos, dict):
        return []
    keys = []
    for key in infos:
        if key.startswith("_") and key[1:] in infos:
            continue
        mask = infos.get(f"_{key}")
        if mask is None or bool(np.asarray(mask)[index]):
            keys.append(key)
    return sorted(keys)
