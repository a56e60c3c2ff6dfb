"""PettingZoo snapshots: every mpe2 env resumes bit for bit, and what cannot be captured says so."""

from __future__ import annotations

import copy
import importlib
import json
from typing import Any

import numpy as np
import pytest

pytest.importorskip("pettingzoo")
pytest.importorskip("mpe2")

from gymnasium import spaces
from mpe2.simple_spread.simple_spread import raw_env as SpreadRawEnv
from pettingzoo import AECEnv, ParallelEnv
from pettingzoo.utils import BaseParallelWrapper, BaseWrapper, wrappers
from pettingzoo.utils.conversions import aec_to_parallel_wrapper

from mentor.envs import snapshot_pettingzoo
from mentor.envs.snapshot import SnapshotUnavailable, from_json, to_json
from mentor.envs.snapshot_pettingzoo import (
    parallel_snapshot,
    register_mpe_env,
    restore_parallel,
)


def through_json(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The snapshot after a trip through a JSON file (strict JSON: no NaN literals)."""
    return from_json(json.loads(json.dumps(to_json(snapshot), allow_nan=False)))


def bits(value: Any) -> Any:
    """A value reduced to comparable bytes: type, dtype, shape and raw data for every leaf."""
    if isinstance(value, dict):
        return (type(value).__name__, [(key, bits(item)) for key, item in value.items()])
    if isinstance(value, list | tuple):
        return (type(value).__name__, [bits(item) for item in value])
    if isinstance(value, np.ndarray | np.generic):
        return (value.dtype.str, value.shape, value.tobytes())
    if type(value) is float:  # NaN == NaN and 0.0 != -0.0 by their bits
        return ("float", np.float64(value).tobytes())
    return (type(value).__name__, value)


# Not compared: rendering (pygame objects), spaces (their generators are the caller's, and the
# tests sample from copies), and the metadata dict mpe2's raw_envs all share and rename.
NOT_STATE = {"screen", "viewer", "game_font", "clock", "renderOn", "metadata"} | {
    "action_spaces",
    "observation_spaces",
    "state_space",
}


def graph(env: Any) -> Any:
    """Everything reachable from ``env`` through instance attributes, as comparable values.

    Objects are compared by class and attributes (sorted: restoring may reorder them), and an
    object met a second time by where it was first met, so a goal that is another entity of the
    world must be that entity again. Independent of the adapters: it sees what they leave out.
    """
    seen: dict[int, str] = {}

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, np.random.Generator):
            return ("generator", to_json(value.bit_generator.state))
        if isinstance(value, dict):
            items = [(key, walk(item, f"{path}[{key!r}]")) for key, item in value.items()]
            return (type(value).__name__, items)
        if isinstance(value, list | tuple):
            items = [walk(item, f"{path}[{i}]") for i, item in enumerate(value)]
            return (type(value).__name__, items)
        if isinstance(value, np.ndarray | np.generic | float | int | str | None):
            return bits(value)
        if hasattr(value, "__dict__") and not callable(value):
            if id(value) in seen:
                return ("seen", seen[id(value)])
            seen[id(value)] = path
            attributes = sorted(vars(value).items())
            items = [(k, walk(v, f"{path}.{k}")) for k, v in attributes if k not in NOT_STATE]
            return (type(value).__qualname__, items)
        return ("other", type(value).__qualname__)

    return walk(env, "env")


def make(module: str, **kwargs: Any) -> ParallelEnv:
    return importlib.import_module(f"mpe2.{module}").parallel_env(**kwargs)


def sample_actions(env: ParallelEnv, n: int, seed: int) -> list[dict[str, Any]]:
    """Action dicts for every possible agent, from copies of the spaces (the env's are left be)."""
    action_spaces = {agent: copy.deepcopy(env.action_space(agent)) for agent in env.possible_agents}
    for offset, space in enumerate(action_spaces.values()):
        space.seed(seed + offset)
    return [{agent: space.sample() for agent, space in action_spaces.items()} for _ in range(n)]


def play(env: ParallelEnv, actions: list[dict[str, Any]]) -> tuple[list[Any], int]:
    """The records of stepping through ``actions``, and how many episodes ended among them.

    When an episode has ended the env is reset without a seed (its own generator decides) and the
    reset's observations and infos are recorded too; each step records everything it returns and
    the global ``state()``.
    """
    records, ends = [], 0
    for action in actions:
        if not env.agents:
            records.append(("reset", bits(env.reset())))
        obs, rewards, terminations, truncations, infos = env.step(
            {agent: action[agent] for agent in env.agents}
        )
        records.append(bits((obs, dict(rewards), terminations, truncations, infos, env.state())))
        ends += not env.agents
    return records, ends


MAX_CYCLES = 6
CASES = [
    ("simple_v3", {}),
    ("simple_v3", {"continuous_actions": True}),
    ("simple_adversary_v3", {}),
    ("simple_adversary_v3", {"N": 4, "continuous_actions": True}),
    ("simple_adversary_v3", {"num_agent_neighbors": 1, "num_landmark_neighbors": 1}),
    ("simple_crypto_v3", {}),
    ("simple_crypto_v3", {"continuous_actions": True, "benchmark_data": True}),
    ("simple_push_v3", {}),
    ("simple_push_v3", {"continuous_actions": True}),
    ("simple_reference_v3", {}),
    ("simple_reference_v3", {"local_ratio": 0.2, "continuous_actions": True}),
    ("simple_speaker_listener_v4", {}),
    ("simple_speaker_listener_v4", {"continuous_actions": True, "benchmark_data": True}),
    ("simple_spread_v3", {}),
    ("simple_spread_v3", {"N": 4, "benchmark_data": True}),
    ("simple_spread_v3", {"continuous_actions": True, "curriculum": True}),
    ("simple_tag_v3", {}),
    (
        "simple_tag_v3",
        {"num_good": 2, "num_adversaries": 2, "curriculum": True, "continuous_actions": True},
    ),
    ("simple_world_comm_v3", {}),
    ("simple_world_comm_v3", {"continuous_actions": True, "benchmark_data": True}),
    ("simple_line_v1", {}),
    ("simple_formation_v1", {"N": 3, "continuous_actions": True}),
    ("collect_treasure_v1", {}),
    ("collect_treasure_v1", {"num_collectors": 3, "continuous_actions": True}),
]
IDS = [
    "-".join([module, *(f"{key}={value}" for key, value in kwargs.items())])
    for module, kwargs in CASES
]

# Where the snapshot is taken, as the number of actions played after reset(seed=3): right after
# the reset, mid-episode (past an episode end), and right after an episode's last step (the
# replay then starts with an unseeded reset, which draws from the restored generator).
WHEN = {"after_reset": 0, "mid_episode": 2 * MAX_CYCLES - 2, "after_end": 2 * MAX_CYCLES}


def resume(module: str, kwargs: dict[str, Any], when: str) -> tuple[bool, bool]:
    """Snapshot at ``when`` and go on; restore into a fresh env and replay the same actions.

    Returns whether the restored env's object graph is the original's at the snapshot, and
    whether the replay's records are bitwise the original's.
    """
    env = make(module, max_cycles=MAX_CYCLES, **kwargs)
    env.reset(seed=3)
    if hasattr(env.unwrapped, "advance_curriculum"):
        # A stage the fresh env would not have. mpe2 1.1.1 drops it (BaseScenario's
        # curriculum_stage property ignores writes); a fixed mpe2 would keep it in the scenario.
        env.unwrapped.advance_curriculum()
    play(env, sample_actions(env, WHEN[when], seed=1))
    assert (not env.agents) == (when == "after_end")
    snapshot = through_json(parallel_snapshot(env))
    as_it_was = graph(env)
    actions = sample_actions(env, 4 * MAX_CYCLES + 3, seed=2)
    expected, ends = play(env, actions)
    assert ends >= 3

    fresh = make(module, max_cycles=MAX_CYCLES, **kwargs)
    if when != "after_reset":  # after_reset restores into a never-reset env
        fresh.reset(seed=12345)
        play(fresh, sample_actions(fresh, 3, seed=7))
    restore_parallel(fresh, snapshot)
    return graph(fresh) == as_it_was, play(fresh, actions) == (expected, ends)


@pytest.mark.parametrize("when", WHEN)
@pytest.mark.parametrize(("module", "kwargs"), CASES, ids=IDS)
def test_mpe_env_resumes_bit_for_bit(module: str, kwargs: dict[str, Any], when: str) -> None:
    assert resume(module, kwargs, when) == (True, True)


def test_the_checks_catch_missing_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """Leave state out and the graph comparison sees it, and the replay where it matters."""
    attributes = snapshot_pettingzoo._MPE_ATTRIBUTES
    without_rng = tuple(name for name in attributes if name != "np_random")
    monkeypatch.setattr(snapshot_pettingzoo, "_MPE_ATTRIBUTES", without_rng)
    assert resume("simple_spread_v3", {}, "after_end") == (False, False)  # the next reset's draws
    without_steps = tuple(name for name in attributes if name != "steps")
    monkeypatch.setattr(snapshot_pettingzoo, "_MPE_ATTRIBUTES", without_steps)
    assert resume("simple_tag_v3", {}, "mid_episode") == (False, False)  # the episode's end
    monkeypatch.undo()

    order = "pettingzoo.utils.wrappers.order_enforcing.OrderEnforcingWrapper"
    monkeypatch.setitem(snapshot_pettingzoo.PETTINGZOO_ADAPTERS, order, ())
    with pytest.raises(Exception, match="before reset"):  # restored into a never-reset env
        resume("simple_v3", {}, "after_reset")
    monkeypatch.undo()

    # The scenario: simple_line's keeps the ideal positions that its rewards are measured from.
    monkeypatch.setattr(snapshot_pettingzoo, "_restore_mpe", restore_all_but_the_scenario)
    assert resume("simple_line_v1", {}, "mid_episode") == (False, False)


def restore_all_but_the_scenario(env: Any, state: dict[str, Any]) -> None:
    scenario = copy.copy(env.scenario)
    restore_mpe(env, state)
    env.scenario.__dict__.update(vars(scenario))


restore_mpe = snapshot_pettingzoo._restore_mpe


def test_a_never_reset_env_restores_as_never_reset() -> None:
    """A never-reset env has no rewards, no parallel agents list: restoring one removes them."""
    env = make("simple_adversary_v3")  # its constructor drew from an unseeded generator
    snapshot = through_json(parallel_snapshot(env))
    as_it_was = graph(env)
    fresh = make("simple_adversary_v3")
    fresh.reset(seed=0)
    play(fresh, sample_actions(fresh, 5, seed=0))
    restore_parallel(fresh, snapshot)
    assert graph(fresh) == as_it_was
    assert bits(fresh.reset()) == bits(env.reset())  # the same unseeded draws


def test_the_parallel_wrapper_shares_its_agents_list_again() -> None:
    env = make("simple_spread_v3")
    env.reset(seed=0)
    play(env, sample_actions(env, 2, seed=0))
    assert env.agents is env.aec_env.agents  # what aec_to_parallel_wrapper.step leaves
    fresh = make("simple_spread_v3")
    fresh.reset(seed=1)  # after a reset the wrapper holds a copy
    assert fresh.agents is not fresh.aec_env.agents
    restore_parallel(fresh, through_json(parallel_snapshot(env)))
    assert fresh.agents is fresh.aec_env.agents

    env.reset(seed=0)  # and a copy is restored as a copy
    restore_parallel(fresh, through_json(parallel_snapshot(env)))
    assert fresh.agents is not fresh.aec_env.agents and fresh.agents == env.agents


def test_a_snapshot_is_a_copy_and_restores_twice() -> None:
    env = make("simple_world_comm_v3", max_cycles=MAX_CYCLES)
    env.reset(seed=1)
    play(env, sample_actions(env, 4, seed=1))
    snapshot = parallel_snapshot(env)
    frozen = json.dumps(to_json(snapshot))
    actions = sample_actions(env, 20, seed=2)
    expected = play(env, actions)
    assert json.dumps(to_json(snapshot)) == frozen
    for _ in range(2):
        restore_parallel(env, snapshot)
        assert play(env, actions) == expected
    assert json.dumps(to_json(snapshot)) == frozen


def multi_episode_aec() -> ParallelEnv:
    from mpe2 import simple_tag_v3

    return aec_to_parallel_wrapper(wrappers.MultiEpisodeEnv(simple_tag_v3.env(max_cycles=4), 3))


def multi_episode_parallel() -> ParallelEnv:
    return wrappers.MultiEpisodeParallelEnv(make("simple_push_v3", max_cycles=4), 3)


def plain_wrappers() -> ParallelEnv:
    from mpe2 import simple_spread_v3

    aec = BaseWrapper(simple_spread_v3.env(max_cycles=4))
    return BaseParallelWrapper(aec_to_parallel_wrapper(aec))


@pytest.mark.parametrize("build", [multi_episode_aec, multi_episode_parallel, plain_wrappers])
def test_pettingzoo_wrappers_resume_bit_for_bit(build: Any) -> None:
    env = build()
    env.reset(seed=5)  # the multi-episode wrappers reset inside with seeds 6 and 7
    play(env, sample_actions(env, 6, seed=1))
    snapshot = through_json(parallel_snapshot(env))
    as_it_was = graph(env)
    actions = sample_actions(env, 20, seed=2)
    expected = play(env, actions)
    fresh = build()
    restore_parallel(fresh, snapshot)
    assert graph(fresh) == as_it_was
    assert play(fresh, actions) == expected


class MaskedCounter(AECEnv):
    """One agent counting its moves; move 2 is illegal (its info's mask says so)."""

    def __init__(self) -> None:
        self.metadata = {"name": "masked_counter", "is_parallelizable": True}
        self.render_mode = None
        self.possible_agents = ["player"]
        self.count = 0

    def observation_space(self, agent: str) -> spaces.Space:
        return spaces.Box(0, 100, (1,), np.float32)

    def action_space(self, agent: str) -> spaces.Space:
        return spaces.Discrete(3)

    def reset(self, seed: int | None = None, options: dict | None = None) -> None:
        self.agents = self.possible_agents[:]
        self.agent_selection = "player"
        self.count = 0
        self.rewards = {"player": 0.0}
        self._cumulative_rewards = {"player": 0.0}
        self.terminations = {"player": False}
        self.truncations = {"player": False}
        self.infos = {"player": {"action_mask": np.array([1, 1, 0], np.int8)}}

    def observe(self, agent: str) -> np.ndarray:
        return np.array([self.count], np.float32)

    def state(self) -> np.ndarray:
        return self.observe("player")

    def step(self, action: int) -> None:
        if self.terminations["player"] or self.truncations["player"]:
            self._was_dead_step(action)
            return
        self.count += 1 + action
        self.rewards["player"] = float(action)
        self.truncations["player"] = self.count >= 6
        self._cumulative_rewards["player"] = 0.0
        self._accumulate_rewards()

    def mentor_snapshot(self) -> dict[str, Any]:
        names = ("agents", "agent_selection", "count", "rewards", "_cumulative_rewards")
        names += ("terminations", "truncations", "infos", "_skip_agent_selection")
        return {name: vars(self)[name] for name in names if name in vars(self)}

    def mentor_restore(self, snapshot: dict[str, Any]) -> None:
        vars(self).pop("_skip_agent_selection", None)
        vars(self).update(snapshot)


def test_terminate_illegal_wrapper_keeps_the_mask_it_saw() -> None:
    def build() -> ParallelEnv:
        inner = wrappers.TerminateIllegalWrapper(MaskedCounter(), illegal_reward=-1)
        return aec_to_parallel_wrapper(wrappers.OrderEnforcingWrapper(inner))

    env = build()
    env.reset()
    env.step({"player": 1})  # the wrapper now holds the observation and info it saw
    snapshot = through_json(parallel_snapshot(env))
    assert snapshot["layers"][2]["state"]["_prev_obs"].tolist() == [2.0]
    actions = [{"player": a} for a in (0, 2, 1, 1, 0, 1, 1, 1, 0, 2, 0)]  # illegal 2s end episodes
    expected = play(env, actions)
    assert expected[1] >= 2
    fresh = build()
    restore_parallel(fresh, snapshot)
    assert play(fresh, actions) == expected


# --- What is refused, and restoring into the wrong env ---------------------------------------


class UnknownParallelWrapper(BaseParallelWrapper):
    pass


class UnknownAECWrapper(BaseWrapper):
    pass


class UnknownParallelEnv(ParallelEnv):
    pass


class Hidden(ParallelEnv):
    """A wrapper that keeps its env under a name the walk does not know."""

    def __init__(self, env: ParallelEnv) -> None:
        self.inner = env

    @property
    def unwrapped(self) -> ParallelEnv:
        return self.inner.unwrapped


def spread_aec() -> AECEnv:
    from mpe2 import simple_spread_v3

    return simple_spread_v3.env()


class MySpread(SpreadRawEnv):
    """An MPE env mentor has not checked (it might add state)."""


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (lambda: UnknownParallelWrapper(make("simple_spread_v3")), "UnknownParallelWrapper does"),
        (lambda: aec_to_parallel_wrapper(UnknownAECWrapper(spread_aec())), "UnknownAECWrapper"),
        (UnknownParallelEnv, "UnknownParallelEnv does not give its state"),
        (lambda: Hidden(make("simple_v3")), "Hidden keeps the env it wraps in neither .env nor"),
        (
            lambda: aec_to_parallel_wrapper(MySpread()),
            "MySpread is an MPE env (a SimpleEnv) mentor has not checked",
        ),
    ],
    ids=["parallel-wrapper", "aec-wrapper", "parallel-env", "hidden", "mpe-subclass"],
)
def test_a_layer_without_state_access_is_named(build: Any, reason: str) -> None:
    with pytest.raises(SnapshotUnavailable) as caught:
        parallel_snapshot(build())
    assert caught.value.reason.startswith(reason)


