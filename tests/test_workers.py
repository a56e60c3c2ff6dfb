"""WorkerVecEnv: the same transitions as Gymnasium's SyncVectorEnv, and envs that crash, hang or
die are restarted (with the mentor.envs.faulty envs) until the restart limit."""

from __future__ import annotations

import os
import signal
import sys
import time
from functools import partial

import cloudpickle
import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from mentor.core.vec_env import VecEnv
from mentor.core.workers import WorkerVecEnv
from mentor.envs.faulty import CrashingEnv, DyingEnv, HangingEnv, UnevenEnv
from mentor.envs.testing import InfoEnv
from mentor.errors import EnvError, EnvWorkerError

HEALTHY = partial(CrashingEnv, crash_at_step=10**9)  # a faulty env that never gets to fail


def pool(env_fns, **kwargs) -> tuple[WorkerVecEnv, list[str]]:
    messages: list[str] = []
    return WorkerVecEnv(env_fns, on_restart=messages.append, **kwargs), messages


def test_same_transitions_as_sync_vector_env() -> None:
    fns = [partial(gym.make, "CartPole-v1")] * 3
    sync = gym.vector.SyncVectorEnv(fns, autoreset_mode=AutoresetMode.NEXT_STEP)
    workers = WorkerVecEnv(fns)
    assert workers.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert workers.observation_space == sync.observation_space
    assert workers.action_space == sync.action_space
    actions = np.random.default_rng(0).integers(0, 2, (300, 3))
    try:
        expected, _ = sync.reset(seed=5)
        got, infos = workers.reset(seed=5)
        np.testing.assert_array_equal(got, expected)
        assert infos == {}
        ends = 0
        for action in actions:
            expected = sync.step(action)
            got = workers.step(action)
            for want, have in zip(expected[:4], got[:4], strict=True):
                np.testing.assert_array_equal(have, want)
            ends += int(np.sum(got[2] | got[3]))
            np.testing.assert_array_equal(workers._autoreset_envs, sync._autoreset_envs)
        assert ends >= 6  # episodes ended and were autoreset along the way
    finally:
        sync.close()
        workers.close()


def test_crashing_env_is_restarted_then_the_limit_raises() -> None:
    crashing = partial(CrashingEnv, crash_at_step=3)
    env, messages = pool([HEALTHY, crashing, HEALTHY], max_restarts=1)
    try:
        obs, _ = env.reset(seed=10)
        for _ in range(2):
            obs, *_ = env.step(np.zeros(3, dtype=np.int64))
        assert messages == []
        crashed, rewards, terminated, truncated, _ = env.step(np.ones(3, dtype=np.int64))
        assert len(messages) == 1
        assert messages[0].startswith("env 1 raised RuntimeError in step: CrashingEnv crashed")
        assert "(restart 1 of 1)" in messages[0]
        assert "Traceback (most recent call last)" in messages[0]
        assert "in _fail" in messages[0]  # the worker's own traceback
        np.testing.assert_array_equal(crashed[1], obs[1])  # the last good observation
        assert (rewards[1], terminated[1], truncated[1]) == (0.0, False, True)
        assert not truncated[0] and not truncated[2]
        assert not np.array_equal(crashed[0], obs[0])  # the others stepped on

        reset, rewards, terminated, truncated, _ = env.step(np.ones(3, dtype=np.int64))
        # Reset in the new worker, seeded with reset seed + index + 1000 x restart number.
        fresh, _ = CrashingEnv(crash_at_step=3).reset(seed=10 + 1 + 1000)
        np.testing.assert_array_equal(reset[1], fresh)
        assert (rewards[1], terminated[1], truncated[1]) == (0.0, False, False)
        env.step(np.ones(3, dtype=np.int64))
        env.step(np.ones(3, dtype=np.int64))  # the new env's step 2: no crash yet

        with pytest.raises(EnvWorkerError) as raised:
            env.step(np.ones(3, dtype=np.int64))  # its step 3: one restart too many
        message = str(raised.value)
        assert message.startswith("env 1 raised RuntimeError in step")
        assert message.endswith("restart limit (1) used up")
        assert "\n" not in message
        assert "RuntimeError: CrashingEnv crashed" in raised.value.traceback
        assert env.closed
    finally:
        env.close()


