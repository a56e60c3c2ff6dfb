"""mentor: train agents along one workflow, from environment to convergence."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["evaluate", "export", "load", "resume", "train"]

if TYPE_CHECKING:
    from mentor.api import evaluate, export, load, resume, train


def __dir__() -> list[str]:
    return sorted([*__all__, "__version__"])


def __getattr__(name: str) -> Any:
    # torch is imported on first use, so `mentor --help` stays quick.
    if name in __all__:
        from mentor import api

        return getattr(api, name)
    raise AttributeError(f"module 'mentor' has no attribute '{name}'")
