"""Everything a run needs to continue, listed once: what a checkpoint saves is what resume restores.

A method registers each piece of its training state when it builds it::

    state = TrainState()
    state.module("model", policy)                  # parameters and buffers (normalizer statistics)
    state.optimizer("optimizer", optimizer)        # moments, step counts, param groups
    state.numpy_rng("rng_replay", rng)             # a NumPy generator's exact position
    state.torch_rng("rng_minibatches", generator)  # a torch generator's exact position
    state.stateful("replay", buffer)               # any object with state_dict/load_state_dict
    state.fields("progress", counters, "step", "updates")   # JSON-ready attributes

and the session adds what every run has (global RNGs, the envs, its own counters). ``save()`` gives
tensors per component (safetensors files) and JSON-ready values (``meta.json``); ``load`` puts them
back. One list serves both directions, so a piece cannot be saved and then forgotten on resume.

**Names** (a piece's name is its file's, ``<name>.safetensors``, and its key in ``meta.json``):

    model                 the agent's networks: the parameters and buffers an agent loads
    optimizer             the optimizer, when there is one; ``optimizer_<part>`` when there are
                          several (optimizer_actor, optimizer_critic, optimizer_alpha)
    rng_<purpose>         every random generator, by what it draws: rng_minibatches, rng_replay,
                          rng_noise, rng_mixture, rng_discriminator; rng_global for Python's,
                          NumPy's and torch's global ones (the session's)
    progress              the loop's counters (steps, updates); ``progress_<what>`` for others
    anything else         the noun it holds: replay, reward_scaler, noise, dataset, env,
                          session, best_model, discriminator

Checkpoints written before these names load through ``RENAMED``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mentor.errors import CheckpointError

Tensors = dict[str, torch.Tensor]

# The names of pieces in checkpoints written before the convention above -> their names now.
RENAMED = {
    "generator": "rng_minibatches",
    "sampler": "rng_replay",
    "noise_rng": "rng_noise",
    "mixture": "rng_mixture",
    "discriminator_generator": "rng_discriminator",
    "rng": "rng_global",
    "discriminator_optimizer": "optimizer_discriminator",
    "actor_optimizer": "optimizer_actor",
    "critic_optimizer": "optimizer_critic",
    "loop": "progress",
    "target_sync": "progress_target",
}


@dataclass
class _Piece:
    save: Callable[[], tuple[Tensors | None, Any]]
    load: Callable[[Tensors | None, Any], None]


class TrainState:
    def __init__(self) -> None:
        self._pieces: dict[str, _Piece] = {}

    def add(
        self,
        name: str,
        save: Callable[[], tuple[Tensors | None, Any]],
        load: Callable[[Tensors | None, Any], None],
    ) -> None:
        """The general form: ``save() -> (tensors or None, JSON-ready value or None)``."""
        if name in self._pieces:
            raise ValueError(f"training state '{name}' is registered twice")
        self._pieces[name] = _Piece(save, load)

    def module(self, name: str, module: torch.nn.Module) -> None:
        from mentor.agent import load_weights

        self.add(
            name,
            lambda: (module.state_dict(), None),
            lambda tensors, _: load_weights(module, tensors or {}, name),
        )

    def optimizer(self, name: str, optimizer: torch.optim.Optimizer) -> None:
        def save() -> tuple[Tensors, Any]:
            state = optimizer.state_dict()
            tensors = {
                f"{index}.{key}": value if torch.is_tensor(value) else torch.tensor(value)
                for index, values in state["state"].items()
                for key, value in values.items()
            }
            return tensors, state["param_groups"]

        def load(tensors: Tensors | None, groups: Any) -> None:
            state: dict[int, Tensors] = {}
            for key, value in (tensors or {}).items():
                index, _, field = key.partition(".")
                state.setdefault(int(index), {})[field] = value
            optimizer.load_state_dict({"state": state, "param_groups": groups})

        self.add(name, save, load)

    def numpy_rng(self, name: str, rng: np.random.Generator) -> None:
        def load(_: Any, value: Any) -> None:
            rng.bit_generator.state = value

        self.add(name, lambda: (None, rng.bit_generator.state), load)

    def torch_rng(self, name: str, generator: torch.Generator) -> None:
        self.add(
            name,
            lambda: ({"state": generator.get_state()}, None),
            lambda tensors, _: generator.set_state(tensors["state"]),
        )

    def stateful(self, name: str, obj: Any) -> None:
        """An object with ``state_dict() -> tensors`` and ``load_state_dict(tensors)``."""
        self.add(name, lambda: (obj.state_dict(), None), lambda t, _: obj.load_state_dict(t))

    def fields(self, name: str, obj: Any, *attributes: str) -> None:
        """Plain attributes of ``obj`` (counters, lists of floats), saved as JSON."""

        def load(_: Any, values: dict[str, Any]) -> None:
            for attribute in attributes:
                setattr(obj, attribute, values[attribute])

        self.add(name, lambda: (None, {a: getattr(obj, a) for a in attributes}), load)

    # --- both directions ---------------------------------------------------------------------

    def save(self, exclude: Iterable[str] = ()) -> tuple[dict[str, Tensors], dict[str, Any]]:
        """(tensors per component, JSON-ready values per piece)."""
        components, values = {}, {}
        for name, piece in self._pieces.items():
            if name in exclude:
                continue
            tensors, value = piece.save()
            if tensors is not None:
                components[name] = tensors
            if value is not None:
                values[name] = value
        return components, values

    def load(self, components: dict[str, Tensors], values: dict[str, Any], source: str) -> None:
        """Restore every piece; a checkpoint that lacks one cannot continue this run."""
        components = {RENAMED.get(k, k): v for k, v in components.items()}
        values = {RENAMED.get(k, k): v for k, v in values.items()}
        missing = [n for n in self._pieces if n not in components and n not in values]
        if missing:
            raise CheckpointError(
                f"'{source}' cannot resume this run: it has no {', '.join(missing)} (a best/ "
                "checkpoint leaves the replay buffer out; resume from a periodic or final one)"
            )
        for name, piece in self._pieces.items():
            piece.load(components.get(name), values.get(name))
