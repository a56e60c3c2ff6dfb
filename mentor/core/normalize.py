"""Running statistics for observation and reward normalization, saved with the agent."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class RunningMeanStd(nn.Module):
    """Mean and variance over every sample seen, merged batch by batch (Chan et al. 1979).

    Buffers, not parameters: they travel in the agent's state dict, so a loaded agent normalizes
    exactly as it did in training.
    """

    def __init__(self, shape: tuple[int, ...], epsilon: float = 1e-4) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(epsilon, dtype=torch.float64))

    @torch.no_grad()
    def update(self, batch: torch.Tensor) -> None:
        batch = batch.to(torch.float64)
        batch_mean = batch.mean(0)
        batch_var = batch.var(0, unbiased=False)
        n = batch.shape[0]
        delta = batch_mean - self.mean
        total = self.count + n
        self.mean += delta * n / total
        m2 = self.var * self.count + batch_var * n + delta.square() * self.count * n / total
        self.var.copy_(m2 / total)
        self.count.copy_(total)


class ObsNormalizer(nn.Module):
    """(obs - mean) / std, clipped; the identity when disabled."""

    def __init__(self, shape: tuple[int, ...], enabled: bool, clip: float = 10.0) -> None:
        super().__init__()
        self.enabled = enabled
        self.clip = clip
        self.stats = RunningMeanStd(shape) if enabled else None

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.stats is None:
            return obs
        std = (self.stats.var + 1e-8).sqrt().to(obs.dtype)
        return ((obs - self.stats.mean.to(obs.dtype)) / std).clamp(-self.clip, self.clip)

    def update(self, obs: torch.Tensor) -> None:
        if self.stats is not None:
            self.stats.update(obs)


class RewardScaler:
    """Divide rewards by the running std of the discounted return (as in Engstrom et al. 2020).

    Training only: evaluation always reports the env's own rewards.
    """

    def __init__(self, num_envs: int, gamma: float, enabled: bool) -> None:
        self.enabled = enabled
        self.gamma = gamma
        self.returns = np.zeros(num_envs, dtype=np.float64)
        self.stats = RunningMeanStd(())

    def __call__(self, rewards: np.ndarray, done: np.ndarray) -> np.ndarray:
        if not self.enabled:
            return rewards
        self.returns = self.returns * self.gamma + rewards
        self.stats.update(torch.from_numpy(self.returns))
        self.returns[done] = 0.0
        scale = float(np.sqrt(self.stats.var.item() + 1e-8))
        return (rewards / scale).astype(np.float32)

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {f"stats.{k}": v for k, v in self.stats.state_dict().items()}
        return {**state, "returns": torch.from_numpy(self.returns.copy())}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.stats.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("stats.")})
        self.returns = state["returns"].numpy().copy()
