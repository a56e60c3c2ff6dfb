"""Snapshots of PettingZoo parallel envs: capture the complete state, restore it bit for bit.

The PettingZoo counterpart of :mod:`mentor.envs.snapshot`, with the same rules and the same
values (so :func:`~mentor.envs.snapshot.to_json` and :func:`~mentor.envs.snapshot.from_json`
carry a snapshot to a checkpoint and back, exactly). The multi-agent vector env calls
:func:`parallel_snapshot` and :func:`restore_parallel` once per copy of its ``ParallelEnv``.

It lives beside ``snapshot.py`` rather than in it because PettingZoo and mpe2 are an optional
extra (``multiagent``), and most of it is the MPE world below, which the Gymnasium side has no
use for. It imports neither package: classes are matched by qualified name, as ``ADAPTERS`` does.

The chain
---------
A parallel env is walked outermost first down to ``.unwrapped``: a ``BaseParallelWrapper``
leads in through ``.env``, ``aec_to_parallel_wrapper`` through ``.aec_env`` to the AEC env it
drives, an AEC ``BaseWrapper`` (``OrderEnforcingWrapper``, ``AssertOutOfBoundsWrapper``,
``ClipOutOfBoundsWrapper``, ...) through ``.env``. Each layer gives its own state as on the
Gymnasium side: the protocol (``mentor_snapshot``/``mentor_restore``) first, then the built-in
handling below, then the adapters (:data:`PETTINGZOO_ADAPTERS`, and
:data:`mentor.envs.snapshot.ADAPTERS`, where ``register_adapter`` puts a class of yours). A layer
that does none of these stops the snapshot with ``SnapshotUnavailable`` naming its class; the
class checks are exact, never by subclass. Restoring checks first that the env's chain has the
snapshot's classes (and, for an MPE env, the same world: entities, their names and classes),
and raises ValueError naming both before changing anything.

Covered
-------
- PettingZoo's wrappers: ``BaseWrapper`` and ``BaseParallelWrapper`` themselves,
  ``OrderEnforcingWrapper`` (its reset and update flags), ``AssertOutOfBoundsWrapper`` and
  ``ClipOutOfBoundsWrapper`` (no state), ``TerminateIllegalWrapper`` (the observation and info it
  keeps for the next step's mask check, its termination flag), ``MultiEpisodeEnv`` and
  ``MultiEpisodeParallelEnv`` (episode count, the seed and options of the next inner reset),
  and ``CaptureStdoutWrapper``, which only renders (read from its source; it needs a
  human-rendering env, so the tests do not run it).
- PettingZoo's classic board games without chance (:data:`CLASSIC_GAMES`: Connect Four and
  tic-tac-toe): AECEnv's bookkeeping, the agent selector's position and the board.
- ``aec_to_parallel_wrapper`` and ``turn_based_aec_to_parallel_wrapper``: their ``agents``.
  After a step that list *is* the AEC env's list (the wrapper hands out the same object), and a
  restored wrapper shares it again.
- mpe2's envs (:data:`MPE_ENVS`: ``simple``, ``simple_adversary``, ``simple_crypto``,
  ``simple_push``, ``simple_reference``, ``simple_speaker_listener``, ``simple_spread``,
  ``simple_tag``, ``simple_world_comm``, and ``simple_line``, ``simple_formation``,
  ``collect_treasure``), any kwargs. Their state is in three places, all captured:

  1. ``SimpleEnv``'s attributes that ``reset`` and ``step`` write: ``steps``, ``agents``,
     ``rewards``, ``_cumulative_rewards``, ``terminations``, ``truncations``, ``infos``,
     ``agent_selection`` (and ``_skip_agent_selection``, which dead steps write),
     ``current_actions`` (the last actions, as given), the ``np_random`` generator, the agent
     selector's position, and ``original_cam_range`` (set from the positions at reset; it only
     scales rendering, and is kept so that a restored env draws the same frames).
  2. The world, whole: every instance attribute of the world and of each entity (agents and
     landmarks), with the entity's ``state`` (``p_pos``, ``p_vel``, ``c``) and ``action``
     (``u``, ``c``) objects. That takes in what a scenario's ``reset_world`` writes beyond the
     physics: colors, goals (``goal_a``/``goal_b``, kept as links to entities of the same
     world), keys, what a treasure or a collector holds and the generator the world keeps
     (``collect_treasure``), the prey's speed (``simple_tag``'s curriculum). Constant
     attributes (sizes, flags) come along too: writing them back into an env built the same
     way changes nothing.
  3. The scenario, whole: every instance attribute (the ideal positions and last distances
     ``simple_line`` keeps, the rewards ``collect_treasure`` caches, the settings). In mpe2
     1.1.1 a curriculum's stage is no state at all: ``BaseScenario.curriculum_stage`` is a
     property whose setter ignores writes, so ``advance_curriculum()`` changes nothing; were
     it fixed, the stage would be a scenario attribute, captured with the rest.

  Capturing the world and the scenario whole, rather than listing attributes, is the rule
  that lets one adapter serve the family: whatever a scenario writes is taken, and an attribute
  holding something a snapshot cannot hold (an object, a function) stops the snapshot with
  ``SnapshotUnavailable`` naming the entity and the attribute. A ``raw_env`` class itself adds
  only configuration (its constructor's arguments, kept by ``EzPickle``) and behaviour
  (``collect_treasure`` overrides ``_execute_world_step``): read from mpe2 1.1.1's source.
  Matching stays exact: a ``SimpleEnv`` subclass not in :data:`MPE_ENVS` (your own scenario's
  ``raw_env``) is refused until :func:`register_mpe_env` declares that it adds no state of its own.

Not covered
-----------
- A world whose agents have motor or communication noise (``u_noise``, ``c_noise``): mpe2's
  ``World.step`` draws it from numpy's *global* generator, outside the env. A scripted agent
  (``action_callback``) may keep state of its own. Both are refused; no mpe2 scenario sets them.
- Rendering: the pygame surface, window, clock and font, ``renderOn``.
- Configuration (constructor arguments, spaces, ``max_cycles``), as on the Gymnasium side;
  the spaces' own generators (``action_space(agent).sample()``) are not env state.
- Aliasing between arrays: ``simple_crypto`` and ``simple_reference`` give an agent its goal
  landmark's color array itself; the restored env holds an equal copy. mpe2 replaces those
  arrays at reset before it changes one in place, so nothing it does can tell.
- ``current_actions`` holds the actions as the caller gave them; they must be snapshot values
  (numpy arrays and scalars, Python numbers), not tensors.
- ``AECEnv``s: only parallel envs have entry points here (an AEC chain is walked as part of one).
- The attribute names are mpe2 1.1.1's and PettingZoo 1.27's; the tests replay every env bit for
  bit and compare the restored object graph with the original's, so a change shows up there.
"""