def test_a_registered_mpe_subclass_resumes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snapshot_pettingzoo, "MPE_ENVS", set(snapshot_pettingzoo.MPE_ENVS))
    cls = MySpread
    register_mpe_env(cls)
    env = aec_to_parallel_wrapper(cls(max_cycles=4))
    env.reset(seed=0)
    snapshot = through_json(parallel_snapshot(env))
    actions = sample_actions(env, 10, seed=0)
    expected = play(env, actions)
    fresh = aec_to_parallel_wrapper(cls(max_cycles=4))
    restore_parallel(fresh, snapshot)
    assert play(fresh, actions) == expected
    with pytest.raises(TypeError, match="is not a subclass of mpe2's SimpleEnv"):
        register_mpe_env(UnknownParallelEnv)


def with_agent_0(change: Any) -> ParallelEnv:
    env = make("simple_spread_v3")
    change(env.unwrapped.world.agents[0])
    return env


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda agent: setattr(agent, "u_noise", 0.1), "has motor or communication noise"),
        (lambda agent: setattr(agent, "c_noise", 0.1), "numpy's global generator, outside"),
        (lambda agent: setattr(agent, "action_callback", print), "is a scripted agent"),
        (lambda agent: setattr(agent, "brain", object()), "attribute brain: a object is not a"),
        (lambda agent: setattr(agent.state, "memory", [object()]), "state, attribute memory[0]"),
    ],
    ids=["u_noise", "c_noise", "scripted", "object", "object-in-state"],
)
def test_world_state_out_of_reach_is_refused_by_name(change: Any, reason: str) -> None:
    with pytest.raises(SnapshotUnavailable) as caught:
        parallel_snapshot(with_agent_0(change))
    assert caught.value.reason.startswith("mpe2.simple_spread.simple_spread.raw_env: world entity")
    assert "'agent_0'" in caught.value.reason and reason in caught.value.reason


