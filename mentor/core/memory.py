"""Memory in policies: a recurrent core (LSTM or GRU) whose state is carried from step to step of
each env, and what carrying it means for collection and for PPO's update.

The state of a row is one tensor (an LSTM's h and c side by side). It is reset to zeros exactly
where an episode starts, under the next-step autoreset contract (``core/vec_env.py``): the step
whose action an env ignores because it resets (``valid`` False in the rollout) is followed by a
zero state, so the first observation of every episode meets an empty memory. The rule is one
function, ``forget``, used by collection, by the update's unrolls and by an agent playing.

PPO's update replays the rollout's observations through the core: each minibatch is a group of
sequences (``sequence_length`` steps of one env, or its whole rollout), each started from the
state stored when that step was collected, optionally ``burn_in`` steps earlier without a loss
on those steps (Kapturowski et al. 2019, R2D2), so that the stale stored state is brought up to
date by the current weights before the sequence's own steps count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn

from mentor.core.normalize import RewardScaler
from mentor.core.storage import RolloutStorage
from mentor.core.vec_env import VecEnv


class Memory(nn.Module):
    """An LSTM or GRU cell over a batch of rows, one step at a time; with ``critic``, a second
    cell of the same kind for the critic alone, so that the value loss cannot reshape the
    policy's memory (SB3-contrib's RecurrentPPO keeps the two apart by default). A row's state
    is then the two cells' states side by side, and the output the two outputs side by side:
    the policy reads the first half, the critic the second."""

    def __init__(self, cell: str, in_size: int, hidden_size: int, critic: bool = False) -> None:
        super().__init__()
        self.kind = cell
        self.hidden_size = hidden_size
        make = nn.LSTMCell if cell == "lstm" else nn.GRUCell
        self.cell = make(in_size, hidden_size)
        self.critic_cell = make(in_size, hidden_size) if critic else None
        self.cell_state = 2 * hidden_size if cell == "lstm" else hidden_size
        self.state_size = self.cell_state * (2 if critic else 1)

    def initial(self, rows: int, device: torch.device | str = "cpu") -> torch.Tensor:
        return torch.zeros(rows, self.state_size, device=device)

    def _step(
        self, cell: nn.Module, x: torch.Tensor, state: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.kind == "lstm":
            h, c = cell(x, state.split(self.hidden_size, -1))
            return h, torch.cat([h, c], -1)
        h = cell(x, state)
        return h, h

    def forward(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(output, next state) for a batch of inputs and their rows' states."""
        if self.critic_cell is None:
            return self._step(self.cell, x, state)
        actor_state, critic_state = state.split(self.cell_state, -1)
        actor_out, actor_state = self._step(self.cell, x, actor_state)
        critic_out, critic_state = self._step(self.critic_cell, x, critic_state)
        return torch.cat([actor_out, critic_out], -1), torch.cat([actor_state, critic_state], -1)

    def unroll(
        self, x: torch.Tensor, state: torch.Tensor, valid: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Outputs (T, B, hidden) of T steps of inputs ``x`` (T, B, in) from ``state`` (B, S),
        forgetting after each step a row's ``valid`` is False for; and the state after them."""
        outputs = []
        for t in range(x.shape[0]):
            out, state = self(x[t], state)
            outputs.append(out)
            state = forget(state, ~valid[t])
        return torch.stack(outputs), state


def forget(state: torch.Tensor, resets: torch.Tensor | np.ndarray) -> torch.Tensor:
    """``state`` with the rows whose env resets at this step (their action ignored: the next
    observation starts an episode) set to zeros."""
    resets = torch.as_tensor(resets, device=state.device)
    if not bool(resets.any()):
        return state
    return state.masked_fill(resets.unsqueeze(-1), 0.0)


def collect_recurrent(
    policy: nn.Module,
    venv: VecEnv,
    storage: RolloutStorage,
    obs: np.ndarray,
    state: torch.Tensor,
    reward_scaler: RewardScaler,
    device: torch.device,
) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
    """One rollout with a recurrent actor-critic: each step stores the state the policy acted
    from (``storage.states``), the log-probability and value it gave; returns the next
    observation, the state after the rollout and the next observation's value."""
    with torch.inference_mode():
        for t in range(storage.num_steps):
            obs_t, mask = torch.from_numpy(obs).to(device), venv.action_mask
            mask_t = None if mask is None else torch.from_numpy(mask).to(device)
            storage.states[t] = state.cpu()
            params, values, next_state = policy.step(obs_t, state)
            if mask_t is not None:
                params = policy.dist.masked(params, mask_t)
            actions = policy.dist.sample(params, deterministic=False)
            storage.log_probs[t] = policy.dist.log_prob(params, actions).cpu()
            storage.values[t] = values.cpu()
            actions = actions.cpu().numpy()
            valid = ~venv.needs_reset
            storage.add_decision(t, obs, actions, valid, None, mask, venv.waiting)
            state = forget(next_state, ~valid)
            obs, rewards, terminated, truncated = venv.step(actions)
            rewards = reward_scaler(rewards, terminated | truncated)
            storage.add_outcome(t, rewards, terminated, truncated)
            if storage.cost_key is not None:
                storage.add_costs(t, venv.step_value(storage.cost_key))
        _, last_value, _ = policy.step(torch.from_numpy(obs).to(device), state)
    return obs, state, last_value.cpu()


Scorer = Callable[[], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def sequence_minibatches(
    policy: nn.Module,
    storage: RolloutStorage,
    num_minibatches: int,
    length: int | None,
    burn_in: int,
    generator: torch.Generator,
    device: torch.device,
) -> Iterator[tuple[torch.Tensor, Scorer]]:
    """PPO's minibatches for a recurrent policy: groups of sequences in a random order. Each
    yields the flat rollout indices (t * num_envs + env) of the steps it learns from (valid
    steps of its sequences, not their burn-in) and a function that replays them through the
    current weights: (log-probabilities, entropies, values), in the indices' order."""
    t_max, n = storage.num_steps, storage.num_envs
    length = length or t_max
    starts = [(env, t0) for env in range(n) for t0 in range(0, t_max, length)]
    order = torch.randperm(len(starts), generator=generator).tolist()
    size = -(-len(starts) // num_minibatches)
    for first in range(0, len(starts), size):
        chosen = [starts[i] for i in order[first : first + size]]
        envs = torch.tensor([env for env, _ in chosen])
        t0 = torch.tensor([t for _, t in chosen])
        begin = (t0 - burn_in).clamp(min=0)
        end = (t0 + length).clamp(max=t_max)
        width = int((end - begin).max())
        steps = begin.unsqueeze(0) + torch.arange(width).unsqueeze(1)  # (width, M)
        inside = steps < end.unsqueeze(0)
        steps = steps.clamp(max=t_max - 1)
        learned = inside & (steps >= t0.unsqueeze(0)) & storage.valid[steps, envs]
        index = (steps * n + envs)[learned]

        def score(steps=steps, envs=envs, begin=begin, inside=inside, learned=learned) -> tuple:
            obs = storage.obs[steps, envs].to(device)
            actions = storage.actions[steps, envs][learned].to(device)
            valid = (storage.valid[steps, envs] & inside).to(device)
            state = storage.states[begin, envs].to(device)
            params, values = policy.unroll(obs, state, valid)
            params, values = params[learned.to(device)], values[learned.to(device)]
            if storage.masks is not None:
                params = policy.dist.masked(params, storage.masks[steps, envs][learned].to(device))
            dist = policy.dist
            return dist.log_prob(params, actions), dist.entropy(params), values

        yield index, score
