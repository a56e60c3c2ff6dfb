"""Recording demonstrations: play whole episodes with an expert and keep every decision.

An expert is a *policy*: a function from a batch of observations, in the env's raw form (an
array with a leading batch axis, or a dict of such arrays for a Dict space), to a batch of
actions in the env's form. ``policy_from`` makes one from what a user types:

    runs/ppo-CartPole-v1            a run folder or checkpoint folder: a trained mentor agent,
                                    acting deterministically
    my_package.experts:heuristic    a function of that signature, imported

``record`` plays ``episodes`` whole episodes of the env with it. Episode ``i`` is reset with seed
``seed + i``, whichever of the ``num_envs`` copies plays it, so a deterministic expert records the
same dataset with one copy or several. Every action is checked against the action space before
the env sees it: an expert that leaves the space stops the recording with a ``DatasetError``
naming the action, the episode and step, and the space.

A person can be the expert too: ``human_policy`` reads the keys held in the window the env
renders into (``render_mode="human"``, pygame), with key mappings for the classic-control envs
and Box2D's LunarLander, or the env's own ``get_keys_to_action()``.

The result is an in-memory ``Dataset`` (see ``mentor.data.dataset``) with each episode's final
observation; ``mentor.data.load.save_dataset`` writes it to disk in Minari's format.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.wrappers import TimeLimit

from mentor.data.dataset import Dataset
from mentor.envs.resolve import make_env, spec
from mentor.errors import DatasetError, EnvError

Policy = Callable[[np.ndarray | dict], np.ndarray]
"""A batch of raw observations -> a batch of actions (env form)."""


# --- experts -------------------------------------------------------------------------------------
# ``mentor.agent.policy_from`` turns what a user types (a run folder, module:function) into one.


def named_policy(function: Policy, name: str) -> Policy:
    """The policy, carrying the name a user gave it (datasets say where they came from)."""

    def expert(obs: np.ndarray | dict) -> np.ndarray:
        return function(obs)

    expert.spec = name  # type: ignore[attr-defined]
    return expert


# --- recording -----------------------------------------------------------------------------------


def record(
    policy: Policy,
    env_id: str,
    env_kwargs: dict | None,
    episodes: int,
    seed: int = 0,
    num_envs: int = 1,
    max_episode_steps: int | None = None,
    source: str | None = None,
) -> Dataset:
    """Play ``episodes`` episodes with ``policy`` on ``num_envs`` copies of the env."""
    if episodes < 1:
        raise DatasetError(f"record needs at least 1 episode, got {episodes}")
    num_envs = max(1, min(num_envs, episodes))
    with ExitStack() as stack:
        envs = []
        for _ in range(num_envs):
            env = _make(env_id, env_kwargs, max_episode_steps)
            stack.callback(env.close)
            envs.append(env)
        obs_space, act_space = envs[0].observation_space, envs[0].action_space
        agent = getattr(policy, "agent", None)
        if agent is not None:  # a trained agent acts only in the spaces it was trained on
            agent.check_fits(obs_space, act_space, env_id)
        played = _play(policy, envs, episodes, seed, act_space)
    observations, actions, rewards, terms, truncs, finals = zip(*played, strict=True)
    lengths = [len(a) for a in actions]
    return Dataset(
        observation_space=obs_space,
        action_space=act_space,
        observations=_stack([o for episode in observations for o in episode], obs_space),
        actions=_stack([a for episode in actions for a in episode], act_space),
        rewards=np.concatenate(rewards).astype(np.float64),
        terminations=np.concatenate(terms).astype(bool),
        truncations=np.concatenate(truncs).astype(bool),
        episode_starts=np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64),
        final_observations=_stack(list(finals), obs_space),
        source=source or f"recorded from {_name(policy)} on {env_id}",
    )


def _name(policy: Policy) -> str:
    return getattr(policy, "spec", None) or getattr(policy, "__qualname__", None) or "a policy"


def _make(env_id: str, kwargs: dict | None, max_episode_steps: int | None) -> Any:
    if max_episode_steps is None:
        return make_env(env_id, kwargs)
    if spec(env_id) is not None:  # registered: gym.make replaces the spec's own time limit
        return make_env(env_id, kwargs, max_episode_steps=max_episode_steps)
    return TimeLimit(make_env(env_id, kwargs), max_episode_steps)


def _play(
    policy: Policy, envs: list, episodes: int, seed: int, act_space: spaces.Space
) -> list[tuple]:
    """Step the copies in lockstep, one batched policy call per step; the episodes, in order."""
    done: list[tuple | None] = [None] * episodes
    next_episode = 0
    # Per copy: its episode index (None once idle), current observation, and the episode so far.
    current: list[int | None] = [None] * len(envs)
    obs: list[Any] = [None] * len(envs)
    buffers: list[dict[str, list]] = [{} for _ in envs]

    def start(k: int) -> None:
        nonlocal next_episode
        if next_episode >= episodes:
            current[k] = None
            return
        current[k] = next_episode
        obs[k], _ = envs[k].reset(seed=seed + next_episode)
        buffers[k] = {"obs": [], "act": [], "rew": [], "term": [], "trunc": []}
        next_episode += 1

    for k in range(len(envs)):
        start(k)
    while any(e is not None for e in current):
        active = [k for k, e in enumerate(current) if e is not None]
        batch = _stack([obs[k] for k in active], envs[0].observation_space)
        actions = policy(batch)
        for row, k in enumerate(active):
            step = len(buffers[k]["act"])
            action = _checked(_row(actions, row, len(active)), act_space, current[k], step)
            next_obs, reward, terminated, truncated, _ = envs[k].step(action)
            buf = buffers[k]
            buf["obs"].append(obs[k])
            buf["act"].append(action)
            buf["rew"].append(float(reward))
            buf["term"].append(bool(terminated))
            buf["trunc"].append(bool(truncated))
            obs[k] = next_obs
            if terminated or truncated:
                done[current[k]] = (
                    buf["obs"], buf["act"], np.array(buf["rew"]), np.array(buf["term"]),
                    np.array(buf["trunc"]), next_obs,
                )  # fmt: skip
                start(k)
    return done  # type: ignore[return-value]


def _row(actions: Any, row: int, batch: int) -> Any:
    """The action of one copy from the policy's batch of actions."""
    if isinstance(actions, dict):
        return {key: _row(value, row, batch) for key, value in actions.items()}
    actions = np.asarray(actions)
    if actions.ndim == 0 or len(actions) != batch:
        raise DatasetError(
            f"the expert returned actions of shape {actions.shape} for a batch of {batch} "
            "observations: it must return one action per observation (a leading batch axis)"
        )
    return actions[row]