class CountingWrapper(BaseParallelWrapper):
    """A parallel wrapper with state of its own, given through the protocol."""

    def __init__(self, env: ParallelEnv) -> None:
        super().__init__(env)
        self.count = 0

    def step(self, actions: dict[str, Any]) -> Any:
        self.count += 1
        return super().step(actions)

    def mentor_snapshot(self) -> dict[str, Any]:
        return {"count": self.count}

    def mentor_restore(self, snapshot: dict[str, Any]) -> None:
        self.count = snapshot["count"]


def test_a_layer_that_opts_in_gives_its_own_state() -> None:
    env = CountingWrapper(make("simple_v3"))
    env.reset(seed=0)
    play(env, sample_actions(env, 3, seed=0))
    snapshot = through_json(parallel_snapshot(env))
    assert snapshot["layers"][0] == {"type": f"{__name__}.CountingWrapper", "state": {"count": 3}}
    fresh = CountingWrapper(make("simple_v3"))
    restore_parallel(fresh, snapshot)
    assert fresh.count == 3 and graph(fresh) == graph(env)


def test_restoring_into_another_env_names_both_and_changes_nothing() -> None:
    spread = make("simple_spread_v3")
    spread.reset(seed=0)
    snapshot = parallel_snapshot(spread)

    adversary = make("simple_adversary_v3")
    with pytest.raises(ValueError) as caught:
        restore_parallel(adversary, snapshot)
    message = str(caught.value)
    assert message.startswith("the snapshot is of pettingzoo.utils.conversions.aec_to_parallel")
    assert "simple_spread.raw_env>>>, the env is " in message
    assert message.endswith("mpe2.simple_adversary.simple_adversary.raw_env>>>")

    with pytest.raises(ValueError, match=r"is of .*AssertOutOfBoundsWrapper<.*ClipOutOfBounds"):
        restore_parallel(make("simple_spread_v3", continuous_actions=True), snapshot)

    bigger = make("simple_spread_v3", N=4)
    bigger.reset(seed=1)
    before = graph(bigger)
    with pytest.raises(ValueError) as caught:
        restore_parallel(bigger, snapshot)
    assert str(caught.value) == (
        "the snapshot is of a mpe2.simple_spread.simple_spread.raw_env whose world has 6 entities "
        "(agent_0, agent_1, agent_2, landmark 0, landmark 1, landmark 2), the env's has 8 "
        "(agent_0, agent_1, agent_2, agent_3, landmark 0, landmark 1, landmark 2, landmark 3)"
    )
    assert graph(bigger) == before

    with pytest.raises(ValueError, match="not an env snapshot of format"):
        restore_parallel(spread, {"layers": []})


