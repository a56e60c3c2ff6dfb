"""Env snapshots: restored envs continue bit for bit, and what cannot be captured says so."""

from __future__ import annotations

import copy
import json
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.classic_control import CartPoleEnv
from gymnasium.vector import AutoresetMode

from mentor.envs import snapshot as snapshot_module
from mentor.envs import testing
from mentor.envs.snapshot import (
    SnapshotUnavailable,
    env_snapshot,
    from_json,
    restore_env,
    restore_vector,
    to_json,
    vector_snapshot,
)


def through_json(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The snapshot after a trip through a JSON file (strict JSON: no NaN literals)."""
    return from_json(json.loads(json.dumps(to_json(snapshot), allow_nan=False)))


def bits(value: Any) -> Any:
    """A value reduced to comparable bytes: dtype, shape and raw data for every leaf."""
    if isinstance(value, dict):
        return {key: bits(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [bits(item) for item in value]
    if isinstance(value, np.ndarray | np.generic):
        return (value.dtype.str, value.shape, value.tobytes())
    if type(value) is float:  # NaN == NaN and 0.0 != -0.0 by their bits
        return ("float", np.float64(value).tobytes())
    return (type(value).__name__, value)


# Instance attributes that are not state: links to other layers (compared on their own), the
# env factories, a cache, and SyncVectorEnv's output buffers (rewritten before each use).
NOT_STATE = {"env", "envs", "env_fns", "_cached_spec"} | {
    "_observations",
    "_rewards",
    "_terminations",
    "_truncations",
}


def same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, np.random.Generator):
        return to_json(a.bit_generator.state) == to_json(b.bit_generator.state)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[key], b[key]) for key in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, np.ndarray | np.generic | float):
        return bits(a) == bits(b)
    return a == b


def differing_state(a: Any, b: Any) -> list[str]:
    """``Layer.attribute`` for every instance attribute, in any layer, that differs."""
    layers_a, layers_b = snapshot_module._chain(a), snapshot_module._chain(b)
    assert [type(x) for x in layers_a] == [type(y) for y in layers_b]
    differing = []
    for x, y in zip(layers_a, layers_b, strict=True):
        for name in (vars(x).keys() | vars(y).keys()) - NOT_STATE:
            if not same(vars(x).get(name, "absent"), vars(y).get(name, "absent")):
                differing.append(f"{type(x).__name__}.{name}")
        for sub_x, sub_y in zip(getattr(x, "envs", []), getattr(y, "envs", []), strict=True):
            differing += differing_state(sub_x, sub_y)
    return sorted(differing)


def play(env: gym.Env, actions: list[Any], end_episodes: bool = True) -> list[Any]:
    """Step through ``actions``; after an episode ends, reset without a seed (the env's RNG)."""
    records = []
    for action in actions:
        obs, reward, terminated, truncated, _ = env.step(action)
        records.append(bits((obs, reward, terminated, truncated)))
        if end_episodes and (terminated or truncated):
            records.append(bits(env.reset()[0]))
    return records


def play_vector(venv: gym.vector.VectorEnv, actions: list[Any]) -> tuple[list[Any], int]:
    """The step records, and how many episodes ended among them."""
    records, ends = [], 0
    for action in actions:
        obs, reward, terminated, truncated, _ = venv.step(action)
        records.append(bits((obs, reward, terminated, truncated)))
        ends += int((terminated | truncated).sum())
    return records, ends


def sample_actions(space: gym.Space, n: int, seed: int = 1) -> list[Any]:
    space.seed(seed)
    return [space.sample() for _ in range(n)]


CLASSIC = ["CartPole-v1", "Pendulum-v1", "MountainCar-v0", "MountainCarContinuous-v0", "Acrobot-v1"]


def resume(env_id: str, make_kwargs: dict[str, Any]) -> tuple[list[str], bool]:
    """Snapshot mid-run and go on; restore into a fresh env and replay the same actions.

    Returns the attributes that differ between the env as it was at the snapshot and the
    restored one, and whether the replay's records are bitwise those of the original.
    """
    env = gym.make(env_id, **make_kwargs)
    env.reset(seed=3)
    play(env, sample_actions(env.action_space, 13))  # already crosses an episode end
    snapshot = through_json(env_snapshot(env))
    as_it_was = copy.deepcopy(env)
    after = sample_actions(env.action_space, 50, seed=2)
    expected = play(env, after)

    fresh = gym.make(env_id, **make_kwargs)
    fresh.reset(seed=12345)
    fresh.step(fresh.action_space.sample())
    restore_env(fresh, snapshot)
    return differing_state(as_it_was, fresh), play(fresh, after) == expected


@pytest.mark.parametrize("env_id", CLASSIC)
def test_classic_control_env_resumes_bit_for_bit_across_episode_ends(env_id: str) -> None:
    assert resume(env_id, {"max_episode_steps": 9}) == ([], True)


def test_the_checks_catch_a_missing_attribute(monkeypatch: pytest.MonkeyPatch) -> None:
    """Leave state out of an adapter and both the state check and the replay see it."""
    adapters = snapshot_module.ADAPTERS
    monkeypatch.setitem(adapters, "gymnasium.wrappers.common.TimeLimit", ())
    assert resume("Pendulum-v1", {"max_episode_steps": 9}) == (["TimeLimit._elapsed_steps"], False)
    monkeypatch.undo()
    pendulum = "gymnasium.envs.classic_control.pendulum.PendulumEnv"
    monkeypatch.setitem(adapters, pendulum, ("state", "_np_random", "_np_random_seed"))
    assert resume("Pendulum-v1", {"max_episode_steps": 9}) == (["PendulumEnv.last_u"], True)
    monkeypatch.undo()
    cartpole = "gymnasium.envs.classic_control.cartpole.CartPoleEnv"
    monkeypatch.setitem(adapters, cartpole, ("state", "steps_beyond_terminated"))
    differing, replays = resume("CartPole-v1", {"max_episode_steps": 9})
    assert differing == ["CartPoleEnv._np_random", "CartPoleEnv._np_random_seed"] and not replays


def test_cartpole_stepped_past_termination_keeps_its_count() -> None:
    env = gym.make("CartPole-v1", disable_env_checker=True)
    env.reset(seed=0)
    while not env.step(1)[2]:
        pass
    snapshot = through_json(env_snapshot(env))
    as_it_was = copy.deepcopy(env)
    with pytest.warns(UserWarning, match="already returned terminated"):
        expected = play(env, [1, 1, 1], end_episodes=False)
    fresh = gym.make("CartPole-v1", disable_env_checker=True)
    restore_env(fresh, snapshot)  # never reset: the snapshot carries OrderEnforcing's flag
    assert differing_state(as_it_was, fresh) == []
    with pytest.warns(UserWarning, match="already returned terminated"):
        assert play(fresh, [1, 1, 1], end_episodes=False) == expected
    assert expected[0][1] == bits(0.0)  # reward 0 after the end, not the 1 of a first end


def test_snapshot_right_after_reset_restores_into_a_never_reset_env() -> None:
    env = gym.make("CartPole-v1")
    env.reset(seed=5)
    snapshot = through_json(env_snapshot(env))
    as_it_was = copy.deepcopy(env)
    actions = sample_actions(env.action_space, 40)
    expected = play(env, actions)
    fresh = gym.make("CartPole-v1")
    restore_env(fresh, snapshot)  # the env checker's flags and its kept reset data come along
    assert differing_state(as_it_was, fresh) == []
    assert play(fresh, actions) == expected


def test_the_env_checkers_render_and_close_flags_come_along() -> None:
    env = gym.make("CartPole-v1")
    env.reset(seed=5)
    with pytest.warns(UserWarning, match="render"):
        env.render()  # sets checked_render
    env.close()  # sets close_called
    fresh = gym.make("CartPole-v1")
    restore_env(fresh, through_json(env_snapshot(env)))
    assert differing_state(env, fresh) == []


def step_until_an_episode_ends(venv: gym.vector.VectorEnv, actions: list[Any]) -> None:
    """Step past 5 steps and stop right after some env's episode ended (its reset is next)."""
    for index, action in enumerate(actions):
        _, _, terminated, truncated, _ = venv.step(action)
        if index >= 5 and (terminated | truncated).any():
            return
    raise AssertionError("no episode ended")


def sync_cartpole(n: int = 4) -> gym.vector.SyncVectorEnv:
    return gym.vector.SyncVectorEnv(
        [lambda: gym.make("CartPole-v1", max_episode_steps=15)] * n,
        autoreset_mode=AutoresetMode.NEXT_STEP,
    )


def native_cartpole() -> gym.vector.VectorEnv:
    return gym.make_vec(
        "CartPole-v1", 8, vectorization_mode="vector_entry_point", max_episode_steps=15
    )


@pytest.mark.parametrize("make", [sync_cartpole, native_cartpole], ids=["sync", "native"])
def test_vector_env_resumes_bit_for_bit_across_autoresets(make: Any) -> None:
    venv = make()
    venv.reset(seed=3, options={"low": -0.1, "high": 0.1})  # later autoresets use these bounds
    step_until_an_episode_ends(venv, sample_actions(venv.action_space, 100))
    snapshot = through_json(vector_snapshot(venv))
    as_it_was = copy.deepcopy(venv)
    actions = sample_actions(venv.action_space, 60, seed=2)
    expected = play_vector(venv, actions)
    assert expected[1] > 2  # several episode ends, and the autoresets after them

    fresh = make()
    fresh.reset(seed=777)
    restore_vector(fresh, snapshot)
    assert differing_state(as_it_was, fresh) == []
    assert play_vector(fresh, actions) == expected


def test_a_snapshot_is_a_copy_and_restores_twice() -> None:
    venv = native_cartpole()  # steps its arrays in place
    venv.reset(seed=1)
    step_until_an_episode_ends(venv, sample_actions(venv.action_space, 100))
    snapshot = vector_snapshot(venv)
    frozen = json.dumps(to_json(snapshot))
    actions = sample_actions(venv.action_space, 30)
    expected = play_vector(venv, actions)
    assert json.dumps(to_json(snapshot)) == frozen
    for _ in range(2):
        restore_vector(venv, snapshot)
        assert play_vector(venv, actions) == expected
    assert json.dumps(to_json(snapshot)) == frozen


class UnknownWrapper(gym.Wrapper):
    pass


class UnknownEnv(gym.Env):
    observation_space = gym.spaces.Discrete(2)
    action_space = gym.spaces.Discrete(2)


class CartPoleSubclass(CartPoleEnv):
    pass


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: UnknownWrapper(gym.make("CartPole-v1")), "UnknownWrapper"),
        (lambda: gym.wrappers.TimeLimit(UnknownEnv(), 10), "UnknownEnv"),
        (lambda: gym.wrappers.TimeLimit(CartPoleSubclass(), 10), "CartPoleSubclass"),
        (
            lambda: gym.wrappers.vector.RecordEpisodeStatistics(sync_cartpole(2)),
            "RecordEpisodeStatistics",
        ),
        (lambda: sync_cartpole_with(UnknownWrapper), "UnknownWrapper"),
    ],
)
def test_a_layer_without_state_access_is_named(make: Any, name: str) -> None:
    with pytest.raises(SnapshotUnavailable) as caught:
        env_snapshot(make())
    assert caught.value.reason.startswith(f"{name} does not give its state")


