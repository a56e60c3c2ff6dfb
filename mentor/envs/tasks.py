"""Tasks: what a curriculum sets on one env copy before its next episode.

A ``Task`` names an env (its id and kwargs), optionally the seed its episodes reset with (a
procedural level) and values of the env's parameters (domain randomization: CartPole's pole
length and mass, say). ``TaskEnv`` is one env copy that can change task: ``set_task`` records
the next one, and the copy's next ``reset`` applies it — a new env when the id or kwargs
differ, the parameters set on it, its seed used. Under the NEXT_STEP autoreset a vector env
resets a finished copy at its next step, without options: so the task is an attribute the
reset reads, set by the main process between the step that ended the episode and that reset
(``core/vec_env.py``). Which copy gets which task then follows from the order of events, not
from timing, and a resumed run is bitwise the unbroken one.

``TaskEnv`` gives its whole state through the snapshot protocol (``mentor.envs.snapshot``): its
task and next task, and the inner env's own snapshot, which it restores after rebuilding the
inner env for the saved task (its class may differ from the current one's).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from mentor.envs.snapshot import env_snapshot, restore_env
from mentor.errors import ConfigError


@dataclass(frozen=True)
class Task:
    """One setting of the env: ``env_id`` and ``kwargs`` make it, ``seed`` (None: the copy's
    own stream) resets it, ``params`` are set on ``env.unwrapped`` before each reset."""

    env_id: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    seed: int | None = None
    params: Mapping[str, float] = field(default_factory=dict)
    name: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"env_id": self.env_id, "kwargs": dict(self.kwargs), "seed": self.seed,
                "params": dict(self.params), "name": self.name}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Task:
        return cls(data["env_id"], data.get("kwargs") or {}, data.get("seed"),
                   data.get("params") or {}, data.get("name", ""))  # fmt: skip

    def same_env(self, other: Task | None) -> bool:
        """Whether ``other`` is made the same way (id and kwargs): then the env is kept."""
        if other is None or self.env_id != other.env_id:
            return False
        if self.kwargs is other.kwargs:  # a teacher's tasks share their stage's kwargs
            return True
        try:
            return bool(dict(self.kwargs) == dict(other.kwargs))
        except ValueError:  # an array among them: compared by its text
            return _key(self.kwargs) == _key(other.kwargs)


def _key(kwargs: Mapping[str, Any]) -> str:
    return json.dumps(kwargs, sort_keys=True, default=str)


# Parameters that others are computed from at construction: set with them, the derived ones are
# computed again (CartPole's total mass and pole mass-length).
DERIVED: dict[str, Callable[[Any], None]] = {
    "CartPoleEnv": lambda env: (
        setattr(env, "total_mass", env.masspole + env.masscart),
        setattr(env, "polemass_length", env.masspole * env.length),
    ),
}


def apply_params(
    env: gym.Env, params: Mapping[str, float], env_id: str, what: str = "curriculum.randomize"
) -> None:
    """Set each parameter on ``env.unwrapped``, which must have it (a typo is not a new one);
    ``what`` names the setting in the error."""
    base = env.unwrapped
    for name, value in params.items():
        if not hasattr(base, name):
            known = sorted(k for k, v in vars(base).items() if isinstance(v, int | float))
            raise ConfigError(
                f"{what}: env '{env_id}' has no parameter '{name}'; its numeric "
                f"attributes: {', '.join(known) or 'none'}"
            )
        setattr(base, name, type(getattr(base, name))(value))
    derive = DERIVED.get(type(base).__name__)
    if derive is not None and params:
        derive(base)


def max_return(env: gym.Env) -> float | None:
    """The most an episode of ``env`` can pay, where that is known: MiniGrid pays at most 1,
    once, when the goal is reached; CartPole 1 a step up to its time limit; an env declaring a
    finite ``reward_range`` its upper bound a step up to its time limit. None otherwise."""
    base = env.unwrapped
    steps = env.spec.max_episode_steps if env.spec is not None else None
    if type(base).__module__.startswith("minigrid."):
        return 1.0
    if type(base).__name__ == "CartPoleEnv" and steps is not None:
        return float(steps)
    upper = (getattr(base, "reward_range", None) or (None, None))[1]
    if upper is not None and steps is not None and upper != float("inf"):
        return float(upper) * steps
    return None


class TaskEnv(gym.Env):
    """One env copy whose task a curriculum sets (module docstring). ``make`` makes the env of
    a task (``mentor.envs.resolve.make_env`` with the run's options)."""

    def __init__(self, make: Callable[[str, Mapping[str, Any]], gym.Env], task: Task) -> None:
        self._make = make
        self.inner = make(task.env_id, task.kwargs)
        self.step = self.inner.step  # one call less per env step (a fast env feels it)
        apply_params(self.inner, task.params, task.env_id)  # a parameter it lacks fails here
        self.task: Task = task
        self.pending: Task | None = task  # applied at the next reset
        self._carried: int | None = None  # seeds a rebuilt env's first reset (``_rebuild``)
        self.observation_space = self.inner.observation_space
        self.action_space = self.inner.action_space
        self.metadata = getattr(self.inner, "metadata", {})
        self.render_mode = getattr(self.inner, "render_mode", None)

    def set_task(self, task: Task) -> None:
        """The task of this copy's next episode."""
        self.pending = task

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        if self.pending is not None:
            task, self.pending = self.pending, None
            if not task.same_env(self.task):
                self._rebuild(task)
            apply_params(self.inner, task.params, task.env_id)
            self.task = task
        if self.task.seed is not None:
            seed = self.task.seed
        elif seed is None and self._carried is not None:  # a new env goes on with the stream
            seed, self._carried = self._carried, None
        return self.inner.reset(seed=seed, options=options)

    def _rebuild(self, task: Task) -> None:
        """A new env for ``task``. The copy's random stream goes on in it: a seed drawn from
        the old env's generator seeds its first reset (a new env reset without a seed would
        take one from the OS, and the run would not repeat)."""
        self._carried = int(self.inner.np_random.integers(2**31 - 1))
        self.inner.close()
        self.inner = self._make(task.env_id, task.kwargs)
        self.step = self.inner.step

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        return self.inner.step(action)  # replaced by the inner env's own (``__init__``)

    def render(self) -> Any:
        return self.inner.render()

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:  # e.g. an env's own state() or action masks
        if name in ("inner", "_make", "env", "step"):  # no ``env``: snapshots stop at this layer
            raise AttributeError(name)
        return getattr(self.inner, name)

    # --- snapshots: the task, and the inner env's own snapshot --------------------------------

    def mentor_snapshot(self) -> dict[str, Any]:
        return {
            "task": self.task.to_json(),
            "pending": None if self.pending is None else self.pending.to_json(),
            "carried": self._carried,
            "inner": env_snapshot(self.inner),
        }

    def mentor_restore(self, snapshot: dict[str, Any]) -> None:
        task = Task.from_json(snapshot["task"])
        if not task.same_env(self.task):
            self._rebuild(task)
        self._carried = snapshot.get("carried")
        self.task = task
        pending = snapshot["pending"]
        self.pending = None if pending is None else Task.from_json(pending)
        restore_env(self.inner, snapshot["inner"])
        # The inner env's snapshot holds its state, not its parameters (CartPole's adapter has
        # the state, not the pole's length): the task's are set again.
        apply_params(self.inner, task.params, task.env_id)