# --- PettingZoo's classic board games --------------------------------------------------------


def play_turns(env: ParallelEnv, obs: dict[str, Any], moves: int, seed: int) -> list[Any]:
    """``moves`` legal moves, chosen from the masks by a seeded generator (so the same position
    gets the same move); an ended game resets. The records of every step and reset."""
    rng, records = np.random.default_rng(seed), []
    for _ in range(moves):
        if not env.agents:
            obs, infos = env.reset()
            records.append(("reset", bits((obs, infos))))
        actions = {}
        for agent in env.agents:
            allowed = np.flatnonzero(obs[agent]["action_mask"])
            actions[agent] = int(rng.choice(allowed)) if allowed.size else 0
        obs, *rest = env.step(actions)
        records.append(bits((obs, *[dict(r) for r in rest])))
    return records


@pytest.mark.parametrize("game", ["connect_four_v3", "tictactoe_v3"])
@pytest.mark.parametrize("moves", [0, 5, 9])
def test_classic_board_games_resume_bit_for_bit(game: str, moves: int) -> None:
    """Snapshot after ``moves`` moves (an empty board, mid-game, a game over or near it),
    restore into a fresh env that played elsewhere: the same object graph and the same
    records over the next 40 moves (several games)."""
    from mentor.envs.pettingzoo import make_parallel_env

    env = make_parallel_env(f"pettingzoo.classic.{game}", {})
    obs, _ = env.reset(seed=3)
    play_turns(env, obs, moves, seed=1)
    obs = {agent: env.aec_env.observe(agent) for agent in env.agents}
    snapshot = through_json(parallel_snapshot(env))
    as_it_was = graph(env)
    expected = play_turns(env, obs, 40, seed=2)
    fresh = make_parallel_env(f"pettingzoo.classic.{game}", {})
    fresh_obs, _ = fresh.reset(seed=9)
    play_turns(fresh, fresh_obs, 4, seed=7)
    restore_parallel(fresh, snapshot)
    assert graph(fresh) == as_it_was
    assert play_turns(fresh, obs, 40, seed=2) == expected