def test_env_that_crashes_once_lets_training_go_on(tmp_path) -> None:
    count_file = str(tmp_path / "crashes")
    once = partial(CrashingEnv, crash_at_step=2, times=1, count_file=count_file)
    env, messages = pool([once, HEALTHY], max_restarts=1)
    try:
        env.reset(seed=0)
        truncations = sum(env.step(np.zeros(2, dtype=np.int64))[3].sum() for _ in range(60))
        assert len(messages) == 1
        assert truncations == 1 + 2  # the crash, then each env's first 50-step episode
    finally:
        env.close()


def test_hanging_env_is_restarted_after_the_timeout() -> None:
    hanging = partial(HangingEnv, hang_at_step=2, seconds=60.0)
    env, messages = pool([HEALTHY, hanging], timeout=0.5)
    try:
        env.reset(seed=0)
        env.step(np.zeros(2, dtype=np.int64))
        start = time.monotonic()
        _, _, _, truncated, _ = env.step(np.zeros(2, dtype=np.int64))
        assert time.monotonic() - start < 5.0
        assert truncated.tolist() == [False, True]
        assert messages[0].startswith("env 1 did not answer a step within 0.5 s")
        env.step(np.zeros(2, dtype=np.int64))
        _, _, _, truncated, _ = env.step(np.zeros(2, dtype=np.int64))
        assert not truncated.any()
    finally:
        env.close()


def test_dying_env_is_restarted() -> None:
    env, messages = pool([partial(DyingEnv, die_at_step=2), HEALTHY])
    try:
        env.reset(seed=0)
        old_pid = env._processes[0].pid
        env.step(np.zeros(2, dtype=np.int64))
        _, _, _, truncated, _ = env.step(np.zeros(2, dtype=np.int64))
        assert truncated.tolist() == [True, False]
        assert messages == [
            "env 0's worker died in step (exit code 1); restarted it (restart 1 of 3)"
        ]
        assert env._processes[0].pid != old_pid and env._processes[0].is_alive()
        env.step(np.zeros(2, dtype=np.int64))
        env.step(np.zeros(2, dtype=np.int64))
        assert len(messages) == 1
    finally:
        env.close()


def test_fault_in_reset_restarts_and_retries(tmp_path) -> None:
    once = partial(CrashingEnv, on_reset=True, times=1, count_file=str(tmp_path / "crashes"))
    env, messages = pool([HEALTHY, once])
    try:
        obs, _ = env.reset(seed=3)
        assert len(messages) == 1 and messages[0].startswith("env 1 raised RuntimeError in reset")
        expected, _ = CrashingEnv().reset(seed=4)  # retried with the seed it was asked for
        np.testing.assert_array_equal(obs[1], expected)
    finally:
        env.close()


def test_workers_ignore_sigint() -> None:
    env, messages = pool([HEALTHY, HEALTHY])
    try:
        env.reset(seed=0)  # the workers are up and serving
        for process in env._processes:
            os.kill(process.pid, signal.SIGINT)
        time.sleep(0.2)
        env.step(np.zeros(2, dtype=np.int64))
        assert all(process.is_alive() for process in env._processes)
        assert messages == []
    finally:
        env.close()


def test_call_and_close() -> None:
    env, _ = pool([HEALTHY, HEALTHY])
    env.reset(seed=0)
    env.step(np.zeros(2, dtype=np.int64))
    assert env.call("steps_taken") == (1, 1)
    with pytest.raises(EnvWorkerError, match="env 0 raised AttributeError in call"):
        env.call("no_such_attribute")
    processes = list(env._processes)
    env.close()
    env.close()
    assert not any(process.is_alive() for process in processes)
    assert all(process.exitcode == 0 for process in processes)  # closed, not killed
    with pytest.raises(gym.error.ClosedEnvironmentError):
        env.step(np.zeros(2, dtype=np.int64))


