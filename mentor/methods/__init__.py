"""The training methods, one readable file each. ``METHODS`` maps a name to its module, imported
only when used. Each module has ``train(experiment, run) -> Result`` and
``build_networks(experiment, obs_space, action_space) -> nn.Module``, whose ``predict(obs,
deterministic)`` gives actions."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING

from mentor.errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    from gymnasium import spaces
    from torch import nn

    from mentor.experiment import Experiment

METHODS = {
    "ppo": "mentor.methods.ppo",
    "dqn": "mentor.methods.dqn",
    "sac": "mentor.methods.sac",
    "td3": "mentor.methods.td3",
    "bc": "mentor.methods.bc",
    "dagger": "mentor.methods.dagger",
    "gail": "mentor.methods.gail",
}


def method_module(name: str) -> ModuleType:
    if name not in METHODS:
        raise ConfigError(f"unknown method '{name}'" + did_you_mean(name, METHODS))
    return importlib.import_module(METHODS[name])


def train_function(name: str) -> Callable:
    return method_module(name).train


def build_networks(
    experiment: Experiment, obs_space: spaces.Space, action_space: spaces.Space
) -> nn.Module:
    """The method's networks, freshly initialised (seeded by torch's generator)."""
    return method_module(experiment.method.name).build_networks(experiment, obs_space, action_space)
