"""Action masks: which actions an env allows in each state, read and checked once, at the edge.

Where a vector env's masks come from is decided once (``mask_source``):

- ``"obs"``: its observation space is a Dict with an ``"action_mask"`` entry (PettingZoo
  classic's ``{"observation", "action_mask"}``). The network does not read that entry
  (``spaces.obs_encoder`` leaves it out).
- ``"info"``: its first reset's info has ``info["action_mask"]``; it must then give one at every
  reset and step where its agent acts.

A mask holds one 0/1 (or bool) entry per action of a Discrete(n) space, and for a MultiDiscrete
space the per-dimension masks concatenated, ``sum(nvec)`` entries; nonzero means allowed. Masks
are for those two spaces only. ``MaskReader.read`` turns a batch into an ``(num_envs, size)``
bool array and checks it: a mask that allows no action (for MultiDiscrete, no value of some
dimension) where the agent must act raises ``AllMaskedError`` naming the env copy, the vector
step and, for multi-agent envs, the agent. Where the next action is ignored (the copy's
episode just ended; next-step autoreset resets it) a missing or all-false mask reads as
all-true: a finished board game allows no move, and that row must still be a valid mask.

The multi-agent adapter reads each agent's masks with a ``MaskReader`` of its own (``agent=``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from gymnasium import spaces

from mentor.envs.spaces import MASK_KEY, describe, has_action_mask
from mentor.errors import AllMaskedError, EnvError

MaskSource = Literal["obs", "info"]


def mask_nvec(action_space: spaces.Space, what: str) -> tuple[int, ...]:
    """The number of actions in each dimension a mask covers; ``EnvError`` for an action space
    that takes no mask. ``what`` says who has the mask ("env 'X' gives action masks")."""
    if isinstance(action_space, spaces.Discrete):
        return (int(action_space.n),)
    if isinstance(action_space, spaces.MultiDiscrete):
        return tuple(int(n) for n in np.asarray(action_space.nvec).reshape(-1))
    raise EnvError(
        f"{what}, but its action space is {describe(action_space)}: action masks are for "
        "Discrete and MultiDiscrete action spaces"
    )


def mask_offsets(nvec: tuple[int, ...]) -> np.ndarray:
    """Where each dimension's entries start in a mask."""
    return np.concatenate([[0], np.cumsum(nvec)[:-1]]).astype(np.intp)