from __future__ import annotations

from typing import Any

from mentor.envs.snapshot import (
    ADAPTERS,
    FORMAT,
    SnapshotUnavailable,
    check_chain,
    copy_value,
    opts_in,
    qualified_name,
    restore_attributes,
)

__all__ = [
    "CLASSIC_GAMES",
    "MPE_ENVS",
    "PETTINGZOO_ADAPTERS",
    "parallel_snapshot",
    "register_mpe_env",
    "restore_parallel",
]

_WRAPPERS = "pettingzoo.utils.wrappers"
_MULTI_EPISODE = ("_episodes_elapsed", "_seed", "_options")

PETTINGZOO_ADAPTERS: dict[str, tuple[str, ...]] = {
    # Used directly they wrap without adding anything.
    f"{_WRAPPERS}.base.BaseWrapper": (),
    f"{_WRAPPERS}.base_parallel.BaseParallelWrapper": (),
    # What mpe2's make_env (and most PettingZoo envs) put around the raw env.
    f"{_WRAPPERS}.order_enforcing.OrderEnforcingWrapper": ("_has_reset", "_has_updated"),
    f"{_WRAPPERS}.assert_out_of_bounds.AssertOutOfBoundsWrapper": (),
    f"{_WRAPPERS}.clip_out_of_bounds.ClipOutOfBoundsWrapper": (),
    f"{_WRAPPERS}.terminate_illegal.TerminateIllegalWrapper": (
        "_prev_obs",
        "_prev_info",
        "_terminated",
    ),
    f"{_WRAPPERS}.multi_episode_env.MultiEpisodeEnv": _MULTI_EPISODE,
    f"{_WRAPPERS}.multi_episode_parallel_env.MultiEpisodeParallelEnv": _MULTI_EPISODE,
    f"{_WRAPPERS}.capture_stdout.CaptureStdoutWrapper": (),  # rendering only
}