def _checked(action: Any, space: spaces.Space, episode: int, step: int) -> Any:
    """The action in the space's dtype; a DatasetError when it is outside the space."""
    value = np.asarray(action)
    ok = False
    if isinstance(space, spaces.Discrete):
        ok = value.ndim == 0 and _integral(value) and space.contains(np.int64(value))
        value = np.int64(value) if ok else value
    elif isinstance(space, (spaces.Box, spaces.MultiDiscrete, spaces.MultiBinary)):
        if value.shape == space.shape and (isinstance(space, spaces.Box) or _integral(value)):
            cast = value.astype(space.dtype)
            ok = space.contains(cast)
            value = cast
    else:
        ok = space.contains(action)
        value = action
    if not ok:
        shown = (
            np.array2string(np.asarray(action), threshold=20)
            if not isinstance(action, dict)
            else repr(action)
        )
        raise DatasetError(
            f"the expert's action {shown} at episode {episode}, step {step} is outside the "
            f"action space {space}"
        )
    return value


def _integral(value: np.ndarray) -> bool:
    if value.dtype.kind in "iub":
        return True
    return (
        value.dtype.kind == "f"
        and bool(np.all(np.isfinite(value)))
        and bool(np.all(value == np.round(value)))
    )


def _stack(items: list, space: spaces.Space) -> Any:
    """A list of single observations or actions -> one batch (a dict of batches for Dict)."""
    if isinstance(space, spaces.Dict):
        return {
            key: _stack([item[key] for item in items], sub) for key, sub in space.spaces.items()
        }
    dtype = np.int64 if isinstance(space, spaces.Discrete) else space.dtype
    return np.stack([np.asarray(item) for item in items]).astype(dtype, copy=False)


# --- a person as the expert ----------------------------------------------------------------------

