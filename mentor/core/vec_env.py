"""The vectorized env as mentor's loops see it: one contract, normalised once at the edge.

- Observations come out encoded (see ``spaces.obs_encoder``), actions go in as the network gives
  them (Box actions are clipped to the bounds).
- Autoreset is Gymnasium's NEXT_STEP mode, checked, never assumed: after an episode ends, the
  observation returned is the *final* one (truncated episodes bootstrap from it), and the next
  ``step`` call resets that env, ignoring its action and returning reward 0. ``needs_reset`` says
  which envs are in that state, so their next transition is left out of learning.
- NaN and infinity in observations or rewards stop the run with the env index and step.
- Finished episodes' returns and lengths are collected as they happen.
- ``snapshot``/``restore`` capture all of it, and the envs' own state where they can give it
  (``mentor.envs.snapshot``), for exact resume. ``async`` runs each copy in a restartable worker
  process (``core/workers.py``): an env that raises, hangs or dies is restarted.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode

from mentor.core.workers import WorkerVecEnv
from mentor.envs.resolve import make_env, spec
from mentor.envs.snapshot import (
    SnapshotUnavailable,
    from_json,
    restore_vector,
    to_json,
    vector_snapshot,
)
from mentor.envs.spaces import check_same_spaces, obs_encoder, to_env_actions
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
) -> gym.vector.VectorEnv:
    """A Gymnasium vector env: the env's native implementation when it has one, sync, or async
    (mentor's restartable worker processes)."""
    env_spec = spec(env_id)
    native = env_spec is not None and env_spec.vector_entry_point is not None
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
                            on_restart=on_restart)  # fmt: skip
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


class VecEnv:
    """A vector env with encoded observations, checked values and episode statistics."""

    def __init__(self, env: gym.vector.VectorEnv, check_finite: bool = True) -> None:
        mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        if AutoresetMode(mode) != AutoresetMode.NEXT_STEP:
            raise EnvError(f"vector env uses autoreset mode {mode}; mentor expects NextStep")
        self.env = env
        self.num_envs = env.num_envs
        self.observation_space = env.single_observation_space
        self.action_space = env.single_action_space
        self.encode, self.obs_shape = obs_encoder(self.observation_space)
        self.check_finite = check_finite
        self.needs_reset = np.zeros(self.num_envs, dtype=bool)
        self.episode_return = np.zeros(self.num_envs, dtype=np.float64)
        self.episode_length = np.zeros(self.num_envs, dtype=np.int64)
        self.finished_returns: list[float] = []
        self.finished_lengths: list[int] = []
        self.steps = 0
        self.last_obs: np.ndarray | None = None
        self.restarts: list[str] = []  # what each worker restart said (async only)

    @classmethod
    def make(cls, env_id: str, kwargs: dict[str, Any], num_envs: int, **options: Any) -> VecEnv:
        check_finite = options.pop("check_finite", True)
        restarts: list[str] = []
        venv = cls(
            make_vector_env(env_id, kwargs, num_envs, on_restart=restarts.append, **options),
            check_finite,
        )
        venv.restarts = restarts
        return venv

    def reset(self, seed: int | None = None) -> np.ndarray:
        obs, _ = self.env.reset(seed=seed)
        self.needs_reset[:] = False
        self.episode_return[:] = 0.0
        self.episode_length[:] = 0
        self.last_obs = self._checked_obs(obs)
        return self.last_obs

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Step every env; returns (obs, rewards, terminated, truncated)."""
        obs, rewards, terminated, truncated, _ = self.env.step(
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
        done = terminated | truncated
        if done.any():  # most steps end no episode: skip the bookkeeping then
            for index in np.flatnonzero(done):
                self.finished_returns.append(float(self.episode_return[index]))
                self.finished_lengths.append(int(self.episode_length[index]))
            self.episode_return[done] = 0.0
            self.episode_length[done] = 0
        self.needs_reset = done
        self.last_obs = self._checked_obs(obs)
        return self.last_obs, rewards, terminated, truncated

    # --- exact resume ----------------------------------------------------------------------------

    def snapshot(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(tensors, JSON-ready values): where every env is, for a checkpoint."""
        tensors = {
            "last_obs": torch.from_numpy(np.array(self.last_obs)),
            "needs_reset": torch.from_numpy(self.needs_reset.copy()),
            "episode_return": torch.from_numpy(self.episode_return.copy()),
            "episode_length": torch.from_numpy(self.episode_length.copy()),
        }
        values: dict[str, Any] = {
            "steps": self.steps,
            "finished_returns": self.finished_returns,
            "finished_lengths": self.finished_lengths,
        }
        try:
            values.update(available=True, vector=to_json(vector_snapshot(self.env)))
        except SnapshotUnavailable as exc:
            values.update(available=False, reason=exc.reason)
        return tensors, values

    def restore(
        self, tensors: dict[str, torch.Tensor] | None, values: dict[str, Any], seed: int
    ) -> str:
        """Put every env back where a snapshot found it; returns what was done. Envs that could
        not give their state start new episodes instead (reset with ``seed``)."""
        if not values.get("available") or tensors is None:
            self.reset(seed=seed)
            return f"reset to new episodes: {values.get('reason', 'no env state saved')}"
        restore_vector(self.env, from_json(values["vector"]))
        self.last_obs = tensors["last_obs"].numpy().copy()
        self.needs_reset = tensors["needs_reset"].numpy().copy()
        self.episode_return = tensors["episode_return"].numpy().copy()
        self.episode_length = tensors["episode_length"].numpy().copy()
        self.steps = values["steps"]
        self.finished_returns = list(values["finished_returns"])
        self.finished_lengths = list(values["finished_lengths"])
        return "restored exactly"

    def pop_episodes(self) -> tuple[list[float], list[int]]:
        """Returns and lengths of the episodes finished since the last call."""
        out = self.finished_returns, self.finished_lengths
        self.finished_returns, self.finished_lengths = [], []
        return out

    def episode_metrics(self) -> dict[str, float]:
        """The ``rollout/`` metrics of the episodes finished since the last call ({} if none)."""
        returns, lengths = self.pop_episodes()
        if not returns:
            return {}
        return {
            "rollout/ep_return_mean": float(np.mean(returns)),
            "rollout/ep_return_std": float(np.std(returns)),
            "rollout/ep_length_mean": float(np.mean(lengths)),
            "rollout/episodes": len(returns),
        }

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