_AEC_TO_PARALLEL = "pettingzoo.utils.conversions.aec_to_parallel_wrapper"
# The turn-based converter keeps the same state: its agents, a copy at reset, the AEC env's
# list itself after a step.
_TURN_BASED = "pettingzoo.utils.conversions.turn_based_aec_to_parallel_wrapper"
_PARALLEL_WRAPPERS = (_AEC_TO_PARALLEL, _TURN_BASED)
_SIMPLE_ENV = "mpe2._mpe_utils.simple_env.SimpleEnv"
_AGENT_SELECTOR = "pettingzoo.utils.agent_selector.AgentSelector"

MPE_ENVS: set[str] = {
    f"mpe2.{name}.{name}.raw_env"
    for name in (
        "simple",
        "simple_adversary",
        "simple_crypto",
        "simple_push",
        "simple_reference",
        "simple_speaker_listener",
        "simple_spread",
        "simple_tag",
        "simple_world_comm",
        "simple_line",
        "simple_formation",
        "collect_treasure",
    )
}

# AECEnv's bookkeeping that reset and step write (its dead-step handling included).
_AEC_ATTRIBUTES = (
    "agents",
    "rewards",
    "_cumulative_rewards",
    "terminations",
    "truncations",
    "infos",
    "agent_selection",
    "_skip_agent_selection",
)
# SimpleEnv's attributes that reset and step write; the rest is configuration or rendering.
_MPE_ATTRIBUTES = ("steps", *_AEC_ATTRIBUTES, "current_actions", "np_random", "original_cam_range")
_SELECTOR_ATTRIBUTES = ("agent_order", "_current_agent", "selected_agent")

# PettingZoo's classic board games without chance (no generator): AECEnv's bookkeeping, the
# agent selector, and the board, which Connect Four keeps as a list of cells and tic-tac-toe in
# a Board object's ``squares`` (read from PettingZoo 1.25's source).
CLASSIC_GAMES: dict[str, str] = {
    "pettingzoo.classic.connect_four.connect_four.raw_env": "board",
    "pettingzoo.classic.tictactoe.tictactoe.raw_env": "board.squares",
}
_ENTITY_PARTS = ("state", "action")  # objects of an entity captured by their attributes
_WORLD_ENTITIES = ("agents", "landmarks")  # the world's structure: checked, not written


def register_mpe_env(cls: type) -> None:
    """Declare a ``SimpleEnv`` subclass whose state is all in SimpleEnv, its world and scenario.

    For the ``raw_env`` of a scenario of your own: its class may add configuration and
    behaviour, but no attribute that ``reset`` or ``step`` writes (those go in the world or the
    scenario, which are captured whole).
    """
    from mpe2._mpe_utils.simple_env import SimpleEnv  # only here: mpe2 is an optional extra

    if not (isinstance(cls, type) and issubclass(cls, SimpleEnv)):
        raise TypeError(f"{cls!r} is not a subclass of mpe2's SimpleEnv")
    MPE_ENVS.add(qualified_name(cls))


# --- Snapshot and restore --------------------------------------------------------------------


