"""One PPO learner among several in a run: a side that trains beside the agent the run saves.

RARL's protagonist and adversary, and a self-play league's exploiters, are each a ``Learner``:
its networks, optimizer, reward scaler and rollout storage. ``methods/ppo.py: learn_turn``
gives one a rollout in its env and a PPO update.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mentor.core.networks import ActorCritic, obs_dtype
from mentor.core.normalize import RewardScaler
from mentor.core.storage import RolloutStorage
from mentor.core.vec_env import VecEnv


@dataclass
class Learner:
    name: str
    policy: ActorCritic
    optimizer: torch.optim.Optimizer
    scaler: RewardScaler
    storage: RolloutStorage
    rollouts: int = 1  # rollouts (each with its update) per turn

    @classmethod
    def make(
        cls,
        name: str,
        policy: ActorCritic,
        optimizer: torch.optim.Optimizer,
        venv: VecEnv,
        num_steps: int,
        gamma: float,
        normalize_reward: bool,
        rollouts: int = 1,
    ) -> Learner:
        """A learner whose storage fits ``venv`` (its masks and turns: after its reset)."""
        mask = venv.action_mask
        storage = RolloutStorage(
            num_steps, venv.num_envs, venv.obs_shape, obs_dtype(policy.cnn),
            policy.dist.action_shape, policy.dist.action_dtype, None,
            None if mask is None else mask.shape[1], turns=venv.waiting is not None,
        )  # fmt: skip
        scaler = RewardScaler(venv.num_envs, gamma, normalize_reward)
        return cls(name, policy, optimizer, scaler, storage, rollouts)
