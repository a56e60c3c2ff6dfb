"""Choosing the torch device and CPU threads."""

from __future__ import annotations

import torch


def choose_device(name: str) -> torch.device:
    """'auto' picks CUDA when present; 'cuda' without a GPU is a clear error."""
    from mentor.errors import ConfigError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for but torch sees no CUDA GPU; use cpu or auto")
    return torch.device(name)


def set_threads(num_threads: int | None) -> None:
    """One thread is fastest for the small networks of RL on a CPU, and bitwise repeatable."""
    if num_threads is not None and torch.get_num_threads() != num_threads:
        torch.set_num_threads(num_threads)
