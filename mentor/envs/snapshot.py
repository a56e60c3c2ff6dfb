"""Environment snapshots: capture the complete state of an env, restore it bit for bit.

mentor promises exact resume: a checkpoint holds the state of every environment, and a resumed
run's envs continue as if the run had never stopped — same observations, same rewards, same
episode ends, same random draws on the next ``reset()``. This module is how.

What a snapshot is
------------------
An env is a chain of layers: wrappers, outermost first, down to the base env (``.env`` leads one
layer in, until ``.unwrapped``). A vector env is a chain too: vector wrappers down to the base
vector env, which for a ``SyncVectorEnv`` holds ordinary envs, each a chain of its own.

:func:`env_snapshot` and :func:`vector_snapshot` walk the chain and record, for each layer, its
class (module and qualified name) and its *own* mutable state: the attributes that ``step`` and
``reset`` write (positions, step counters, flags, the random generator). :func:`restore_env` and
:func:`restore_vector` write it back, after checking that the env's chain has the same classes
in the same order; a snapshot of ``TimeLimit<CartPoleEnv>`` does not go into anything else.
PettingZoo parallel envs (mpe2's among them) have their pair in
:mod:`mentor.envs.snapshot_pettingzoo`, with the same rules and the same values.

A snapshot is a copy: stepping the env afterwards does not change it, and the same snapshot can
be restored any number of times. Its values are plain Python values (None, bool, int, float,
str, lists, tuples, dicts with string keys), numpy arrays and scalars, and
``np.random.Generator`` objects. :func:`to_json` turns one into JSON-ready data and
:func:`from_json` turns it back, exactly: arrays and numpy scalars keep their dtype and their
bits (float32 stays float32, NaN and -0.0 survive), ints of any size survive (a PCG64 state
holds 128-bit ones), a generator comes back as a fresh generator of the same bit generator in
the same state.

How a layer gives its state
---------------------------
1. **The protocol** (for env authors). A class opts in by defining both methods::

       def mentor_snapshot(self) -> dict[str, Any]:
           return {"t": self.t, "_np_random": self._np_random}

       def mentor_restore(self, snapshot: dict[str, Any]) -> None:
           self.t, self._np_random = snapshot["t"], snapshot["_np_random"]

   It covers only the layer's own state: a wrapper leaves out the env it wraps, which gives
   its state itself. mentor copies what ``mentor_snapshot`` returns and hands ``mentor_restore``
   a fresh copy, so both may share objects with the env freely. A base env should include
   Gymnasium's random generator, which lives in ``_np_random`` (and ``_np_random_seed``).
   :func:`snapshot_attributes` and :func:`restore_attributes` write the two methods from a list
   of attribute names. The protocol wins over everything below; a vector env that keeps its
   envs elsewhere (worker processes, say) can give the whole state of its envs this way.
2. **Built-in adapters** for classes that do not opt in: :data:`ADAPTERS` maps a class's
   qualified name to the names of the attributes that make up its state. It covers what
   ``gym.make`` puts around an env (``TimeLimit``, ``OrderEnforcing``, ``PassiveEnvChecker``,
   plus the rendering-only ``HumanRendering`` and ``RenderCollection``), Gymnasium's
   ``Autoreset``, the classic-control envs (CartPole, Pendulum, MountainCar, continuous
   MountainCar, Acrobot) and the native ``CartPoleVectorEnv`` that
   ``gym.make_vec(..., vectorization_mode="vector_entry_point")`` returns. An attribute the
   object does not have yet (Pendulum has no ``state`` before its first reset) is left out of
   the snapshot, and restoring removes it again. :func:`register_adapter` adds a class.
3. **SyncVectorEnv** is built in: its autoreset flags, the last observation of each env (a
   masked reset returns them), and the snapshot of each of its envs.

A layer that does none of these stops the snapshot with :class:`SnapshotUnavailable`, whose
``reason`` names the class. Nothing is guessed: an unknown layer might hold state.

Limits
------
- Adapters match the exact class, never a subclass (a subclass may add state). Subclasses opt
  in or are registered.
- Only state held in the layer's Python attributes is captured. State held elsewhere — a
  physics engine's C structures, worker processes (``AsyncVectorEnv`` is refused for this
  reason), files, sockets — needs the protocol, written by whoever knows where it lives.
- Configuration is not state: constructor arguments, spaces, ``max_episode_steps``, the
  autoreset mode. Restore into an env built the same way; only the classes are checked.
- Rendering (windows, surfaces, clocks, collected frames) is not state.
- A generator comes back with its bit generator's state; the seed sequence it was made from
  (which only ``Generator.spawn`` uses) is not kept.
- Observations and infos already handed out belong to the caller, not to the env.
- The adapters name Gymnasium's private attributes, read from Gymnasium 1.4's source; another
  Gymnasium version may name them differently. The tests replay each env bit for bit, so a
  change shows up there.
"""

