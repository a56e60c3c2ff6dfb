"""A sum tree: sample indices in proportion to their values in O(log n), vectorized over a batch.

Leaves hold the values; each inner node holds the sum of its two children, so the root is the
total. Sampling walks from the root toward a random point of the total mass.
"""

from __future__ import annotations

import numpy as np


class SumTree:
    def __init__(self, size: int) -> None:
        self.size = size
        self.leaf_start = 1 << max(size - 1, 1).bit_length()  # first leaf of a complete tree
        self.tree = np.zeros(2 * self.leaf_start)  # node 1 is the root; node 0 is unused

    @property
    def total(self) -> float:
        return float(self.tree[1])

    @property
    def nbytes(self) -> int:
        return self.tree.nbytes

    def leaves(self) -> np.ndarray:
        return self.tree[self.leaf_start : self.leaf_start + self.size]

    def update(self, indices: np.ndarray, values: np.ndarray) -> None:
        """Set leaves, then recompute the sums above them, level by level."""
        nodes = np.asarray(indices) + self.leaf_start
        self.tree[nodes] = values
        nodes = np.unique(nodes // 2)
        while nodes[0] >= 1:
            self.tree[nodes] = self.tree[2 * nodes] + self.tree[2 * nodes + 1]
            if nodes[0] == 1:
                break
            nodes = np.unique(nodes // 2)

    def sample(self, count: int, generator: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``count`` indices drawn in proportion to their values (one per equal slice of the
        total, which lowers the variance of the batch), and their probabilities."""
        if self.total <= 0:
            raise ValueError("cannot sample from a sum tree whose values are all zero")
        points = (np.arange(count) + generator.random(count)) * (self.total / count)
        nodes = np.ones(count, dtype=np.int64)
        while nodes[0] < self.leaf_start:
            left = 2 * nodes
            go_right = points >= self.tree[left]
            points = np.where(go_right, points - self.tree[left], points)
            nodes = left + go_right
        # Float round-off can step onto a zero leaf at a slice's edge; move it to the left.
        indices = np.minimum(nodes - self.leaf_start, self.size - 1)
        zero = self.tree[indices + self.leaf_start] <= 0
        if zero.any():
            indices[zero] = self._nonzero_left_of(indices[zero])
        return indices, self.tree[indices + self.leaf_start] / self.total

    def _nonzero_left_of(self, indices: np.ndarray) -> np.ndarray:
        leaves = self.leaves()
        nonzero = np.flatnonzero(leaves > 0)
        position = np.clip(np.searchsorted(nonzero, indices) - 1, 0, len(nonzero) - 1)
        return nonzero[position]
