"""A dataset of decisions: transitions grouped into episodes, with the spaces they live in.

Demonstrations recorded from an agent or a person, a Minari dataset, and a table of logged
decisions (one row per decision) all become a ``Dataset`` in memory:

    observations    the observation at each decision, in the env's own form, batched: an array
                    (N, *shape), or a dict of such arrays for a Dict space
    actions         (N, *shape), in the env's form
    rewards         (N,) float64 (0 where the data has none)
    terminations    (N,) bool: the episode ended in a terminal state after this decision
    truncations     (N,) bool: the episode was cut off after this decision
    episode_starts  (E,) int64, increasing, the first one 0: episode e is rows
                    episode_starts[e] to episode_starts[e + 1] (or N)
    final_observations  the observation after each episode's last decision, batched (E, ...),
                    or None (a table of decisions has none)

Rows of one episode are consecutive. Learning from it (behaviour cloning, DAgger, GAIL) uses
``encoded_observations()``: the observations as mentor's networks read them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from gymnasium import spaces

from mentor.envs.spaces import obs_encoder
from mentor.errors import DatasetError


@dataclass
class Dataset:
    observation_space: spaces.Space
    action_space: spaces.Space
    observations: Any
    actions: np.ndarray
    rewards: np.ndarray
    terminations: np.ndarray
    truncations: np.ndarray
    episode_starts: np.ndarray
    final_observations: Any = None
    source: str = "dataset"

    def __post_init__(self) -> None:
        n = len(self.actions)
        if n == 0:
            raise DatasetError(f"{self.source} is empty: it has no transitions")
        for name in ("rewards", "terminations", "truncations"):
            if len(getattr(self, name)) != n:
                raise DatasetError(
                    f"{self.source}: {name} has {len(getattr(self, name))} rows, actions {n}"
                )
        if _rows(self.observations) != n:
            raise DatasetError(
                f"{self.source}: observations has {_rows(self.observations)} rows, actions {n}"
            )
        starts = np.asarray(self.episode_starts, dtype=np.int64)
        if len(starts) == 0 or starts[0] != 0 or np.any(np.diff(starts) <= 0) or starts[-1] >= n:
            raise DatasetError(
                f"{self.source}: episode_starts must increase from 0 and stay below {n}"
            )
        self.episode_starts = starts

    # --- shape ---------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def num_episodes(self) -> int:
        return len(self.episode_starts)

    def episode_bounds(self) -> Iterator[tuple[int, int]]:
        ends = [*self.episode_starts[1:], len(self)]
        yield from zip(self.episode_starts.tolist(), [int(e) for e in ends], strict=True)

    def episode_lengths(self) -> np.ndarray:
        return np.diff(np.append(self.episode_starts, len(self)))

    def episode_returns(self) -> np.ndarray:
        return np.add.reduceat(self.rewards.astype(np.float64), self.episode_starts)

    def episode_index(self) -> np.ndarray:
        """The episode of each row."""
        return np.repeat(np.arange(self.num_episodes), self.episode_lengths())

    # --- views ---------------------------------------------------------------------------------

    def encoded_observations(self) -> np.ndarray:
        encode, _ = obs_encoder(self.observation_space)
        return encode(self.observations)

    def episodes(self, indices: np.ndarray | list[int]) -> Dataset:
        """The dataset of the given episodes, in that order."""
        indices = np.asarray(indices, dtype=np.int64)
        if len(indices) == 0:
            raise DatasetError(f"{self.source}: a subset of no episodes")
        bounds = list(self.episode_bounds())
        rows = np.concatenate([np.arange(*bounds[i]) for i in indices])
        lengths = self.episode_lengths()[indices]
        finals = None
        if self.final_observations is not None:
            finals = _take(self.final_observations, indices)
        return replace(
            self,
            observations=_take(self.observations, rows),
            actions=self.actions[rows],
            rewards=self.rewards[rows],
            terminations=self.terminations[rows],
            truncations=self.truncations[rows],
            episode_starts=np.concatenate([[0], np.cumsum(lengths)[:-1]]),
            final_observations=finals,
        )

    # --- checks --------------------------------------------------------------------------------

    def check_spaces(self, observation_space: spaces.Space, action_space: spaces.Space) -> None:
        """The env's spaces must be the dataset's: say which differs, with both shapes."""
        for what, ours, theirs in (
            ("observation", self.observation_space, observation_space),
            ("action", self.action_space, action_space),
        ):
            if ours != theirs:
                raise DatasetError(
                    f"{self.source}: its {what} space {ours} (shape {ours.shape}) does not match "
                    f"the env's {theirs} (shape {theirs.shape})"
                )

    # --- summary -------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """What ``mentor dataset info`` prints: sizes, returns, spaces, action distribution."""
        returns = self.episode_returns()
        lengths = self.episode_lengths()
        info: dict[str, Any] = {
            "source": self.source,
            "episodes": self.num_episodes,
            "steps": len(self),
            "return_mean": float(returns.mean()),
            "return_std": float(returns.std()),
            "return_min": float(returns.min()),
            "return_max": float(returns.max()),
            "length_mean": float(lengths.mean()),
            "length_min": int(lengths.min()),
            "length_max": int(lengths.max()),
            "observation_space": str(self.observation_space),
            "action_space": str(self.action_space),
        }
        if isinstance(self.action_space, spaces.Discrete):
            counts = np.bincount(
                self.actions.astype(np.int64) - int(self.action_space.start),
                minlength=int(self.action_space.n),
            )
            info["action_counts"] = {
                str(int(self.action_space.start) + a): int(c) for a, c in enumerate(counts)
            }
        else:
            flat = self.actions.reshape(len(self), -1).astype(np.float64)
            info["action_mean"] = flat.mean(0).round(6).tolist()
            info["action_std"] = flat.std(0).round(6).tolist()
        return info


def _rows(batch: Any) -> int:
    if isinstance(batch, dict):
        return _rows(next(iter(batch.values())))
    return len(batch)


def _take(batch: Any, rows: np.ndarray) -> Any:
    if isinstance(batch, dict):
        return {key: _take(value, rows) for key, value in batch.items()}
    return batch[rows]


def kfold(num_items: int, folds: int, rng: np.random.Generator) -> list[np.ndarray]:
    """A random partition of ``range(num_items)`` into ``folds`` parts of near-equal size."""
    if not 2 <= folds <= num_items:
        raise DatasetError(f"{folds}-fold cross-validation needs 2 to {num_items} folds")
    return [np.sort(part) for part in np.array_split(rng.permutation(num_items), folds)]


def split(
    num_items: int, validation_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) item indices; at least one of each when there are two items, and
    every item to training when ``validation_fraction`` is 0 (nothing held out)."""
    if validation_fraction == 0:
        return np.arange(num_items), np.zeros(0, dtype=np.int64)
    if num_items < 2:
        raise DatasetError(f"a validation split needs 2 episodes or more, the data has {num_items}")
    count = min(max(1, round(num_items * validation_fraction)), num_items - 1)
    order = rng.permutation(num_items)
    return np.sort(order[count:]), np.sort(order[:count])