from __future__ import annotations

import base64
import contextlib
import math
from collections.abc import Callable, Iterable
from typing import Any

import gymnasium as gym
import numpy as np

__all__ = [
    "ADAPTERS",
    "SnapshotUnavailable",
    "env_snapshot",
    "from_json",
    "register_adapter",
    "restore_attributes",
    "restore_env",
    "restore_vector",
    "snapshot_attributes",
    "to_json",
    "vector_snapshot",
]

FORMAT = 1  # the layout of a snapshot dict, checked on restore

_RNG = ("_np_random", "_np_random_seed")  # gymnasium's Env and VectorEnv keep their generator here

ADAPTERS: dict[str, tuple[str, ...]] = {
    # The wrappers gym.make adds.
    "gymnasium.wrappers.common.TimeLimit": ("_elapsed_steps",),
    "gymnasium.wrappers.common.OrderEnforcing": ("_has_reset",),
    # The (obs, info) it keeps for its data-reuse check over the first steps: a None there
    # would crash its next step, so it travels with the flags.
    "gymnasium.wrappers.common.PassiveEnvChecker": (
        "checked_reset",
        "checked_step",
        "checked_render",
        "checked_data_reuse",
        "close_called",
        "_previous_data",
    ),
    "gymnasium.wrappers.common.Autoreset": ("autoreset",),
    "gymnasium.wrappers.rendering.HumanRendering": (),  # rendering only
    "gymnasium.wrappers.rendering.RenderCollection": (),  # rendering only
    # Classic control: every attribute step and reset write, rendering aside.
    "gymnasium.envs.classic_control.cartpole.CartPoleEnv": (
        "state",
        "steps_beyond_terminated",
        *_RNG,
    ),
    "gymnasium.envs.classic_control.pendulum.PendulumEnv": ("state", "last_u", *_RNG),
    "gymnasium.envs.classic_control.mountain_car.MountainCarEnv": ("state", *_RNG),
    "gymnasium.envs.classic_control.continuous_mountain_car.Continuous_MountainCarEnv": (
        "state",
        *_RNG,
    ),
    "gymnasium.envs.classic_control.acrobot.AcrobotEnv": ("state", *_RNG),
    # Native vector CartPole: reset keeps the bounds from its options (low, high) for the
    # autoresets that step performs later.
    "gymnasium.envs.classic_control.cartpole.CartPoleVectorEnv": (
        "state",
        "steps",
        "prev_done",
        "steps_beyond_terminated",
        "low",
        "high",
        *_RNG,
    ),
}

# SyncVectorEnv's own attributes; its envs are snapshot one by one under the key "envs".
_SYNC_ATTRIBUTES = ("_autoreset_envs", "_env_obs")


