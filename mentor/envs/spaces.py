"""Spaces at the edge: observations become one array, actions go back to the env's form.

Every observation space mentor supports becomes a float32 vector, except images
(H, W, C uint8 Boxes), which stay uint8 until the network scales them: a quarter of the memory.
A Dict's ``"action_mask"`` entry is not encoded: it says which actions are allowed, for the
policy to honour, and is no input of the network (``envs/masks.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from gymnasium import spaces

from mentor.errors import EnvError, UnsupportedSpaceError

SUPPORTED_OBS = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary, spaces.Dict)
SUPPORTED_ACTIONS = (spaces.Discrete, spaces.Box, spaces.MultiDiscrete, spaces.MultiBinary)

Encoder = Callable[[object], np.ndarray]
Array = TypeVar("Array", np.ndarray, Any)  # a NumPy array or a torch tensor

# The Dict observation entry (PettingZoo classic's) or info key that holds an action mask.
MASK_KEY = "action_mask"


def has_action_mask(space: spaces.Space) -> bool:
    """A Dict observation space with an ``"action_mask"`` entry."""
    return isinstance(space, spaces.Dict) and MASK_KEY in space.spaces


def _observed_keys(space: spaces.Dict) -> list[str]:
    """The entries of a Dict with an action mask that the network reads: all but the mask."""
    keys = [key for key in space.spaces if key != MASK_KEY]
    if not keys:
        raise EnvError(
            f"the observation space {describe(space)} holds only an action mask: there is "
            "nothing for the network to read"
        )
    return keys


def observed_space(space: spaces.Space) -> spaces.Space:
    """What the network reads of an observation space: all of it but a Dict's action mask. A
    Dict left with one entry (PettingZoo classic's ``{"observation", "action_mask"}``) is that
    entry's space, encoded as it would be alone."""
    if not has_action_mask(space):
        return space
    keys = _observed_keys(space)
    if len(keys) == 1:
        return space.spaces[keys[0]]
    return spaces.Dict({key: space.spaces[key] for key in keys})


def is_image(space: spaces.Space) -> bool:
    """An (H, W, C) uint8 Box (alone, or beside an action mask): handled by a CNN, kept uint8."""
    space = observed_space(space)
    return isinstance(space, spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3


def symbol_grid(space: spaces.Space) -> tuple[int, int, int, int] | None:
    """Where a grid of symbols lies in the encoded observation: an (H, W, C) MultiDiscrete whose
    cells all count alike (MiniGrid's view: object, colour, state per cell), alone or an entry
    of a Dict. Returns (offset, H, W, depth): the grid's one-hots start at ``offset`` of the
    encoded vector, cell by cell (row-major), ``depth`` numbers a cell; None for any other
    space."""
    space = observed_space(space)
    entries = list(space.spaces.values()) if isinstance(space, spaces.Dict) else [space]
    offset = 0
    for entry in entries:
        if isinstance(entry, spaces.MultiDiscrete) and entry.nvec.ndim == 3:
            nvec = entry.nvec
            if (nvec == nvec[:1, :1]).all():
                return offset, nvec.shape[0], nvec.shape[1], int(nvec[0, 0].sum())
        if is_image(entry) or isinstance(entry, spaces.Dict):
            return None
        offset += _obs_encoder(entry, "a Dict entry")[1][0]
    return None


def board_planes(space: spaces.Space) -> tuple[int, int, int, int] | None:
    """Where a board of planes lies in the encoded observation: an (H, W, C) Box that is not
    an image (PettingZoo's board games: Connect Four's 6 x 7 x 2 planes of pieces), alone or an
    entry of a Dict. Returns (offset, H, W, C) as ``symbol_grid`` does; None otherwise."""
    space = observed_space(space)
    entries = list(space.spaces.values()) if isinstance(space, spaces.Dict) else [space]
    offset = 0
    for entry in entries:
        if isinstance(entry, spaces.Box) and len(entry.shape) == 3 and not is_image(entry):
            return (offset, *(int(n) for n in entry.shape))  # type: ignore[return-value]
        if is_image(entry) or isinstance(entry, spaces.Dict):
            return None
        offset += _obs_encoder(entry, "a Dict entry")[1][0]
    return None


def _names(kinds: tuple[type, ...]) -> str:
    return ", ".join(kind.__name__ for kind in kinds)


def unsupported_space(what: str, space: object, supported: str) -> EnvError:
    """The error for a valid space mentor does not support yet (``UnsupportedSpaceError``): its
    kind, and the supported ones; for something that is not a space at all, an ``EnvError``."""
    if not isinstance(space, spaces.Space):
        return EnvError(f"{what} is a {type(space).__name__}, not a gymnasium.spaces.Space")
    return UnsupportedSpaceError(
        f"{what} is a {type(space).__name__} space ({space}), which mentor does not support yet; "
        f"supported: {supported}"
    )


def obs_encoder(space: spaces.Space) -> tuple[Encoder, tuple[int, ...]]:
    """A function from a batch of observations (first axis: envs) to one array, and its shape.

    A space mentor does not support yet (Tuple, Sequence, Graph, Text, ...) raises
    ``UnsupportedSpaceError`` naming it, and the Dict entry it is in. A Dict's action mask is
    left out (``observed_space``); the observations still need it among their keys.
    """
    what = "the observation space"
    if not has_action_mask(space):
        return _obs_encoder(space, what)
    keys, observed = set(space.spaces), _observed_keys(space)
    if len(observed) == 1:
        (key,) = observed
        encode_one, shape = _obs_encoder(space.spaces[key], f"entry '{key}' of {what}")

        def encode(obs: object) -> np.ndarray:
            _check_keys(obs, keys)
            return encode_one(obs[key])  # type: ignore[index]

        return encode, shape
    encode_rest, shape = _obs_encoder(observed_space(space), what)

    def encode(obs: object) -> np.ndarray:
        _check_keys(obs, keys)
        return encode_rest({key: obs[key] for key in observed})  # type: ignore[index]

    return encode, shape


def _check_keys(obs: object, keys: set[str]) -> None:
    """Raise ``EnvError`` for a Dict observation whose keys are not the space's."""
    if not isinstance(obs, dict) or set(obs) != keys:
        got = set(obs) if isinstance(obs, dict) else type(obs).__name__
        missing = sorted(keys - got) if isinstance(got, set) else sorted(keys)
        extra = sorted(got - keys) if isinstance(got, set) else []
        raise EnvError(
            f"Dict observation keys differ from the space: missing {missing}, extra {extra}"
        )


def _obs_encoder(space: spaces.Space, what: str) -> tuple[Encoder, tuple[int, ...]]:
    if is_image(space):
        return (lambda obs: np.asarray(obs)), space.shape
    if isinstance(space, spaces.Box):
        return (lambda obs: np.asarray(obs, dtype=np.float32).reshape(len(obs), -1)), (
            int(np.prod(space.shape)),
        )
    if isinstance(space, spaces.Discrete):
        eye = np.eye(space.n, dtype=np.float32)
        return (lambda obs: eye[np.asarray(obs) - space.start]), (int(space.n),)
    if isinstance(space, spaces.MultiBinary):
        size = int(np.prod(space.shape))
        return (lambda obs: np.asarray(obs, dtype=np.float32).reshape(len(obs), -1)), (size,)
    if isinstance(space, spaces.MultiDiscrete):
        nvec, start = space.nvec.reshape(-1), space.start.reshape(-1)
        offsets = np.concatenate([[0], np.cumsum(nvec)[:-1]])
        total = int(nvec.sum())

        def multi_onehot(obs: object) -> np.ndarray:
            obs = np.asarray(obs).reshape(-1, len(nvec)) - start
            out = np.zeros((len(obs), total), dtype=np.float32)
            np.put_along_axis(out, obs + offsets, 1.0, axis=1)
            return out

        return multi_onehot, (total,)
    if isinstance(space, spaces.Dict):
        for key, sub in space.spaces.items():
            if is_image(sub):
                raise UnsupportedSpaceError(
                    f"{what} is a Dict space with an image entry '{key}' ({sub}), which mentor "
                    f"does not support yet; supported: {_names(SUPPORTED_OBS)} (a Dict of "
                    "non-image entries)"
                )
        parts = {
            key: _obs_encoder(sub, f"entry '{key}' of {what}") for key, sub in space.spaces.items()
        }
        keys = set(parts)

        def concat(obs: object) -> np.ndarray:
            _check_keys(obs, keys)
            return np.concatenate([enc(obs[key]) for key, (enc, _) in parts.items()], axis=1)

        return concat, (sum(shape[0] for _, shape in parts.values()),)
    raise unsupported_space(what, space, _names(SUPPORTED_OBS))


def describe(space: spaces.Space) -> str:
    """A space in a few words, for messages: a Box's bounds left out (they can be long)."""
    if isinstance(space, spaces.Box):
        return f"Box(shape={space.shape}, dtype={space.dtype})"
    if isinstance(space, spaces.Dict):
        return "Dict(" + ", ".join(f"{k}: {describe(v)}" for k, v in space.spaces.items()) + ")"
    return str(space)


def check_action_space(space: spaces.Space) -> None:
    """Raise ``UnsupportedSpaceError`` for an action space mentor does not support yet (which
    methods support which supported kind is ``methods.configs.check_supported``'s to say)."""
    if not isinstance(space, SUPPORTED_ACTIONS):
        raise unsupported_space("the action space", space, _names(SUPPORTED_ACTIONS))


def to_env_actions(space: spaces.Space, actions: np.ndarray) -> np.ndarray:
    """Network actions → the env's form. Box actions are clipped to the bounds (documented)."""
    if isinstance(space, spaces.Box):
        actions = actions.reshape(-1, *space.shape)
        return np.clip(actions, space.low, space.high).astype(space.dtype, copy=False)
    if isinstance(space, spaces.Discrete):
        return actions + space.start if space.start else actions
    if isinstance(space, spaces.MultiDiscrete):
        return (actions + space.start.reshape(-1)).reshape(-1, *space.shape)
    return actions.astype(space.dtype, copy=False).reshape(-1, *space.shape)


def to_network_actions(
    space: spaces.Space, actions: np.ndarray, unit_box: bool = False
) -> np.ndarray:
    """Env actions → the network's form (the inverse of ``to_env_actions``): indices from 0
    (int64) for Discrete and MultiDiscrete, 0/1 floats for MultiBinary, flat float32 vectors for
    Box — with ``unit_box`` (SAC's and TD3's networks act in [-1, 1]) rescaled from the bounds
    to [-1, 1] and clipped there. One row per action."""
    n = len(actions)
    if isinstance(space, spaces.Discrete):
        return np.asarray(actions, dtype=np.int64).reshape(n) - int(space.start)
    if isinstance(space, spaces.MultiDiscrete):
        start = np.asarray(space.start, dtype=np.int64).reshape(-1)
        return np.asarray(actions, dtype=np.int64).reshape(n, -1) - start
    flat = np.asarray(actions, dtype=np.float32).reshape(n, -1)
    if isinstance(space, spaces.Box) and unit_box:
        low, high = (np.asarray(b, np.float32).reshape(-1) for b in (space.low, space.high))
        flat = np.clip(2.0 * (flat - low) / (high - low) - 1.0, -1.0, 1.0)
    return np.ascontiguousarray(flat)


def unit_to_bounds(actions: Array, low: Array, high: Array) -> Array:
    """[-1, 1] → [low, high], per dimension (NumPy or torch): what the env gets from a network
    that acts in [-1, 1]."""
    return low + (actions + 1.0) * 0.5 * (high - low)


def space_to_json(space: spaces.Space) -> dict:
    """A space as JSON-ready data, to rebuild the agent's networks without the env."""
    if isinstance(space, spaces.Box):
        low, high = space.low, space.high
        same = low.size and (low == low.flat[0]).all() and (high == high.flat[0]).all()
        return {
            "type": "Box",
            "shape": list(space.shape),
            "dtype": str(space.dtype),
            "low": float(low.flat[0]) if same else low.tolist(),
            "high": float(high.flat[0]) if same else high.tolist(),
        }
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": space.nvec.tolist(), "start": space.start.tolist()}
    if isinstance(space, spaces.MultiBinary):
        n = space.n
        return {"type": "MultiBinary", "n": int(n) if np.ndim(n) == 0 else list(n)}
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": {k: space_to_json(v) for k, v in space.spaces.items()}}
    raise EnvError(f"space {space} cannot be saved")


def space_from_json(data: dict) -> spaces.Space:
    kind = data["type"]
    if kind == "Box":
        shape = tuple(data["shape"])
        low = np.broadcast_to(np.asarray(data["low"], dtype=data["dtype"]), shape)
        high = np.broadcast_to(np.asarray(data["high"], dtype=data["dtype"]), shape)
        return spaces.Box(low.copy(), high.copy(), shape=shape, dtype=data["dtype"])
    if kind == "Discrete":
        return spaces.Discrete(data["n"], start=data["start"])
    if kind == "MultiDiscrete":
        return spaces.MultiDiscrete(data["nvec"], start=data["start"])
    if kind == "MultiBinary":
        return spaces.MultiBinary(data["n"])
    if kind == "Dict":
        return spaces.Dict({k: space_from_json(v) for k, v in data["spaces"].items()})
    raise EnvError(f"unknown space type '{kind}'")


def check_same_spaces(
    index: int, env: object, observation_space: spaces.Space, action_space: spaces.Space
) -> None:
    """Raise EnvError when copy ``index`` of a vector env has other spaces than copy 0."""
    for kind, expected in (("observation", observation_space), ("action", action_space)):
        actual = getattr(env, f"{kind}_space")
        if actual != expected:
            raise EnvError(
                f"env {index} of the vector env has {kind} space {actual}, but the vector env's "
                f"(env 0's) is {expected}: every copy must have the same spaces (do the env's "
                "kwargs or its constructor vary them?)"
            )