def replay(env: WorkerVecEnv, actions: np.ndarray) -> list[tuple]:
    return [tuple(np.copy(x) for x in env.step(action)[:4]) for action in actions]


def assert_same(first: list[tuple], again: list[tuple]) -> None:
    for a, b in zip(first, again, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)


def test_snapshot_round_trip_through_json() -> None:
    snapshot = pytest.importorskip("mentor.envs.snapshot")
    env = WorkerVecEnv([partial(gym.make, "CartPole-v1")] * 2)
    actions = np.random.default_rng(1).integers(0, 2, (80, 2))
    try:
        env.reset(seed=0)
        replay(env, actions[:20])
        saved = snapshot.to_json(snapshot.vector_snapshot(env))  # the protocol, as checkpoints do
        first = replay(env, actions[20:])
        assert any(step[2].any() for step in first)  # an episode ends after the snapshot
        snapshot.restore_vector(env, snapshot.from_json(saved))
        assert_same(first, replay(env, actions[20:]))
    finally:
        env.close()


def test_snapshot_keeps_the_restart_state() -> None:
    pytest.importorskip("mentor.envs.snapshot")
    env, messages = pool([HEALTHY, partial(CrashingEnv, crash_at_step=3)], max_restarts=3)
    actions = np.ones((8, 2), dtype=np.int64)
    try:
        env.reset(seed=10)
        replay(env, actions[:3])  # env 1 crashed: restart 1, its reset comes next
        saved = env.mentor_snapshot()
        first = replay(env, actions)  # its new workers' envs crash at their step 3: restarts 2, 3
        env.mentor_restore(saved)
        again = replay(env, actions)  # the same seeds for the restarted envs, the same crashes
        assert_same(first, again)
        counts = [message.split("(restart ")[1].split(" of")[0] for message in messages]
        assert counts == ["1", "2", "3", "2", "3"]
    finally:
        env.close()


class NoSnapshotEnv(gym.Env):
    """An env the snapshot module knows nothing about (pickled by value for the workers)."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(4, np.float32), {}

    def step(self, action):
        return np.zeros(4, np.float32), 0.0, False, False, {}


@pytest.fixture
def by_value():
    """Env classes of this module pickled by value: the workers cannot import tests."""
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def test_snapshot_unavailable_is_raised_again_in_the_parent(by_value) -> None:
    snapshot = pytest.importorskip("mentor.envs.snapshot")
    env = WorkerVecEnv([NoSnapshotEnv, NoSnapshotEnv])
    try:
        env.reset(seed=0)
        with pytest.raises(snapshot.SnapshotUnavailable, match="NoSnapshotEnv") as raised:
            env.mentor_snapshot()
        assert "NoSnapshotEnv" in raised.value.reason
        env.step(np.zeros(2, dtype=np.int64))  # the pool is still fine
    finally:
        env.close()


class BadRewardEnv(NoSnapshotEnv):
    """Observations full of the step count; a reward that is no number at step 2, found out
    after the worker wrote that step's observation."""

    def step(self, action):
        self.t = getattr(self, "t", 0) + 1
        reward = "no number" if self.t == 2 else 1.0
        return np.full(4, self.t, np.float32), reward, False, False, {}


def test_fault_after_the_observation_was_written_reports_the_last_good_one(by_value) -> None:
    env, messages = pool([BadRewardEnv, BadRewardEnv])
    try:
        env.reset(seed=0)
        env.step(np.zeros(2, dtype=np.int64))
        obs, _, _, truncated, _ = env.step(np.zeros(2, dtype=np.int64))
        assert truncated.all() and len(messages) == 2
        assert "raised ValueError in step" in messages[0]
        np.testing.assert_array_equal(obs, np.ones((2, 4)))  # step 1's, not step 2's
    finally:
        env.close()