def sync_cartpole_with(wrapper: type) -> gym.vector.SyncVectorEnv:
    return gym.vector.SyncVectorEnv([lambda: wrapper(gym.make("CartPole-v1"))])


class Counting(gym.Wrapper):
    """A wrapper with state of its own, given through the protocol."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.count = np.zeros(1, np.int64)
        self.restored: list[dict[str, Any]] = []

    def step(self, action: Any) -> Any:
        self.count += 1  # in place: a snapshot must not follow
        return super().step(action)

    def mentor_snapshot(self) -> dict[str, Any]:
        return {"count": self.count}

    def mentor_restore(self, snapshot: dict[str, Any]) -> None:
        self.restored.append(snapshot)
        self.count = snapshot["count"]


def test_a_layer_that_opts_in_gives_and_takes_its_own_state() -> None:
    env = Counting(gym.make("CartPole-v1"))
    env.reset(seed=0)
    env.step(0)
    snapshot = env_snapshot(env)
    env.step(0)
    assert snapshot["layers"][0]["state"]["count"].tolist() == [1]
    assert snapshot["layers"][1]["state"] == {"_elapsed_steps": 1}  # inner layers still there

    fresh = Counting(gym.make("CartPole-v1"))
    restore_env(fresh, snapshot)
    restore_env(fresh, snapshot)
    assert len(fresh.restored) == 2 and fresh.count.tolist() == [1]
    fresh.step(0)  # steps the restored count in place; the snapshot keeps its 1
    assert snapshot["layers"][0]["state"]["count"].tolist() == [1]


class SelfSnapshottingVectorEnv(gym.vector.SyncVectorEnv):
    """A vector env that opts in: the protocol comes before SyncVectorEnv's handling."""

    def mentor_snapshot(self) -> dict[str, Any]:
        return {"all": "mine"}

    def mentor_restore(self, snapshot: dict[str, Any]) -> None:
        self.got = snapshot


