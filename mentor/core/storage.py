"""Rollout storage for on-policy methods: preallocated once, filled in place step by step."""

from __future__ import annotations

import numpy as np
import torch


class RolloutStorage:
    """T steps of N envs. ``valid`` is False for the reset step that follows an episode's end
    (NEXT_STEP autoreset): that transition's action was ignored by the env, so it is not learned
    from, but its observation (the final one) still gives the bootstrap value.

    The tensors live on the CPU. Each step is written through numpy views of the same memory:
    a numpy row copy costs a fraction of a tensor ``__setitem__``, which matters at one write
    per field per env step. With ``critic_shape``, ``critic_obs`` holds what the critic reads
    when it is not the actor's observation (a global state, a time feature). With
    ``mask_size``, ``masks`` holds the action mask each decision was made under (bool; see
    ``VecEnv.action_mask``), for the update's log-probabilities and entropies. With ``turns``,
    ``waiting`` marks the rows whose agent waited for another's move (a turn-based game:
    ``core/returns.py: gae_over_turns``). With ``cost_key``, ``costs`` holds each step's value of
    that info key (a constrained run's per-step cost: ``core/constraint.py``). With
    ``state_size``, ``states`` holds the recurrent state each decision was made from
    (``core/memory.py``).
    """

    def __init__(
        self,
        num_steps: int,
        num_envs: int,
        obs_shape: tuple[int, ...],
        obs_dtype: torch.dtype,
        action_shape: tuple[int, ...],
        action_dtype: torch.dtype,
        critic_shape: tuple[int, ...] | None = None,
        mask_size: int | None = None,
        turns: bool = False,
        cost_key: str | None = None,
        state_size: int | None = None,
    ) -> None:
        t, n = num_steps, num_envs
        self.states = None if state_size is None else torch.zeros((t, n, state_size))
        self.cost_key = cost_key
        self.costs = None if cost_key is None else torch.zeros((t, n))
        self.num_steps = num_steps
        self.num_envs = num_envs
        self.obs = torch.zeros((t, n, *obs_shape), dtype=obs_dtype)
        self.actions = torch.zeros((t, n, *action_shape), dtype=action_dtype)
        self.log_probs = torch.zeros((t, n))
        self.values = torch.zeros((t, n))
        self.rewards = torch.zeros((t, n))
        self.terminated = torch.zeros((t, n), dtype=torch.bool)
        self.truncated = torch.zeros((t, n), dtype=torch.bool)
        self.valid = torch.ones((t, n), dtype=torch.bool)
        self.critic_obs = None if critic_shape is None else torch.zeros((t, n, *critic_shape))
        self.masks = None if mask_size is None else torch.ones((t, n, mask_size), dtype=torch.bool)
        self.waiting = torch.zeros((t, n), dtype=torch.bool) if turns else None
        names = ["obs", "actions", "rewards", "terminated", "truncated", "valid"]
        self._rows = {name: getattr(self, name).numpy() for name in names}
        for name in ("critic_obs", "masks", "waiting", "costs"):
            if getattr(self, name) is not None:
                self._rows[name] = getattr(self, name).numpy()

    def add_decision(
        self,
        t: int,
        obs: np.ndarray,
        actions: np.ndarray,
        valid: np.ndarray,
        critic_obs: np.ndarray | None = None,
        mask: np.ndarray | None = None,
        waiting: np.ndarray | None = None,
    ) -> None:
        """Step t before the env moves: the observation acted on, the actions, whether the
        transition is learned from, what the critic reads (with ``critic_shape``), the action
        mask (with ``mask_size``) and the rows that wait for another agent's move (``turns``)."""
        self._rows["obs"][t] = obs
        self._rows["actions"][t] = actions
        self._rows["valid"][t] = valid
        if critic_obs is not None:
            self._rows["critic_obs"][t] = critic_obs
        if mask is not None:
            self._rows["masks"][t] = mask
        if waiting is not None:
            self._rows["waiting"][t] = waiting

    def add_outcome(
        self, t: int, rewards: np.ndarray, terminated: np.ndarray, truncated: np.ndarray
    ) -> None:
        """Step t after the env moved: what it returned."""
        self._rows["rewards"][t] = rewards
        self._rows["terminated"][t] = terminated
        self._rows["truncated"][t] = truncated

    def add_costs(self, t: int, costs: np.ndarray) -> None:
        """Step t's costs (with ``cost_key``)."""
        self._rows["costs"][t] = costs