class SnapshotUnavailable(Exception):
    """An env layer whose state mentor cannot capture; ``reason`` says which and why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def register_adapter(cls: type, attributes: Iterable[str]) -> None:
    """Declare that ``attributes`` of ``cls`` are all of its state (exact class, not subclasses)."""
    ADAPTERS[qualified_name(cls)] = tuple(attributes)


# --- Snapshot and restore --------------------------------------------------------------------


def env_snapshot(env: gym.Env) -> dict[str, Any]:
    """The state of every layer of ``env``, outermost first, as a new dict of copied values.

    Raises SnapshotUnavailable naming the first layer that neither opts in nor has an adapter.
    """
    return {"format": FORMAT, "layers": [_layer_snapshot(layer) for layer in _chain(env)]}


def restore_env(env: gym.Env, snapshot: dict[str, Any]) -> None:
    """Put ``env`` into the state ``snapshot`` recorded; the snapshot itself is left untouched.

    Raises ValueError, before changing anything, when the env's chain of classes is not the
    snapshot's.
    """
    _check(env, snapshot)
    for layer, record in zip(_chain(env), snapshot["layers"], strict=True):
        _restore_layer(layer, record["state"])


def vector_snapshot(venv: gym.vector.VectorEnv) -> dict[str, Any]:
    """The state of a vector env: its vector wrappers, the base vector env and any envs inside.

    Each layer goes by the protocol first, then SyncVectorEnv's built-in handling, then the
    adapters. Raises SnapshotUnavailable like :func:`env_snapshot`.
    """
    return env_snapshot(venv)  # the same walk: SyncVectorEnv is one more kind of layer


def restore_vector(venv: gym.vector.VectorEnv, snapshot: dict[str, Any]) -> None:
    """Put a vector env into the state ``snapshot`` recorded (see :func:`restore_env`)."""
    restore_env(venv, snapshot)


def snapshot_attributes(obj: Any, names: Iterable[str]) -> dict[str, Any]:
    """The named attributes of ``obj`` that it has, by name (for writing ``mentor_snapshot``)."""
    state = {}
    for name in names:
        # One not set yet (e.g. before the first reset) is left out: restoring removes it again.
        with contextlib.suppress(AttributeError):
            state[name] = getattr(obj, name)
    return state


def restore_attributes(obj: Any, names: Iterable[str], snapshot: dict[str, Any]) -> None:
    """Set the named attributes from ``snapshot``; one it lacks is removed from ``obj``."""
    names = tuple(names)
    unknown = sorted(set(snapshot) - set(names))
    if unknown:
        raise ValueError(
            f"snapshot of {type(obj).__qualname__} has attributes {unknown} it does not list "
            f"as state ({list(names)})"
        )
    for name in names:
        if name in snapshot:
            setattr(obj, name, snapshot[name])
        elif name in vars(obj):
            delattr(obj, name)


class SnapshotAttributes:
    """A mixin for env classes: ``state_attributes`` names the layer's own state, and the
    protocol's two methods are written from it (``snapshot_attributes``, ``restore_attributes``).
    A base env lists Gymnasium's generator too: ``_np_random``, ``_np_random_seed``."""

    state_attributes: tuple[str, ...] = ()

    def mentor_snapshot(self) -> dict[str, Any]:
        return snapshot_attributes(self, self.state_attributes)

    def mentor_restore(self, snapshot: dict[str, Any]) -> None:
        restore_attributes(self, self.state_attributes, snapshot)


def _chain(env: Any) -> list[Any]:
    """The layers of an env or vector env, outermost first, down to ``.unwrapped``."""
    layers = [env]
    while layers[-1] is not getattr(layers[-1], "unwrapped", layers[-1]):
        layers.append(layers[-1].env)
    return layers


def qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def opts_in(layer: Any) -> bool:
    """Whether the layer's class defines the protocol (both methods, or it is an error)."""
    cls = type(layer)  # on the class: an instance attribute could come from anywhere
    has_snapshot = callable(getattr(cls, "mentor_snapshot", None))
    has_restore = callable(getattr(cls, "mentor_restore", None))
    if has_snapshot != has_restore:
        given, missing = (
            ("mentor_snapshot", "mentor_restore")
            if has_snapshot
            else ("mentor_restore", "mentor_snapshot")
        )
        raise SnapshotUnavailable(f"{cls.__qualname__} defines {given} but not {missing}")
    return has_snapshot


def _adapter(layer: Any) -> tuple[str, ...]:
    cls = type(layer)
    names = ADAPTERS.get(qualified_name(cls))
    if names is not None:
        return names
    if isinstance(layer, gym.vector.AsyncVectorEnv):
        raise SnapshotUnavailable(
            f"{cls.__qualname__} keeps its envs in worker processes, out of reach of a "
            "snapshot; use SyncVectorEnv, or a vector env that defines "
            "mentor_snapshot/mentor_restore"
        )
    raise SnapshotUnavailable(
        f"{cls.__qualname__} does not give its state (define mentor_snapshot/mentor_restore, "
        "or list its state attributes with mentor.envs.snapshot.register_adapter)"
    )


# Snapshot functions for a family of classes (matched with isinstance, subclasses included),
# for classes that cannot opt in themselves and whose state is not plain attributes.
PROTOCOLS: list[tuple[type, Callable[[Any], dict[str, Any]], Callable[[Any, dict], None]]] = []


def register_protocol(
    cls: type, snapshot: Callable[[Any], dict[str, Any]], restore: Callable[[Any, dict], None]
) -> None:
    """The protocol's two methods as functions, for ``cls`` and its subclasses (MiniGrid's
    envs, whose grid is objects: ``mentor.envs.minigrid``)."""
    PROTOCOLS.append((cls, snapshot, restore))


def _protocol(layer: Any) -> tuple[Callable, Callable] | None:
    for cls, snapshot, restore in PROTOCOLS:
        if isinstance(layer, cls):
            return snapshot, restore
    return None


