"""The replay buffer of off-policy methods: preallocated, typed, one copy of each observation.

Storage is a ring of *rows*, one per vector step. Row t holds, for each of the N envs, the
observation it was in, the action taken, and what came back (reward, terminated, truncated).
With NEXT_STEP autoreset (see ``core/vec_env.py``) the observation that followed (t, i) is
``obs[t + 1, i]`` — the final observation when the episode ended there — so no observation is
stored twice, and truncated episodes bootstrap from their true last state. The row after an
episode's end is the env's reset step: ``valid`` is False there and it is never sampled.

Sampling draws uniformly (or by priority) among transitions whose n following rows exist, sums
up to n discounted rewards, stops at the episode's end, and returns the observation to
bootstrap from with its discount (0 after a termination).

An env with action masks (``VecEnv.action_mask``) has each row's masks stored beside its
observations, and a sample carries those of the observation it bootstraps from (DQN's target
maximises over the allowed next actions). Whether an env has masks is known once it has reset,
after the buffer is made: the first ``add`` with masks, or a checkpoint that has them, makes
their rows; a buffer of an env without masks has none.

With ``cost_key`` (a constrained run: ``core/constraint.py``) each row also holds the step's
cost, and a sample carries the discounted cost over the same n steps as its rewards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mentor.core.sum_tree import SumTree


@dataclass
class ReplaySample:
    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor  # sum of up to n discounted rewards
    next_obs: torch.Tensor  # the observation to bootstrap from
    discounts: torch.Tensor  # gamma^k, or 0 when the episode terminated within the n steps
    weights: torch.Tensor  # importance-sampling weights (ones without prioritized replay)
    indices: np.ndarray  # flat indices, for update_priorities
    next_masks: torch.Tensor | None = None  # the action masks of next_obs, where the env has them
    costs: torch.Tensor | None = None  # sum of up to n discounted costs, with cost_key


class ReplayBuffer:
    def __init__(
        self,
        capacity: int,
        num_envs: int,
        obs_shape: tuple[int, ...],
        obs_dtype: torch.dtype,
        action_shape: tuple[int, ...],
        action_dtype: torch.dtype,
        gamma: float,
        n_step: int = 1,
        prioritized: bool = False,
        priority_alpha: float = 0.6,
        cost_key: str | None = None,
    ) -> None:
        # capacity counts transitions; one more row holds the observation after the newest.
        self.rows = max(capacity // num_envs, n_step + 1) + 1
        self.num_envs, self.gamma, self.n_step = num_envs, gamma, n_step
        shape = (self.rows, num_envs)
        # Rows are read only once written, so most storage need not be zeroed: the pages of a
        # large buffer are then only touched as it fills.
        self.obs = torch.empty((*shape, *obs_shape), dtype=obs_dtype)
        self.actions = torch.empty((*shape, *action_shape), dtype=action_dtype)
        self.rewards = torch.empty(shape)
        self.terminated = torch.empty(shape, dtype=torch.bool)
        self.truncated = torch.empty(shape, dtype=torch.bool)
        self.valid = torch.zeros(shape, dtype=torch.bool)
        self.masks: torch.Tensor | None = None  # (rows, num_envs, mask size), made on first use
        self.cost_key = cost_key
        self.costs = torch.empty(shape) if cost_key is not None else None
        # NumPy views of the same memory: writing a step through them costs a fraction of
        # converting each array to a tensor first, and adding happens at every env step.
        fields = ("obs", "actions", "rewards", "terminated", "truncated", "valid")
        self._rows = {name: getattr(self, name).numpy() for name in fields}
        if self.costs is not None:
            self._rows["costs"] = self.costs.numpy()
        self.pos = 0  # the row the next add writes
        self.count = 0  # rows written, up to self.rows
        self.priorities = SumTree(self.rows * num_envs) if prioritized else None
        self.priority_alpha = priority_alpha
        self.max_priority = 1.0
        self._discounts = gamma ** torch.arange(n_step + 1, dtype=torch.float32)
        # Transitions kept from earlier tasks (a continual run's replay rehearsal: ``keep``),
        # and the share of each batch drawn from them.
        self.kept: dict[str, torch.Tensor] = {}
        self.kept_share = 0.0

    @staticmethod
    def bytes_needed(capacity: int, obs_shape: tuple[int, ...], obs_dtype: torch.dtype,
                     action_shape: tuple[int, ...], action_dtype: torch.dtype,
                     mask_size: int = 0) -> int:  # fmt: skip
        """Bytes a buffer of ``capacity`` transitions takes once full (``mask_size``: the
        entries of an action mask, one bool each, for an env that gives masks)."""
        obs = torch.empty((), dtype=obs_dtype).element_size() * int(np.prod(obs_shape))
        action = torch.empty((), dtype=action_dtype).element_size() * int(np.prod(action_shape))
        return capacity * (obs + action + 4 + 3 + mask_size)  # + reward (float32), three flags

    def __len__(self) -> int:
        """Transitions that can be sampled now (an upper bound: reset steps are skipped)."""
        return max(self.count - self.n_step, 0) * self.num_envs

    @property
    def nbytes(self) -> int:
        tensors = (self.obs, self.actions, self.rewards, self.terminated, self.truncated,
                   self.valid)  # fmt: skip
        extra = self.priorities.nbytes if self.priorities is not None else 0
        extra += self.masks.nelement() if self.masks is not None else 0
        extra += 4 * self.costs.nelement() if self.costs is not None else 0
        return sum(t.element_size() * t.nelement() for t in tensors) + extra

    def _make_masks(self, size: int) -> None:
        self.masks = torch.ones((self.rows, self.num_envs, size), dtype=torch.bool)
        self._rows["masks"] = self.masks.numpy()

    def add(
        self,
        obs: torch.Tensor,
        actions: torch.Tensor,
        rewards: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        valid: np.ndarray,
        masks: np.ndarray | None = None,
        costs: np.ndarray | None = None,
    ) -> None:
        """Store one vector step: the observations acted on (and their action masks, for an
        env that has them) and what the step returned (its costs, with ``cost_key``)."""
        if masks is not None and self.masks is None:
            self._make_masks(masks.shape[1])
        t, rows = self.pos, self._rows
        rows["obs"][t] = obs.numpy() if isinstance(obs, torch.Tensor) else obs
        rows["actions"][t] = actions.numpy() if isinstance(actions, torch.Tensor) else actions
        rows["rewards"][t] = rewards
        rows["terminated"][t] = terminated
        rows["truncated"][t] = truncated
        rows["valid"][t] = valid
        if masks is not None:
            rows["masks"][t] = masks
        if self.costs is not None:
            rows["costs"][t] = costs
        self.pos = (t + 1) % self.rows
        self.count = min(self.count + 1, self.rows)
        if self.priorities is not None:
            # The new row cannot be sampled until n rows follow it; the row that now has them
            # becomes sampleable with the highest priority so far (Schaul et al. 2016).
            self._set_row_priority(t, 0.0)
            ready = (t - self.n_step) % self.rows
            if self.count > self.n_step:
                self._set_row_priority(ready, self.max_priority**self.priority_alpha)

    def prefill(self, state: dict[str, torch.Tensor]) -> int:
        """Another run's buffer (``state_dict``) as this one's first rows, for a run that starts
        from that run (``agent.init_replay``); returns the transitions taken. Its newest row
        is left out of sampling: the observation after it is not stored, and the next row
        added is this run's first."""
        self.load_state_dict(state)
        if self.count == 0:
            return 0
        newest = (self.pos - 1) % self.rows
        self._rows["valid"][newest] = False
        if self.priorities is not None:
            self._set_row_priority(newest, 0.0)
        return int(self.valid[: self.count].sum())

    def truncate_last(self, envs: np.ndarray | None) -> None:
        """End the episodes of the envs marked True at the newest row, as truncated: their env
        was replaced (a Ray worker lost), and the next row added is its reset step, holding the
        observation the episode ended in."""
        if envs is None or self.count == 0 or not envs.any():
            return
        self._rows["truncated"][(self.pos - 1) % self.rows, envs] = True

    def _set_row_priority(self, row: int, value: float) -> None:
        flat = row * self.num_envs + np.arange(self.num_envs)
        values = np.where(self.valid[row].numpy(), value, 0.0)
        self.priorities.update(flat, values)

    def keep(self, count: int, rows_back: int, generator: np.random.Generator, share: float) -> int:
        """Keep ``count`` transitions drawn uniformly from the newest ``rows_back`` rows (a
        finished task's), as n-step tuples that outlive the ring; from now on ``share`` of each
        batch is drawn from everything kept. Returns how many were kept."""
        newest, span = self.pos - 1, min(rows_back, self.count) - self.n_step
        if span <= 0:
            return 0
        rows = (newest - self.n_step - generator.integers(0, span, size=4 * count)) % self.rows
        envs = generator.integers(0, self.num_envs, size=4 * count)
        keep = self._rows["valid"][rows, envs]
        rows, envs = rows[keep][:count], envs[keep][:count]
        rewards, next_rows, discounts = self._n_step(rows, envs)
        masks = self._rows.get("masks")
        if self.costs is not None:
            raise ValueError("replay rehearsal keeps no costs: a constrained run cannot keep")
        kept = {
            "obs": torch.from_numpy(self._rows["obs"][rows, envs].copy()),
            "actions": torch.from_numpy(self._rows["actions"][rows, envs].copy()),
            "rewards": rewards.clone(),
            "next_obs": torch.from_numpy(self._rows["obs"][next_rows, envs].copy()),
            "discounts": discounts.clone(),
        }
        if masks is not None:
            kept["next_masks"] = torch.from_numpy(masks[next_rows, envs].copy())
        self.kept = kept if not self.kept else {
            k: torch.cat([self.kept[k], v]) for k, v in kept.items()
        }  # fmt: skip
        self.kept_share = share
        return len(rows)

    def _with_kept(self, batch: ReplaySample, count: int, generator: np.random.Generator):
        """``batch`` with ``count`` kept transitions appended (their indices -1: no priority)."""
        pick = torch.from_numpy(generator.integers(0, len(self.kept["obs"]), size=count))
        kept = {k: v[pick] for k, v in self.kept.items()}
        masks = batch.next_masks
        if masks is not None:
            masks = torch.cat([masks, kept["next_masks"]])
        return ReplaySample(
            obs=torch.cat([batch.obs, kept["obs"]]),
            actions=torch.cat([batch.actions, kept["actions"]]),
            rewards=torch.cat([batch.rewards, kept["rewards"]]),
            next_obs=torch.cat([batch.next_obs, kept["next_obs"]]),
            discounts=torch.cat([batch.discounts, kept["discounts"]]),
            weights=torch.cat([batch.weights, torch.ones(count)]),
            indices=np.concatenate([batch.indices, np.full(count, -1)]),
            next_masks=masks,
        )

    def sample(
        self, batch_size: int, generator: np.random.Generator, beta: float = 0.4
    ) -> ReplaySample:
        if len(self) == 0:
            raise ValueError("the replay buffer has no transition to sample yet")
        if self.kept:  # a share of the batch from earlier tasks' kept transitions
            count = round(batch_size * self.kept_share)
            own = self._sample(batch_size - count, generator, beta)
            return self._with_kept(own, count, generator)
        return self._sample(batch_size, generator, beta)

    def _sample(self, batch_size: int, generator: np.random.Generator, beta: float) -> ReplaySample:
        if self.priorities is None:
            flat = self._uniform_indices(batch_size, generator)
            weights = torch.ones(batch_size)
        else:
            flat, probabilities = self.priorities.sample(batch_size, generator)
            weights = torch.from_numpy((len(self) * probabilities) ** (-beta)).float()
            weights /= weights.max()
        rows, envs = np.divmod(flat, self.num_envs)
        rewards, next_rows, discounts = self._n_step(rows, envs)
        obs, actions = self._rows["obs"], self._rows["actions"]  # NumPy gathers: cheaper
        masks = self._rows.get("masks")
        return ReplaySample(
            obs=torch.from_numpy(obs[rows, envs]),
            actions=torch.from_numpy(actions[rows, envs]),
            rewards=rewards,
            next_obs=torch.from_numpy(obs[next_rows, envs]),
            discounts=discounts,
            weights=weights,
            indices=flat,
            next_masks=None if masks is None else torch.from_numpy(masks[next_rows, envs]),
            costs=None if self.costs is None else self._n_step(rows, envs, self.costs)[0],
        )

    def _uniform_indices(self, batch_size: int, generator: np.random.Generator) -> np.ndarray:
        """Uniform over valid transitions with n rows after them, by rejection (few rejects:
        only reset steps are invalid)."""
        chosen: list[np.ndarray] = []
        needed = batch_size
        newest = self.pos - 1
        while needed > 0:
            ages = generator.integers(self.n_step, self.count, size=2 * needed)
            rows = (newest - ages) % self.rows
            envs = generator.integers(0, self.num_envs, size=2 * needed)
            keep = self._rows["valid"][rows, envs]
            flat = (rows * self.num_envs + envs)[keep][:needed]
            chosen.append(flat)
            needed -= len(flat)
        return np.concatenate(chosen)

    def _n_step(
        self, rows: np.ndarray, envs: np.ndarray, values: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, np.ndarray, torch.Tensor]:
        """Discounted reward sums (or sums of ``values``, costs) over up to n steps, stopping
        at the episode's end."""
        values = self.rewards if values is None else values
        if self.n_step == 1:  # the common case, without the window arithmetic
            not_terminated = ~self._rows["terminated"][rows, envs]
            discounts = torch.from_numpy(self.gamma * not_terminated.astype(np.float32))
            rewards = torch.from_numpy(values.numpy()[rows, envs])
            return rewards, (rows + 1) % self.rows, discounts
        offsets = np.arange(self.n_step)
        window = (rows[:, None] + offsets) % self.rows  # (B, n)
        env_cols = envs[:, None]
        rewards = values[window, env_cols]
        terminated = self.terminated[window, env_cols]
        done = terminated | self.truncated[window, env_cols]
        # alive[k]: no episode end among steps 0..k-1, so step k still belongs to the episode.
        ended_before = torch.cumsum(done.int(), 1) - done.int()
        alive = ended_before == 0
        steps = alive.sum(1)  # rewards summed: up to and including the first end, at most n
        reward_sum = (rewards * alive * self._discounts[: self.n_step]).sum(1)
        last = steps - 1
        terminated_last = terminated[torch.arange(len(rows)), last]
        discounts = self._discounts[steps] * (~terminated_last)
        next_rows = (rows + steps.numpy()) % self.rows
        return reward_sum, next_rows, discounts

    def update_priorities(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        """New priorities (e.g. |TD error|) for sampled transitions."""
        priorities = np.maximum(priorities, 1e-6)
        self.max_priority = max(self.max_priority, float(priorities.max()))
        self.priorities.update(indices, priorities**self.priority_alpha)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Only the rows written, so a checkpoint of a young buffer stays small."""
        state = {
            "obs": self.obs[: self.count].clone(),
            "actions": self.actions[: self.count].clone(),
            "rewards": self.rewards[: self.count].clone(),
            "terminated": self.terminated[: self.count].clone(),
            "truncated": self.truncated[: self.count].clone(),
            "valid": self.valid[: self.count].clone(),
            "position": torch.tensor([self.pos, self.count]),
            "max_priority": torch.tensor(self.max_priority, dtype=torch.float64),
        }
        if self.priorities is not None:
            state["priorities"] = torch.from_numpy(self.priorities.leaves().copy())
        if self.masks is not None:
            state["masks"] = self.masks[: self.count].clone()
        if self.costs is not None:
            state["costs"] = self.costs[: self.count].clone()
        if self.kept:
            state.update({f"kept/{k}": v for k, v in self.kept.items()})
            state["kept_share"] = torch.tensor(self.kept_share, dtype=torch.float64)
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.pos, self.count = (int(v) for v in state["position"])
        names = ["obs", "actions", "rewards", "terminated", "truncated", "valid"]
        if "masks" in state:
            if self.masks is None:
                self._make_masks(state["masks"].shape[-1])
            names.append("masks")
        if self.costs is not None:
            if "costs" not in state:
                raise ValueError("replay buffer has no costs; this constrained run's holds them")
            names.append("costs")
        for name in names:
            target = getattr(self, name)
            source = state[name]
            if source.shape[1:] != target.shape[1:] or len(source) != self.count:
                raise ValueError(
                    f"replay buffer '{name}' has shape {tuple(source.shape)}; this buffer "
                    f"holds {tuple(target.shape)}"
                )
            target[: self.count] = source
        self.max_priority = float(state["max_priority"])
        self.kept = {k[len("kept/") :]: v for k, v in state.items() if k.startswith("kept/")}
        self.kept_share = float(state["kept_share"]) if "kept_share" in state else 0.0
        if self.priorities is not None and "priorities" in state:
            self.priorities.update(np.arange(self.priorities.size), state["priorities"].numpy())