def test_fault_11_a_copy_with_other_spaces_is_an_error_at_construction(tmp_path) -> None:
    """The second env made has 5 observations, not 4: EnvError naming both, no restarts."""
    uneven = partial(UnevenEnv, count_file=str(tmp_path / "made"), odd_one=1)
    messages: list[str] = []
    with pytest.raises(EnvError, match=r"has observation space Box\(.*\(5,\).*is Box\(.*\(4,\)"):
        WorkerVecEnv([uneven, uneven], on_restart=messages.append)
    assert messages == [], "a space mismatch is not a fault to restart"
    assert len((tmp_path / "made").read_text().splitlines()) == 3  # the probe and two workers


# --- declared info keys ----------------------------------------------------------------------

INFO_KEYS = {"is_success": "last", "cost": "sum"}


def test_workers_keep_the_declared_info_keys_as_sync_does() -> None:
    kwargs = {"length": 5, "success_at": 3}
    sync = VecEnv.make(
        "mentor.envs.testing:InfoEnv", kwargs, 3, vectorization="sync", info_keys=INFO_KEYS
    )
    workers = VecEnv.make(
        "mentor.envs.testing:InfoEnv", kwargs, 3, vectorization="async", info_keys=INFO_KEYS
    )
    try:
        sync.reset(seed=4)
        workers.reset(seed=4)
        for actions in np.random.default_rng(0).integers(0, 2, (40, 3)):
            sync.step(actions)
            workers.step(actions)
        episodes = workers.pop_episodes()
        assert len(episodes) == 18 and episodes == sync.pop_episodes()
        assert {e.info["is_success"] for e in episodes} == {0.0, 1.0}
    finally:
        sync.close()
        workers.close()


def test_workers_send_only_the_declared_info_keys() -> None:
    env = WorkerVecEnv([partial(InfoEnv, length=2)] * 2, info_keys=("cost",))
    silent = WorkerVecEnv([partial(InfoEnv, length=2)] * 2)
    try:
        for pool_ in (env, silent):
            pool_.reset(seed=0)
            pool_.step(np.array([1, 0]))
        _, _, _, truncated, infos = env.step(np.array([1, 0]))  # is_success is in the env's info
        assert truncated.all()
        assert set(infos) == {"cost", "_cost"}
        np.testing.assert_array_equal(infos["cost"], [1.0, 0.0])
        np.testing.assert_array_equal(infos["_cost"], [True, True])
        assert silent.step(np.array([1, 0]))[4] == {}  # no keys asked for: nothing sent
    finally:
        env.close()
        silent.close()


class CrashOnceInfoEnv(InfoEnv):
    """InfoEnv whose third step raises, once (the ``flag`` file says it did), if given a flag."""

    def __init__(self, flag: str | None = None) -> None:
        super().__init__(length=5, success_at=3)
        self.flag = flag

    def step(self, action):
        if self.flag and self.total == 2 and not os.path.exists(self.flag):
            open(self.flag, "w").close()
            raise RuntimeError("crashed on purpose")
        return super().step(action)


def test_an_episode_cut_by_a_restart_keeps_its_sums_and_is_no_missing_key(
    tmp_path, by_value
) -> None:
    flag = str(tmp_path / "crashed")
    workers = WorkerVecEnv(
        [CrashOnceInfoEnv, partial(CrashOnceInfoEnv, flag)],
        info_keys=tuple(INFO_KEYS),
        on_restart=lambda message: None,
    )
    venv = VecEnv(workers, info_keys=INFO_KEYS)
    try:
        venv.reset(seed=0)
        for _ in range(3):
            venv.step(np.ones(2, dtype=np.int64))  # action 1 costs 1
        (cut,) = venv.pop_episodes()  # env 1's worker crashed in its third step
        assert cut.env_index == 1 and cut.length == 3 and cut.info == {"cost": 2.0}
        for _ in range(8):
            venv.step(np.ones(2, dtype=np.int64))
        episodes = venv.pop_episodes()
        assert [e.env_index for e in episodes] == [0, 1, 0]  # steps 5, 9 (4 + 5) and 11
        assert all(set(e.info) == {"is_success", "cost"} for e in episodes)
    finally:
        venv.close()
