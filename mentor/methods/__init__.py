"""The training methods, one readable file each. ``METHODS`` maps a name to its train function's
module, imported only when used."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from mentor.errors import ConfigError, did_you_mean

METHODS = {"ppo": "mentor.methods.ppo"}


def train_function(name: str) -> Callable:
    if name not in METHODS:
        raise ConfigError(f"unknown method '{name}'" + did_you_mean(name, METHODS))
    return importlib.import_module(METHODS[name]).train