class HalfProtocol(gym.Wrapper):
    def mentor_snapshot(self) -> dict[str, Any]:
        return {}


def test_the_protocol_comes_first_and_must_be_whole() -> None:
    venv = SelfSnapshottingVectorEnv([lambda: UnknownWrapper(gym.make("CartPole-v1"))])
    snapshot = vector_snapshot(venv)
    assert snapshot["layers"] == [
        {"type": f"{__name__}.SelfSnapshottingVectorEnv", "state": {"all": "mine"}}
    ]
    restore_vector(venv, through_json(snapshot))
    assert venv.got == {"all": "mine"}
    with pytest.raises(SnapshotUnavailable, match="HalfProtocol defines mentor_snapshot but not"):
        env_snapshot(HalfProtocol(gym.make("CartPole-v1")))


def test_restoring_into_another_chain_names_both() -> None:
    snapshot = env_snapshot(gym.make("CartPole-v1"))
    with pytest.raises(ValueError) as caught:
        restore_env(gym.make("CartPole-v1", disable_env_checker=True), snapshot)
    assert str(caught.value) == (
        "the snapshot is of TimeLimit<OrderEnforcing<PassiveEnvChecker<CartPoleEnv>>>, "
        "the env is TimeLimit<OrderEnforcing<CartPoleEnv>>"
    )
    with pytest.raises(ValueError, match=r"the env is TimeLimit<.*PendulumEnv>>>"):
        restore_env(gym.make("Pendulum-v1"), snapshot)
    vector = vector_snapshot(sync_cartpole(4))
    with pytest.raises(ValueError, match="SyncVectorEnv of 4 envs, the env has 2"):
        restore_vector(sync_cartpole(2), vector)
    with pytest.raises(ValueError, match="the env is CartPoleVectorEnv"):
        restore_vector(native_cartpole(), vector)

    # All checked before anything changes: env 0 keeps its state when env 1 does not match.
    source = sync_cartpole(2)
    source.reset(seed=0)
    target = gym.vector.SyncVectorEnv(
        [lambda: gym.make("CartPole-v1"), lambda: gym.make("CartPole-v1", disable_env_checker=True)]
    )
    target.reset(seed=1)
    before = copy.deepcopy(target)
    with pytest.raises(ValueError, match="SyncVectorEnv env 1: the snapshot is of TimeLimit<"):
        restore_vector(target, vector_snapshot(source))
    assert differing_state(before, target) == []