def allows_some(mask: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per row of ``(N, size)`` bool masks: whether every dimension allows some action."""
    return np.logical_or.reduceat(mask, offsets, axis=1).all(1)


def obs_mask_source(
    observation_space: spaces.Space, action_space: spaces.Space, env: str
) -> MaskSource | None:
    """``"obs"`` when the observation space holds a mask (checked against the action space:
    ``EnvError`` naming both when it does not fit), else None. ``env`` names the env."""
    if not has_action_mask(observation_space):
        return None
    what = f"{env} gives action masks (observation entry '{MASK_KEY}')"
    size = sum(mask_nvec(action_space, what))
    entry = observation_space.spaces[MASK_KEY]
    if not isinstance(entry, spaces.MultiBinary | spaces.Box) or int(np.prod(entry.shape)) != size:
        raise EnvError(
            f"{env}: observation entry '{MASK_KEY}' is {describe(entry)}; for the action space "
            f"{describe(action_space)} it must hold {size} zeros and ones (a MultiBinary({size}) "
            f"or a Box of shape ({size},))"
        )
    return "obs"


def sample_allowed(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One action per row of a Discrete mask ``(N, n)``, uniform over the allowed ones: the
    argmax of independent uniforms, with the masked ones below every draw."""
    return np.where(mask, rng.random(mask.shape), -1.0).argmax(1)


@dataclass
class MaskReader:
    """Reads and checks the masks of one vector env (of one agent, in a multi-agent env)."""

    nvec: tuple[int, ...]
    source: MaskSource
    env_id: str
    agent: str | None = None
    size: int = field(init=False)
    offsets: np.ndarray = field(init=False)  # where each dimension's entries start

    def __post_init__(self) -> None:
        self.size = sum(self.nvec)
        self.offsets = mask_offsets(self.nvec)

    def read(self, obs: Any, infos: Any, needs_reset: np.ndarray, step: int) -> np.ndarray:
        """The ``(num_envs, size)`` bool masks of a batch: from the raw (not yet encoded) Dict
        observations or from the vector info, as ``source`` says. ``needs_reset`` marks the
        copies whose next action is ignored; ``step`` is the vector step, for messages."""
        n = len(needs_reset)
        if self.source == "obs":
            mask, reported = self._shaped(obs[MASK_KEY], n), np.ones(n, bool)
        else:
            mask, reported = self._from_info(infos, n)
        usable = reported & allows_some(mask, self.offsets)
        if not usable.all():
            for index in np.flatnonzero(~usable & ~needs_reset):
                self._refuse(int(index), mask[index], bool(reported[index]), step)
            mask[~usable] = True  # the copy's next action is ignored: any valid mask does
        return mask

    def _shaped(self, raw: Any, n: int) -> np.ndarray:
        """``(n, size)`` bools, nonzero entries allowed; ``EnvError`` for another size."""
        array = np.asarray(raw)
        if array.dtype == object:  # Gymnasium batches lists in an object array: one per copy
            try:
                array = np.stack([np.ravel(np.asarray(row, dtype=np.float64)) for row in raw])
            except (TypeError, ValueError) as exc:
                raise self._error(f"its {MASK_KEY} is not an array of numbers ({exc})") from None
        if array.size != n * self.size:
            per = "one per action" if len(self.nvec) == 1 else " + ".join(map(str, self.nvec))
            raise self._error(
                f"its {MASK_KEY} has shape {array.shape[1:]} per copy; its action space needs "
                f"{self.size} entries ({per})"
            )
        return array.reshape(n, self.size) != 0

    def _from_info(self, infos: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Masks and which copies reported one (Gymnasium's ``_action_mask``)."""
        if not isinstance(infos, Mapping) or MASK_KEY not in infos:
            return np.ones((n, self.size), bool), np.zeros(n, bool)
        flags = infos.get(f"_{MASK_KEY}")
        reported = np.ones(n, bool) if flags is None else np.asarray(flags, dtype=bool)
        raw = infos[MASK_KEY]
        if np.asarray(raw).dtype == object:  # rows of copies that did not report are None
            ones = np.ones(self.size)
            raw = [row if ok else ones for row, ok in zip(raw, reported, strict=True)]
        return self._shaped(raw, n), reported

    def _refuse(self, index: int, mask: np.ndarray, reported: bool, step: int) -> None:
        """Raise for copy ``index``, which must act but has no usable mask."""
        where = self._where(index, step)
        if not reported:
            raise EnvError(
                f"{where}: no info['{MASK_KEY}'], though the first reset's info had one: an env "
                "whose info gives action masks gives one at every reset and step"
            )
        if len(self.nvec) == 1:
            what = f"no action (of {self.nvec[0]})"
        else:
            parts = np.split(mask, self.offsets[1:])
            dim = next(d for d, part in enumerate(parts) if not part.any())
            what = f"no value of action dimension {dim} (of {self.nvec[dim]})"
        source = "observation" if self.source == "obs" else "info"
        raise AllMaskedError(
            f"{where}: its action mask (from its {source}) allows {what}; an env must allow at "
            "least one action wherever it expects one"
        )

    def _where(self, index: int, step: int) -> str:
        agent = f", agent '{self.agent}'" if self.agent is not None else ""
        return f"env copy {index} of '{self.env_id}'{agent}, vector step {step}"

    def _error(self, problem: str) -> EnvError:
        agent = f" (agent '{self.agent}')" if self.agent is not None else ""
        return EnvError(f"env '{self.env_id}'{agent}: {problem}")