def parallel_snapshot(env: Any) -> dict[str, Any]:
    """The state of every layer of a PettingZoo ``ParallelEnv``, outermost first, copied.

    Raises SnapshotUnavailable naming the first layer that neither opts in nor is known.
    """
    return {"format": FORMAT, "layers": [_layer_snapshot(layer) for layer in _chain(env)]}


def restore_parallel(env: Any, snapshot: dict[str, Any]) -> None:
    """Put a ``ParallelEnv`` into the state ``snapshot`` recorded; the snapshot is left untouched.

    Raises ValueError, before changing anything, when the env's chain of classes (or an MPE
    env's world) is not the snapshot's.
    """
    layers = _chain(env)
    _check(layers, snapshot)
    # Innermost first: the parallel wrapper re-links its agents list to the restored AEC env's.
    for layer, record in reversed(list(zip(layers, snapshot["layers"], strict=True))):
        _restore_layer(layer, record["state"])


def _chain(env: Any) -> list[Any]:
    """The layers of a PettingZoo env, outermost first, down to ``.unwrapped``."""
    layers = [env]
    while layers[-1] is not getattr(layers[-1], "unwrapped", layers[-1]):
        own = vars(layers[-1])  # not getattr: PettingZoo's wrappers forward unknown names inward
        inner = own.get("env", own.get("aec_env"))
        if inner is None:
            raise SnapshotUnavailable(
                f"{type(layers[-1]).__qualname__} keeps the env it wraps in neither .env nor "
                ".aec_env, so the layers below it cannot be reached"
            )
        layers.append(inner)
    return layers


def _adapter(layer: Any) -> tuple[str, ...]:
    cls = type(layer)
    name = qualified_name(cls)
    names = ADAPTERS.get(name, PETTINGZOO_ADAPTERS.get(name))
    if names is not None:
        return names
    if _SIMPLE_ENV in (qualified_name(base) for base in cls.__mro__):
        raise SnapshotUnavailable(
            f"{cls.__qualname__} is an MPE env (a SimpleEnv) mentor has not checked: if it adds "
            "no state beyond SimpleEnv's, its world's and its scenario's, declare it with "
            "mentor.envs.snapshot_pettingzoo.register_mpe_env"
        )
    raise SnapshotUnavailable(
        f"{cls.__qualname__} does not give its state (define mentor_snapshot/mentor_restore, "
        "or list its state attributes with mentor.envs.snapshot.register_adapter)"
    )