def _layer_snapshot(layer: Any) -> dict[str, Any]:
    name = qualified_name(type(layer))
    functions = None if opts_in(layer) else _protocol(layer)
    if functions is not None:
        state = functions[0](layer)
    elif opts_in(layer):
        state = layer.mentor_snapshot()
        if not isinstance(state, dict):
            raise TypeError(f"{name}.mentor_snapshot returned {type(state).__name__}, not dict")
    elif type(layer) is gym.vector.SyncVectorEnv:
        state = snapshot_attributes(layer, _SYNC_ATTRIBUTES)
        state["envs"] = [env_snapshot(env) for env in layer.envs]
    else:
        state = snapshot_attributes(layer, _adapter(layer))
    return {"type": name, "state": copy_value(state, name)}


def _restore_layer(layer: Any, state: dict[str, Any]) -> None:
    state = copy_value(
        state, qualified_name(type(layer))
    )  # the env never holds the snapshot's objects
    functions = None if opts_in(layer) else _protocol(layer)
    if functions is not None:
        functions[1](layer, state)
    elif opts_in(layer):
        layer.mentor_restore(state)
    elif type(layer) is gym.vector.SyncVectorEnv:
        envs = state.pop("envs")
        restore_attributes(layer, _SYNC_ATTRIBUTES, state)
        for env, env_state in zip(layer.envs, envs, strict=True):
            restore_env(env, env_state)
    else:
        restore_attributes(layer, _adapter(layer), state)


def check_chain(layers: list[Any], snapshot: dict[str, Any]) -> None:
    """Raise ValueError unless ``snapshot`` is of this format and was taken from a chain of the
    classes of ``layers``, in order (the Gymnasium and the PettingZoo snapshots alike)."""
    if snapshot.get("format") != FORMAT:
        raise ValueError(f"not an env snapshot of format {FORMAT}: {snapshot.get('format')!r}")
    have = [qualified_name(type(layer)) for layer in layers]
    want = [record["type"] for record in snapshot["layers"]]
    if have != want:
        raise ValueError(
            f"the snapshot is of {describe_chain(want, have)}, "
            f"the env is {describe_chain(have, want)}"
        )


def _check(env: Any, snapshot: dict[str, Any]) -> None:
    """Raise ValueError unless ``snapshot`` was taken from a chain of the same classes."""
    layers = _chain(env)
    check_chain(layers, snapshot)
    for layer, record in zip(layers, snapshot["layers"], strict=True):
        if type(layer) is gym.vector.SyncVectorEnv and not opts_in(layer):
            envs = record["state"]["envs"]
            if len(envs) != len(layer.envs):
                raise ValueError(
                    f"the snapshot is of a SyncVectorEnv of {len(envs)} envs, "
                    f"the env has {len(layer.envs)}"
                )
            for index, (sub_env, sub_snapshot) in enumerate(zip(layer.envs, envs, strict=True)):
                try:
                    _check(sub_env, sub_snapshot)
                except ValueError as error:
                    raise ValueError(f"SyncVectorEnv env {index}: {error}") from None


def describe_chain(names: list[str], other: list[str]) -> str:
    """``A<B<C>>`` in short class names, qualified where the short ones would read the same."""
    short = [name.rpartition(".")[2] for name in names]
    if short == [name.rpartition(".")[2] for name in other]:
        short = names
    return "".join(f"{name}<" for name in short[:-1]) + short[-1] + ">" * (len(short) - 1)


# --- Values: copy, to JSON and back ----------------------------------------------------------

_SCALARS = (type(None), bool, int, float, str)
_ARRAY_KINDS = "biufcmMSU"  # numbers, bools, datetimes and fixed-width strings: not objects
_TAGS = ("__ndarray__", "__npscalar__", "__generator__", "__tuple__", "__float__", "__int__")
_ESCAPE = "__dict__"  # wraps a plain dict whose keys would read as a tag
_BIG_INT = 2**53  # past this, some JSON readers round ints; such ints travel as strings


def _unsupported(value: Any, where: str) -> TypeError:
    return TypeError(
        f"{where}: a {type(value).__qualname__} is not a snapshot value (use None, bool, int, "
        "float, str, list, tuple, dict with str keys, numpy arrays and scalars, "
        "np.random.Generator)"
    )


def _check_dtype(dtype: np.dtype, where: str) -> None:
    if dtype.kind not in _ARRAY_KINDS:
        raise TypeError(f"{where}: numpy dtype {dtype} is not a snapshot value (no objects)")