# Keys for the classic envs, as pygame key names: (keys held together) -> action. The env's own
# ``get_keys_to_action()`` (Atari has one) is used for the others.
DEFAULT_KEYS: dict[str, tuple[dict[tuple[str, ...], Any], Any]] = {
    # env id prefix: (mapping, action with no key held; None: repeat the last action)
    "CartPole": ({("left",): 0, ("right",): 1}, None),
    "MountainCar-": ({("left",): 0, ("right",): 2}, 1),
    "Acrobot": ({("left",): 0, ("right",): 2}, 1),
    "LunarLander": ({("left",): 1, ("up",): 2, ("right",): 3}, 0),
    "Pendulum": ({("left",): np.array([-2.0], np.float32), ("right",): np.array([2.0], np.float32)},
                 np.array([0.0], np.float32)),
    "MountainCarContinuous": ({("left",): np.array([-1.0], np.float32),
                               ("right",): np.array([1.0], np.float32)},
                              np.array([0.0], np.float32)),
}  # fmt: skip


def action_for_keys(pressed: set[int], mapping: dict[tuple[int, ...], Any], default: Any) -> Any:
    """The action of the keys held: the mapping's entry for exactly those of its keys that are
    held (other keys are ignored), else ``default``."""
    relevant = {key for combination in mapping for key in combination}
    held = tuple(sorted(pressed & relevant))
    normalized = {tuple(sorted(combination)): action for combination, action in mapping.items()}
    return normalized.get(held, default) if held else default


def key_codes(mapping: dict[tuple, Any]) -> dict[tuple[int, ...], Any]:
    """A mapping whose keys are pygame key names ('left', 'a') or codes, as codes."""
    import pygame

    def code(key: int | str) -> int:
        if isinstance(key, int):
            return key
        try:
            return pygame.key.key_code(key)
        except ValueError:
            raise EnvError(f"'{key}' is not a pygame key name") from None

    return {tuple(code(k) for k in combination): action for combination, action in mapping.items()}


def human_policy(env_id: str, env_kwargs: dict | None = None) -> tuple[Policy, dict]:
    """A person at the keyboard as the expert: (policy, env kwargs that open a window).

    The env renders itself in a window (``render_mode="human"``); each step reads the keys
    held. Raises EnvError naming what is missing: pygame, a display, a window the env can open,
    or a key mapping for the env."""
    try:
        import pygame
    except ImportError:
        raise EnvError(
            "--human reads the keyboard with pygame, which is not installed: pip install pygame"
        ) from None
    if (
        sys.platform.startswith("linux")
        and not os.environ.get("SDL_VIDEODRIVER")
        and not os.environ.get("DISPLAY")
        and not os.environ.get("WAYLAND_DISPLAY")
    ):
        raise EnvError(
            "--human needs a display to open a window: neither DISPLAY nor WAYLAND_DISPLAY is "
            "set (no graphical session here)"
        )
    kwargs = {**(env_kwargs or {}), "render_mode": "human"}
    env = make_env(env_id, env_kwargs)
    try:
        modes = env.metadata.get("render_modes", [])
        if "human" not in modes:
            raise EnvError(
                f"env '{env_id}' cannot open a window for a person to play: its render modes "
                f"are {modes or 'none'}, not 'human'"
            )
        mapping, default = _keys_for(env_id, env)
    finally:
        env.close()
    pygame.display.init()
    codes = key_codes(mapping)
    last = {"action": default if default is not None else next(iter(codes.values()))}

    def person(obs: np.ndarray | dict) -> np.ndarray:
        for event in pygame.event.get():
            if event.type == pygame.QUIT:
                raise DatasetError("the window was closed before the episodes were recorded")
        state = pygame.key.get_pressed()
        pressed = {key for combination in codes for key in combination if state[key]}
        action = action_for_keys(pressed, codes, default)
        if action is None:  # no key, and the env has no 'do nothing': repeat the last action
            action = last["action"]
        last["action"] = action
        return np.asarray([action])

    person.spec = "the keyboard"  # type: ignore[attr-defined]
    return person, kwargs


def _keys_for(env_id: str, env: Any) -> tuple[dict[tuple, Any], Any]:
    name = env_id.rpartition(":")[2]  # "module:EnvId" -> "EnvId"
    for prefix, (mapping, default) in DEFAULT_KEYS.items():
        if name.startswith(prefix):
            return mapping, default
    if env.has_wrapper_attr("get_keys_to_action"):
        mapping = env.get_wrapper_attr("get_keys_to_action")()
        return {
            (tuple(ord(c) if isinstance(c, str) else c for c in k) if isinstance(k, tuple)
             else tuple(ord(c) for c in k) if isinstance(k, str) else (k,)): a
            for k, a in mapping.items()
        }, 0  # fmt: skip
    raise EnvError(
        f"env '{env_id}' has no keyboard mapping: mentor knows "
        f"{', '.join(DEFAULT_KEYS)} and envs with get_keys_to_action()"
    )