TESTING_ENVS = [
    testing.MultiDiscreteEnv,
    testing.MultiBinaryEnv,
    testing.DictObsEnv,
    testing.ImageEnv,
    testing.ContinuousEnv,
    lambda: testing.NaNEnv(nan_after=30),
    lambda: testing.NaNEnv(nan_after=30, where="reward"),
]


@pytest.mark.parametrize("make", TESTING_ENVS)
def test_testing_envs_resume_bit_for_bit(make: Any) -> None:
    env = make()
    env.reset(seed=4)
    play(env, sample_actions(env.action_space, 20))
    snapshot = through_json(env_snapshot(env))
    as_it_was = copy.deepcopy(env)
    actions = sample_actions(env.action_space, 40, seed=2)
    expected = play(env, actions)
    fresh = make()
    fresh.reset(seed=99)
    restore_env(fresh, snapshot)
    assert differing_state(as_it_was, fresh) == []
    assert play(fresh, actions) == expected


@pytest.mark.parametrize("bit_generator", ["PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64"])
def test_generators_survive_json_and_stay_separate(bit_generator: str) -> None:
    rng = np.random.Generator(getattr(np.random, bit_generator)(7))
    rng.random(3)
    copy = through_json(rng)
    assert type(copy.bit_generator).__name__ == bit_generator and copy is not rng
    assert np.array_equal(copy.random(5), rng.random(5))
    assert np.array_equal(copy.integers(0, 2**62, 5), rng.integers(0, 2**62, 5))


def test_values_survive_json_bit_for_bit() -> None:
    values = {
        "f64": np.array([[0.1, -0.0], [np.nan, -np.inf]]),
        "f32": np.array([1e-45, 3.4e38, 0.1], np.float32),
        "fortran": np.asfortranarray(np.arange(6, dtype=np.int16).reshape(2, 3)),
        "empty": np.zeros((0, 3), np.uint8),
        "scalars": (np.float32(0.1), np.float64(-0.0), np.int64(-(2**63)), np.bool_(True)),
        "python": [0.1, float("nan"), float("-inf"), 2**127 + 1, -(2**64), True, None, "x"],
        "nested": {"__ndarray__": "a plain key", "__dict__": {"__tuple__": ()}},
    }
    back = through_json(values)
    assert bits(back) == bits(values)
    assert back["nested"] == {"__ndarray__": "a plain key", "__dict__": {"__tuple__": ()}}
    assert type(back["scalars"]) is tuple and type(back["scalars"][0]) is np.float32
    assert back["fortran"].flags.f_contiguous and back["f32"].flags.writeable
    assert [type(item) for item in back["python"]] == [type(item) for item in values["python"]]
    with pytest.raises(TypeError, match=r"snapshot\.bad\[0\]: a object is not"):
        to_json({"bad": [object()]})
    with pytest.raises(TypeError, match="not a str"):
        to_json({1: 2})