def _own_attributes(obj: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """The named instance attributes ``obj`` has (never a value forwarded from an inner env)."""
    own = vars(obj)
    return {name: own[name] for name in names if name in own}


def _layer_snapshot(layer: Any) -> dict[str, Any]:
    name = qualified_name(type(layer))
    if opts_in(layer):
        state = layer.mentor_snapshot()
        if not isinstance(state, dict):
            raise TypeError(f"{name}.mentor_snapshot returned {type(state).__name__}, not dict")
    elif name in _PARALLEL_WRAPPERS:
        state = _parallel_wrapper_snapshot(layer)
    elif name in MPE_ENVS:
        state = _mpe_snapshot(layer)
    elif name in CLASSIC_GAMES:
        state = _classic_snapshot(layer, CLASSIC_GAMES[name])
    else:
        state = _own_attributes(layer, _adapter(layer))
    return {"type": name, "state": copy_value(state, name)}


def _restore_layer(layer: Any, state: dict[str, Any]) -> None:
    name = qualified_name(type(layer))
    state = copy_value(state, name)  # the env never holds the snapshot's objects
    if opts_in(layer):
        layer.mentor_restore(state)
    elif name in _PARALLEL_WRAPPERS:
        _restore_parallel_wrapper(layer, state)
    elif name in MPE_ENVS:
        _restore_mpe(layer, state)
    elif name in CLASSIC_GAMES:
        _restore_classic(layer, CLASSIC_GAMES[name], state)
    else:
        restore_attributes(layer, _adapter(layer), state)


def _check(layers: list[Any], snapshot: dict[str, Any]) -> None:
    """Raise ValueError unless ``snapshot`` was taken from a chain like ``layers``."""
    check_chain(layers, snapshot)
    for layer, record in zip(layers, snapshot["layers"], strict=True):
        if record["type"] in MPE_ENVS and not opts_in(layer):
            _check_world(layer, record["state"])


# --- aec_to_parallel_wrapper -----------------------------------------------------------------


def _parallel_wrapper_snapshot(wrapper: Any) -> dict[str, Any]:
    own = vars(wrapper)
    if "agents" not in own:  # never reset
        return {}
    # getattr, not vars: the AEC env's agents may live below wrappers that forward them.
    if own["agents"] is getattr(wrapper.aec_env, "agents", None):
        return {"shares_agents": True}
    return {"agents": own["agents"]}


def _restore_parallel_wrapper(wrapper: Any, state: dict[str, Any]) -> None:
    unknown = sorted(set(state) - {"agents", "shares_agents"})
    if unknown:
        raise ValueError(f"snapshot of a parallel wrapper has unknown entries {unknown}")
    if state.get("shares_agents"):
        wrapper.agents = wrapper.aec_env.agents  # restored already: layers go innermost first
    elif "agents" in state:
        wrapper.agents = state["agents"]
    else:
        vars(wrapper).pop("agents", None)


# --- PettingZoo's classic board games -------------------------------------------------------


def _classic_snapshot(env: Any, board: str) -> dict[str, Any]:
    holder, _, cells = board.rpartition(".")
    owner = getattr(env, holder) if holder else env
    selector = env._agent_selector
    if qualified_name(type(selector)) != _AGENT_SELECTOR:
        label = qualified_name(type(env))
        raise SnapshotUnavailable(f"{label}: its agent selector is a {type(selector).__qualname__}")
    return {
        "env": _own_attributes(env, _AEC_ATTRIBUTES),
        "agent_selector": _own_attributes(selector, _SELECTOR_ATTRIBUTES),
        "board": vars(owner)[cells],
    }


def _restore_classic(env: Any, board: str, state: dict[str, Any]) -> None:
    restore_attributes(env, _AEC_ATTRIBUTES, state["env"])
    restore_attributes(env._agent_selector, _SELECTOR_ATTRIBUTES, state["agent_selector"])
    holder, _, cells = board.rpartition(".")
    setattr(getattr(env, holder) if holder else env, cells, state["board"])


# --- mpe2's SimpleEnv ------------------------------------------------------------------------
#
# The world is recorded as plain values plus links: an attribute holding an entity of the same
# world (a goal) or a list of them (simple_world_comm's food and forests) is kept as the
# entity's index in world.entities, or a list of indices, and comes back as the fresh env's
# entity at that index.


def _mpe_snapshot(env: Any) -> dict[str, Any]:
    label = qualified_name(type(env))  # raw_env alone would not say which
    selector = env._agent_selector
    if qualified_name(type(selector)) != _AGENT_SELECTOR:
        raise SnapshotUnavailable(f"{label}: its agent selector is a {type(selector).__qualname__}")
    world = env.world
    entities = world.entities
    index = {id(entity): i for i, entity in enumerate(entities)}
    return {
        "env": _own_attributes(env, _MPE_ATTRIBUTES),
        "agent_selector": _own_attributes(selector, _SELECTOR_ATTRIBUTES),
        "world": _object_record(world, index, f"{label}: world", skip=_WORLD_ENTITIES),
        "entities": [_entity_record(entity, index, label) for entity in entities],
        "scenario": _object_record(env.scenario, index, f"{label}: scenario"),
    }


def _entity_record(entity: Any, index: dict[int, int], label: str) -> dict[str, Any]:
    where = f"{label}: world entity {entity.name!r}"
    own = vars(entity)
    if own.get("u_noise") or own.get("c_noise"):
        raise SnapshotUnavailable(
            f"{where} has motor or communication noise (u_noise/c_noise), which mpe2's "
            "World.step draws from numpy's global generator, outside the env"
        )
    if own.get("action_callback") is not None:
        raise SnapshotUnavailable(
            f"{where} is a scripted agent (action_callback), whose policy may keep state of its own"
        )
    parts = {
        part: _object_record(own[part], {}, f"{where}.{part}")
        for part in _ENTITY_PARTS
        if part in own
    }
    return {
        **_object_record(entity, index, where, skip=_ENTITY_PARTS),
        "name": entity.name,
        "parts": parts,
    }


def _object_record(
    obj: Any, index: dict[int, int], where: str, skip: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Every instance attribute of ``obj`` but ``skip``: copied values, and links to entities."""
    values: dict[str, Any] = {}
    links: dict[str, Any] = {}
    for name, value in vars(obj).items():
        if name in skip:
            continue
        if id(value) in index:
            links[name] = index[id(value)]
        elif type(value) is list and value and all(id(item) in index for item in value):
            links[name] = [index[id(item)] for item in value]
        else:
            try:
                values[name] = copy_value(value, f"{where}, attribute {name}")
            except TypeError as error:
                raise SnapshotUnavailable(str(error)) from None
    return {"type": qualified_name(type(obj)), "values": values, "links": links}


def _check_world(env: Any, state: dict[str, Any]) -> None:
    """Raise ValueError unless the env's world and scenario are built like the snapshot's."""
    label = qualified_name(type(env))
    entities = env.world.entities
    have = [(qualified_name(type(entity)), entity.name) for entity in entities]
    want = [(record["type"], record["name"]) for record in state["entities"]]
    if have != want:
        raise ValueError(
            f"the snapshot is of a {label} whose world has {len(want)} entities "
            f"({', '.join(name for _, name in want)}), the env's has {len(have)} "
            f"({', '.join(name for _, name in have)})"
        )
    pairs = [(env.world, state["world"], "world"), (env.scenario, state["scenario"], "scenario")]
    for entity, record in zip(entities, state["entities"], strict=True):
        if sorted(record["parts"]) != sorted(p for p in _ENTITY_PARTS if p in vars(entity)):
            raise ValueError(f"{label}: world entity {entity.name!r} has other parts")
        pairs += [
            (vars(entity)[part], part_record, f"{entity.name!r}.{part}")
            for part, part_record in record["parts"].items()
        ]
    for obj, record, what in pairs:
        if qualified_name(type(obj)) != record["type"]:
            raise ValueError(
                f"the snapshot's {label} {what} is a {record['type']}, "
                f"the env's a {qualified_name(type(obj))}"
            )


def _restore_mpe(env: Any, state: dict[str, Any]) -> None:
    restore_attributes(env, _MPE_ATTRIBUTES, state["env"])
    restore_attributes(env._agent_selector, _SELECTOR_ATTRIBUTES, state["agent_selector"])
    entities = env.world.entities
    _restore_object(env.world, state["world"], entities, keep=_WORLD_ENTITIES)
    for entity, record in zip(entities, state["entities"], strict=True):
        for part, part_record in record["parts"].items():
            _restore_object(vars(entity)[part], part_record, [])
        _restore_object(entity, record, entities, keep=_ENTITY_PARTS)
    _restore_object(env.scenario, state["scenario"], entities)


def _restore_object(
    obj: Any, record: dict[str, Any], entities: list[Any], keep: tuple[str, ...] = ()
) -> None:
    """Make ``obj``'s instance attributes (but ``keep``) exactly those ``record`` holds."""
    own = vars(obj)  # written directly: a property of the same name must not intervene
    for name in [name for name in own if name not in keep]:
        if name not in record["values"] and name not in record["links"]:
            del own[name]
    own.update(record["values"])
    for name, link in record["links"].items():
        own[name] = [entities[i] for i in link] if type(link) is list else entities[link]
