"""Rollout storage for on-policy methods: preallocated once, filled in place step by step."""

from __future__ import annotations

import numpy as np
import torch


class RolloutStorage:
    """T steps of N envs. ``valid`` is False for the reset step that follows an episode's end
    (NEXT_STEP autoreset): that transition's action was ignored by the env, so it is not learned
    from, but its observation (the final one) still gives the bootstrap value."""

    def __init__(
        self,
        num_steps: int,
        num_envs: int,
        obs_shape: tuple[int, ...],
        obs_dtype: torch.dtype,
        action_shape: tuple[int, ...],
        action_dtype: torch.dtype,
    ) -> None:
        t, n = num_steps, num_envs
        self.num_steps = num_steps
        self.obs = torch.zeros((t, n, *obs_shape), dtype=obs_dtype)
        self.actions = torch.zeros((t, n, *action_shape), dtype=action_dtype)
        self.log_probs = torch.zeros((t, n))
        self.values = torch.zeros((t, n))
        self.rewards = torch.zeros((t, n))
        self.terminated = torch.zeros((t, n), dtype=torch.bool)
        self.truncated = torch.zeros((t, n), dtype=torch.bool)
        self.valid = torch.ones((t, n), dtype=torch.bool)

    def add_policy_step(
        self,
        t: int,
        obs: torch.Tensor,
        actions: torch.Tensor,
        log_probs: torch.Tensor,
        values: torch.Tensor,
        valid: np.ndarray,
    ) -> None:
        self.obs[t] = obs
        self.actions[t] = actions
        self.log_probs[t] = log_probs
        self.values[t] = values
        self.valid[t] = torch.from_numpy(valid)

    def add_env_step(
        self, t: int, rewards: np.ndarray, terminated: np.ndarray, truncated: np.ndarray
    ) -> None:
        self.rewards[t] = torch.from_numpy(rewards)
        self.terminated[t] = torch.from_numpy(terminated)
        self.truncated[t] = torch.from_numpy(truncated)
