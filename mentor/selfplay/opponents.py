"""The players a learner meets in self-play and evaluation, behind one interface.

An ``Opponent`` acts for a batch of rows of a multi-agent env (``core/ma_env.py``): it gets the
rows' encoded observations (what a network reads), their action masks (None: every action
allowed) and the observations as the env gave them, and returns the rows' actions. Kinds:

    random            uniformly among the allowed actions
    module:function   a function of one observation as the env gives it (PettingZoo classic's
                      ``{"observation", "action_mask"}`` dict) -> an action, with ``rng=`` (a
                      NumPy generator) if it takes one; imported as env entry points are, from
                      the working folder too. ``mentor.envs.games`` ships heuristics for
                      Connect Four and tic-tac-toe
    a folder          a run or checkpoint folder of an agent trained on this env (same spaces
                      and agents): its policy, sampling its actions
    a snapshot        the learner's policy at a past update (the pool's own members)

Policies sample (a pool of sampling opponents plays varied games, and two deterministic players
would play the same two games forever) with a torch generator of their own, seeded through
``seed``, so that the learner's random stream does not depend on whom it meets.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from mentor.envs.masks import sample_allowed
from mentor.envs.resolve import resolve_entry_point
from mentor.errors import CheckpointError, ConfigError


class Opponent(Protocol):
    name: str

    def seed(self, seed: int) -> None:
        """Restart its random stream (the same games again at every validation)."""

    def act(self, rows: np.ndarray, masks: np.ndarray | None, raw: list[Any]) -> np.ndarray:
        """One action per row (encoded observations, masks, the env's own observations)."""


class RandomOpponent:
    """Uniformly among the allowed actions (a row without a mask: the action space's)."""

    def __init__(self, action_space: Any, name: str = "random") -> None:
        self.name = name
        self.action_space = action_space
        self.rng = np.random.default_rng(0)

    def seed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.action_space.seed(seed)

    def act(self, rows: np.ndarray, masks: np.ndarray | None, raw: list[Any]) -> np.ndarray:
        if masks is None:
            return np.stack([self.action_space.sample() for _ in range(len(rows))])
        return sample_allowed(masks, self.rng)

    def state(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load(self, values: dict[str, Any]) -> None:
        self.rng.bit_generator.state = values["rng"]


class FunctionOpponent:
    """A ``module:function`` policy, called once per row on the env's own observation; a
    function with an ``rng`` parameter gets the opponent's NumPy generator (its random choices
    then replay with the run)."""

    def __init__(self, function: Callable[..., Any], name: str) -> None:
        self.name = name
        self.function = function
        self.rng = np.random.default_rng(0)
        try:
            self.takes_rng = "rng" in inspect.signature(function).parameters
        except (TypeError, ValueError):  # a builtin without a signature
            self.takes_rng = False

    def seed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def act(self, rows: np.ndarray, masks: np.ndarray | None, raw: list[Any]) -> np.ndarray:
        if self.takes_rng:
            return np.asarray([self.function(obs, rng=self.rng) for obs in raw])
        return np.asarray([self.function(obs) for obs in raw])

    def state(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load(self, values: dict[str, Any]) -> None:
        self.rng.bit_generator.state = values["rng"]


class PolicyOpponent:
    """A policy network (an ``ActorCritic``), sampling its actions with its own generator.
    ``live``: a network that is learning (a league's main agent), left in its training mode."""

    def __init__(
        self, policy: torch.nn.Module, name: str, deterministic: bool = False, live: bool = False
    ) -> None:
        self.name = name
        self.policy = policy if live else policy.eval()
        self.deterministic = deterministic
        self.generator = torch.Generator().manual_seed(0)

    def seed(self, seed: int) -> None:
        self.generator.manual_seed(seed)

    def act(self, rows: np.ndarray, masks: np.ndarray | None, raw: list[Any]) -> np.ndarray:
        with torch.inference_mode():
            device = next(self.policy.parameters()).device
            obs = torch.as_tensor(rows, device=device)
            if self.deterministic:
                mask = None if masks is None else torch.as_tensor(masks, device=device)
                return self.policy.predict(obs, True, mask=mask).cpu().numpy()
            seed = int(torch.randint(2**62, (1,), generator=self.generator))
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                mask = None if masks is None else torch.as_tensor(masks, device=device)
                return self.policy.predict(obs, False, mask=mask).cpu().numpy()

    def state(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state().tolist()}

    def load(self, values: dict[str, Any]) -> None:
        self.generator.set_state(torch.tensor(values["generator"], dtype=torch.uint8))


def snapshot(policy: torch.nn.Module, name: str) -> PolicyOpponent:
    """The learner's policy as it is now, frozen on the CPU."""
    frozen = copy.deepcopy(policy).to("cpu")
    for parameter in frozen.parameters():
        parameter.requires_grad_(False)
    return PolicyOpponent(frozen, name)


def make_opponent(spec: str, learner: Any, what: str = "opponent") -> Opponent:
    """The opponent ``spec`` names (module docstring) for a learner ``Agent`` (its spaces and
    agents: a checkpoint must have the same). ``ConfigError`` names what was expected."""
    if spec == "random":
        return RandomOpponent(copy.deepcopy(learner.action_space))
    if Path(spec).exists():
        return checkpoint_opponent(spec, learner, what)
    module_name, colon, name = spec.partition(":")
    if not colon or not module_name or not name:
        raise ConfigError(
            f"{what} '{spec}' is none of: random, an existing run or checkpoint folder, "
            "'package.module:function'"
        )
    function = resolve_entry_point(spec, what, ConfigError)
    if not callable(function):
        raise ConfigError(f"{what} '{spec}' is a {type(function).__name__}, not a function")
    return FunctionOpponent(function, spec)


def checkpoint_opponent(spec: str, learner: Any, what: str = "opponent") -> PolicyOpponent:
    """A trained agent's policy, which must have been trained on the learner's env: the same
    observation and action spaces and the same agents."""
    from mentor.agent import Agent  # the agent sits beside self-play (import-linter)

    try:
        other = Agent.load(spec)
    except (CheckpointError, FileNotFoundError) as exc:
        raise ConfigError(f"{what} '{spec}' is not an agent's checkpoint: {exc}") from None
    mine, theirs = learner.spaces_meta(), other.spaces_meta()
    for key in ("observation_space", "action_space", "agents"):
        if mine.get(key) != theirs.get(key):
            raise ConfigError(
                f"{what} '{spec}' was trained with {key.replace('_', ' ')} {theirs.get(key)}; "
                f"this env's is {mine.get(key)}: an opponent must be an agent of this env"
            )
    return PolicyOpponent(other.policy.to("cpu"), spec)