def copy_value(value: Any, where: str) -> Any:
    """A deep copy of a snapshot value, raising TypeError on anything else."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is np.ndarray:
        _check_dtype(value.dtype, where)
        return value.copy(order="K")  # keeps a Fortran layout: reductions sum in layout order
    if isinstance(value, np.generic):
        _check_dtype(value.dtype, where)
        return value  # numpy scalars are immutable
    if kind is np.random.Generator:
        return _new_generator(type(value.bit_generator).__name__, value.bit_generator.state)
    if kind is list:
        return [copy_value(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if kind is tuple:
        return tuple(copy_value(item, f"{where}[{i}]") for i, item in enumerate(value))
    if kind is dict:
        return {_key(key, where): copy_value(item, f"{where}.{key}") for key, item in value.items()}
    raise _unsupported(value, where)


def _key(key: Any, where: str) -> str:
    if type(key) is not str:
        raise TypeError(f"{where}: dict key {key!r} is not a str")
    return key


def _new_generator(bit_generator: str, state: dict[str, Any]) -> np.random.Generator:
    """A new Generator over a new ``np.random.<bit_generator>`` set to ``state``."""
    cls = getattr(np.random, bit_generator, None)
    if not (isinstance(cls, type) and issubclass(cls, np.random.BitGenerator)):
        raise ValueError(f"unknown numpy bit generator {bit_generator!r}")
    bits = cls()
    bits.state = state
    return np.random.Generator(bits)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def to_json(value: Any) -> Any:
    """A snapshot value as JSON-ready data (strict JSON: no NaN or infinity literals).

    numpy arrays become ``{"__ndarray__": dtype, "shape": [...], "data": base64 bytes}``
    (plus ``"order": "F"`` for a Fortran-ordered one), numpy scalars
    ``{"__npscalar__": dtype, "data": ...}``, generators
    ``{"__generator__": bit generator name, "state": ...}``, tuples ``{"__tuple__": [...]}``,
    non-finite floats ``{"__float__": "nan"}`` and ints beyond 2**53 ``{"__int__": "digits"}``.
    dtypes are numpy's exact strings (``"<f4"``), so the bytes come back as they were.
    """
    return _to_json(value, "snapshot")


def _to_json(value: Any, where: str) -> Any:
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if kind is int:
        return value if abs(value) <= _BIG_INT else {"__int__": str(value)}
    if kind in _SCALARS:
        return value
    if kind is np.ndarray:
        _check_dtype(value.dtype, where)
        fortran = value.ndim > 1 and value.flags.f_contiguous and not value.flags.c_contiguous
        order = "F" if fortran else "C"
        encoded = {
            "__ndarray__": value.dtype.str,
            "shape": list(value.shape),
            "data": _b64(value.tobytes(order=order)),
        }
        return {**encoded, "order": "F"} if fortran else encoded
    if isinstance(value, np.generic):
        _check_dtype(value.dtype, where)
        return {"__npscalar__": value.dtype.str, "data": _b64(value.tobytes())}
    if kind is np.random.Generator:
        bits = value.bit_generator
        return {
            "__generator__": type(bits).__name__,
            "state": _to_json(bits.state, f"{where}.bit_generator"),
        }
    if kind is list:
        return [_to_json(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if kind is tuple:
        return {"__tuple__": [_to_json(item, f"{where}[{i}]") for i, item in enumerate(value)]}
    if kind is dict:
        encoded = {
            _key(key, where): _to_json(item, f"{where}.{key}") for key, item in value.items()
        }
        clash = any(key in encoded for key in (*_TAGS, _ESCAPE))
        return {_ESCAPE: encoded} if clash else encoded
    raise _unsupported(value, where)


def from_json(value: Any) -> Any:
    """The snapshot value that :func:`to_json` made ``value`` from (new objects throughout)."""
    if isinstance(value, list):
        return [from_json(item) for item in value]
    if not isinstance(value, dict):
        return value
    if _ESCAPE in value:
        return {key: from_json(item) for key, item in value[_ESCAPE].items()}
    if "__ndarray__" in value:
        dtype = np.dtype(value["__ndarray__"])
        flat = np.frombuffer(base64.b64decode(value["data"]), dtype=dtype)
        order = value.get("order", "C")
        return flat.reshape(value["shape"], order=order).copy(order=order)  # writable
    if "__npscalar__" in value:
        return np.frombuffer(base64.b64decode(value["data"]), dtype=value["__npscalar__"])[0]
    if "__generator__" in value:
        return _new_generator(value["__generator__"], from_json(value["state"]))
    if "__tuple__" in value:
        return tuple(from_json(item) for item in value["__tuple__"])
    if "__float__" in value:
        return float(value["__float__"])
    if "__int__" in value:
        return int(value["__int__"])
    return {key: from_json(item) for key, item in value.items()}
