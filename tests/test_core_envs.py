"""The vector env contract: NEXT_STEP autoreset, final observations kept, faults named."""

import sys

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from mentor.agent import policy_from
from mentor.core.normalize import RunningMeanStd
from mentor.core.schedules import value_at
from mentor.core.vec_env import Episode, VecEnv
from mentor.envs import resolve
from mentor.envs.resolve import make_env, resolve_entry_point, spec, unavailable
from mentor.envs.testing import InfoEnv
from mentor.errors import (
    ConfigError,
    EnvError,
    MissingPackageError,
    NonFiniteError,
    UnknownEnvError,
)
from mentor.experiment import Schedule


def test_truncated_episode_returns_its_final_observation_then_resets() -> None:
    venv = VecEnv.make("CartPole-v1", {}, 2, vectorization="sync", max_episode_steps=5)
    single = gym.make("CartPole-v1", max_episode_steps=5)
    obs = venv.reset(seed=7)
    expected, _ = single.reset(seed=7)
    np.testing.assert_allclose(obs[0], expected)
    for _ in range(5):
        obs, rewards, terminated, truncated = venv.step(np.zeros(2, dtype=np.int64))
        expected, reward, term, trunc, _ = single.step(0)
        np.testing.assert_allclose(obs[0], expected, rtol=1e-6)  # at step 5: the final obs
        assert rewards[0] == reward and terminated[0] == term and truncated[0] == trunc
    assert truncated.all() and venv.needs_reset.all()
    assert venv.pop_episodes() == [Episode(0, 5.0, 5), Episode(1, 5.0, 5)]
    obs, rewards, terminated, truncated = venv.step(np.zeros(2, dtype=np.int64))
    assert (rewards == 0).all() and not terminated.any() and not truncated.any()  # reset step
    assert not venv.needs_reset.any()
    venv.close()


def test_native_vector_env_follows_the_same_contract() -> None:
    venv = VecEnv.make("CartPole-v1", {}, 3, vectorization="native", max_episode_steps=4)
    assert type(venv.env).__name__ == "CartPoleVectorEnv"
    venv.reset(seed=1)
    for _ in range(4):
        _, _, terminated, truncated = venv.step(np.array([0, 1, 0]))
    assert (terminated | truncated).all() and venv.needs_reset.all()
    assert [episode.length for episode in venv.pop_episodes()] == [4, 4, 4]
    _, rewards, terminated, truncated = venv.step(np.array([0, 1, 0]))
    assert (rewards == 0).all() and not (terminated | truncated).any()


def test_episode_lengths_do_not_count_the_reset_step() -> None:
    venv = VecEnv.make("CartPole-v1", {}, 4)
    venv.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(300):
        venv.step(rng.integers(0, 2, 4))
    episodes = venv.pop_episodes()
    assert len(episodes) > 10
    assert all(e.ret == float(e.length) for e in episodes)  # CartPole pays 1 per step


def test_non_finite_observation_names_the_env_and_step() -> None:  # FAULT-6
    venv = VecEnv.make("mentor.envs.testing:NaNEnv", {"nan_after": 3}, 2, vectorization="sync")
    venv.reset(seed=0)
    with pytest.raises(NonFiniteError, match=r"env 0 .*nan at element 0 \(vector step 3\)"):
        for _ in range(5):
            venv.step(np.zeros(2, dtype=np.int64))


def test_non_finite_reward_names_the_env() -> None:  # FAULT-6
    venv = VecEnv.make("mentor.envs.testing:NaNEnv", {"nan_after": 2, "where": "reward"}, 1)
    venv.reset(seed=0)
    with pytest.raises(NonFiniteError, match="env 0 returned reward nan at vector step 2"):
        for _ in range(3):
            venv.step(np.zeros(1, dtype=np.int64))


# --- declared info keys: episode records -------------------------------------------------------

INFO = "mentor.envs.testing:InfoEnv"
INFO_KEYS = {"is_success": "last", "cost": "sum"}


def play(venv: VecEnv, steps: int, seed: int = 0) -> tuple[list[Episode], list[Episode]]:
    """Step with random actions; (the episodes the env recorded, the same worked out by hand
    from the actions: InfoEnv pays 1 per matched step, costs 1 per action 1, and succeeds with
    at least success_at matches)."""
    obs = venv.reset(seed=seed)
    rng = np.random.default_rng(seed)
    n = venv.num_envs
    matched, cost, length = np.zeros(n), np.zeros(n), np.zeros(n, dtype=np.int64)
    expected = []
    for _ in range(steps):
        actions = rng.integers(0, 2, n)
        started = venv.needs_reset.copy()
        target = obs.argmax(axis=1)
        obs, _, terminated, truncated = venv.step(actions)
        matched += ~started & (actions == target)
        cost += ~started & (actions == 1)
        length += ~started
        for i in np.flatnonzero(terminated | truncated):
            info = {"is_success": float(matched[i] >= 3), "cost": cost[i]}
            expected.append(Episode(int(i), matched[i], int(length[i]), info))
            matched[i] = cost[i] = length[i] = 0
    return venv.pop_episodes(), expected


def test_sync_vector_env_keeps_the_declared_info_keys_of_each_episode() -> None:
    venv = VecEnv.make(
        INFO, {"length": 5, "success_at": 3}, 3, vectorization="sync", info_keys=INFO_KEYS
    )
    episodes, expected = play(venv, 40)
    venv.close()
    assert len(episodes) == 18 and episodes == expected
    assert {e.info["is_success"] for e in episodes} == {0.0, 1.0}  # both outcomes occur
    assert list(episodes[0].info) == ["is_success", "cost"]  # in the declared order


def test_sum_keys_add_up_the_steps_of_an_episode_not_its_reset() -> None:
    class CostAtReset(InfoEnv):  # under next-step autoreset, the reset's info is a step's info
        def reset(self, *, seed=None, options=None):
            obs, _ = super().reset(seed=seed, options=options)
            return obs, {"cost": 100.0}

    venv = VecEnv(
        gym.vector.SyncVectorEnv(
            [lambda: CostAtReset(length=5, success_at=3)] * 2,
            autoreset_mode=AutoresetMode.NEXT_STEP,
        ),
        info_keys=INFO_KEYS,
    )
    episodes, expected = play(venv, 30)
    assert len(episodes) == 10 and episodes == expected
    assert max(e.info["cost"] for e in episodes) <= 5


class InfoVectorEnv(gym.vector.VectorEnv):
    """A native vector env of InfoEnv copies that reports infos as native envs may: ``cost`` for
    every copy without a mask, ``is_success`` with its ``_is_success`` mask."""

    def __init__(self, num_envs: int, **kwargs) -> None:
        self.metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP}
        self.envs = [InfoEnv(**kwargs) for _ in range(num_envs)]
        self.num_envs = num_envs
        self.single_observation_space = self.envs[0].observation_space
        self.single_action_space = self.envs[0].action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.ended = np.zeros(num_envs, dtype=bool)

    def reset(self, *, seed=None, options=None):
        seeds = [None if seed is None else seed + i for i in range(self.num_envs)]
        self.ended[:] = False
        obs = [env.reset(seed=s)[0] for env, s in zip(self.envs, seeds, strict=True)]
        return np.stack(obs), {}

    def step(self, actions):
        n = self.num_envs
        obs, rewards = [], np.zeros(n)
        terminated, truncated = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
        cost, success, reported = np.zeros(n), np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
        for i, (env, action) in enumerate(zip(self.envs, actions, strict=True)):
            if self.ended[i]:
                obs.append(env.reset()[0])
                continue
            o, rewards[i], terminated[i], truncated[i], info = env.step(int(action))
            obs.append(o)
            cost[i] = info["cost"]
            if "is_success" in info:
                success[i], reported[i] = info["is_success"], True
        self.ended = terminated | truncated
        infos = {"cost": cost, "is_success": success, "_is_success": reported}
        return np.stack(obs), rewards, terminated, truncated, infos


gym.register("MentorTest/InfoVector-v0", entry_point=INFO, vector_entry_point=InfoVectorEnv)


def test_native_vector_env_keeps_the_declared_info_keys_of_each_episode() -> None:
    venv = VecEnv.make(
        "MentorTest/InfoVector-v0",
        {"length": 5, "success_at": 3},
        3,
        vectorization="native",
        info_keys=INFO_KEYS,
    )
    assert isinstance(venv.env, InfoVectorEnv)
    episodes, expected = play(venv, 40)
    assert len(episodes) == 18 and episodes == expected


def test_non_finite_info_value_names_the_env_key_and_step() -> None:  # FAULT-6
    kwargs = {"length": 5, "nan_cost_after": 3}
    venv = VecEnv.make(INFO, kwargs, 2, vectorization="sync", info_keys=INFO_KEYS)
    venv.reset(seed=0)
    with pytest.raises(
        NonFiniteError, match=r"env 0 reported info\['cost'\] = nan at vector step 4"
    ):
        for _ in range(5):
            venv.step(np.zeros(2, dtype=np.int64))
    venv = VecEnv.make(
        INFO, kwargs, 2, vectorization="sync", info_keys=INFO_KEYS, check_finite=False
    )
    episodes, _ = play(venv, 6)
    assert np.isnan(episodes[0].info["cost"])  # check_finite: false lets it through


def test_an_info_value_that_is_not_a_number_is_an_error() -> None:
    class Named(InfoEnv):
        def step(self, action):
            obs, reward, terminated, truncated, info = super().step(action)
            return obs, reward, terminated, truncated, {**info, "cost": "high"}

    venv = VecEnv(
        gym.vector.SyncVectorEnv([Named] * 2, autoreset_mode=AutoresetMode.NEXT_STEP),
        info_keys=INFO_KEYS,
    )
    venv.reset(seed=0)
    with pytest.raises(
        EnvError,
        match=r"env 0 .*info\['cost'\] = 'high' at vector step 1: "
        r".*numbers \(bool, int, float\) only",
    ):
        venv.step(np.zeros(2, dtype=np.int64))


@pytest.mark.parametrize(
    ("env_id", "vectorization", "key", "had"),
    [
        (INFO, "sync", {"goal": "last"}, "keys cost, is_success"),
        (INFO, "sync", {"energy": "sum"}, "keys cost, is_success"),
        ("CartPole-v1", "native", {"is_success": "last"}, "no keys"),
    ],
)
def test_a_declared_info_key_the_env_never_reports_is_an_error_after_the_first_episode(
    env_id: str, vectorization: str, key: dict[str, str], had: str
) -> None:
    venv = VecEnv.make(
        env_id,
        {"length": 6} if env_id == INFO else {},  # max_episode_steps is for registered ids
        2,
        vectorization=vectorization,
        max_episode_steps=6,
        info_keys={**key, "cost": "sum"} if env_id == INFO else key,
    )
    venv.reset(seed=0)
    for _ in range(5):  # no episode has ended: nothing to say yet
        venv.step(np.zeros(2, dtype=np.int64))
    name, how = next(iter(key.items()))
    message = (
        rf"env '{env_id}' did not report info key '{name}' \(declared in env.info_keys as {how}\)"
        rf" .*\(env 0, vector step 6\); its info had {had}$"
    )
    with pytest.raises(EnvError, match=message):
        venv.step(np.zeros(2, dtype=np.int64))
    venv.close()


def test_episode_success_is_the_envs_own_verdict_when_it_gives_one() -> None:
    assert Episode(0, 10.0, 5, {"is_success": 0.0}).success(threshold=5.0) is False
    assert Episode(0, 1.0, 5, {"is_success": 1.0}).success(threshold=5.0) is True
    assert Episode(0, 10.0, 5, {"cost": 2.0}).success(threshold=5.0) is True
    assert Episode(0, 10.0, 5).success(threshold=None) is None


def test_unknown_env_id_lists_close_matches() -> None:
    with pytest.raises(UnknownEnvError, match="did you mean: CartPole-v1"):
        VecEnv.make("CartPol-v1", {}, 1)


# --- envs that need a package that is not installed ----------------------------------------------


@pytest.mark.parametrize(
    ("env_id", "packages", "unload", "expected"),
    [
        (
            "LunarLander-v3",
            ["Box2D"],
            "gymnasium.envs.box2d",
            [
                "env 'LunarLander-v3' needs the package box2d, which is not installed here: "
                "pip install 'mentor[envs]'",
                "(Gymnasium: Box2D is not installed",  # Gymnasium's own hint, kept
            ],
        ),
        (
            "CarRacing-v3",
            ["Box2D", "pygame"],
            "gymnasium.envs.box2d",
            [
                "needs the packages box2d, pygame-ce, which are not installed here: "
                "pip install 'mentor[envs]'"
            ],
        ),
        (
            "HalfCheetah-v5",
            ["mujoco"],
            "gymnasium.envs.mujoco",
            [
                "needs the package mujoco",
                "pip install mujoco",
                "Gymnasium: MuJoCo is not installed",
            ],
        ),
        (
            "phys2d/CartPole-v1",
            ["jax", "flax"],
            "gymnasium.envs.phys2d",
            ["needs the packages jax, flax", "pip install jax flax", "raised ModuleNotFoundError"],
        ),
    ],
    ids=["box2d", "box2d-and-pygame", "mujoco", "jax"],
)
def test_a_missing_package_is_named_with_what_installs_it(
    env_id, packages, unload, expected, without
) -> None:
    without(*packages, unload=[unload])
    assert unavailable(gym.spec(env_id)) is not None
    for call in (spec, make_env, lambda i: VecEnv.make(i, {}, 1)):
        with pytest.raises(MissingPackageError) as info:
            call(env_id)
        for text in expected:
            assert text in str(info.value)
        assert "Gymnasium API" not in str(info.value)


def test_an_installed_package_is_not_reported_missing() -> None:
    pytest.importorskip("Box2D")
    assert unavailable(gym.spec("LunarLander-v3")) is None
    assert unavailable(gym.spec("CartPole-v1")) is None


def test_ale_ids_without_ale_py_name_the_package_and_keep_gymnasiums_hint(
    without,
) -> None:
    without("ale_py", namespaces=["ALE"])
    for env_id in ("ALE/Pong-v5", "ale_py:ALE/Pong-v5"):
        with pytest.raises(MissingPackageError) as info:
            spec(env_id)
        message = str(info.value)
        assert f"env '{env_id}' needs the package ale-py" in message
        assert "pip install 'mentor[envs]'" in message
    assert "Gymnasium: Namespace ALE not found" in str(resolve._unknown("ALE/Pong-v5"))


def test_an_installed_namespace_package_is_imported_for_its_ids(tmp_path, monkeypatch) -> None:
    """Gymnasium 1.x imports no plugins: an id of a known namespace imports its package."""
    (tmp_path / "mentor_test_ns_pkg.py").write_text(
        "import gymnasium as gym\n"
        "gym.register('MentorTestNS/Walk-v0', entry_point='mentor.envs.testing:NaNEnv')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(resolve.NAMESPACE_PACKAGES, "MentorTestNS", "mentor_test_ns_pkg")
    try:
        assert spec("MentorTestNS/Walk-v0").id == "MentorTestNS/Walk-v0"
    finally:
        gym.registry.pop("MentorTestNS/Walk-v0", None)
        sys.modules.pop("mentor_test_ns_pkg", None)


def test_atari_ids_are_made_when_ale_py_is_installed() -> None:
    pytest.importorskip("ale_py")
    with make_env("ALE/Pong-v5") as env:
        assert env.observation_space.shape == (210, 160, 3)  # an image: mentor's CNN reads it


def test_close_matches_leave_out_ids_that_cannot_be_made_here(without) -> None:
    without("jax", "flax", unload=["gymnasium.envs.phys2d"])
    with pytest.raises(UnknownEnvError) as info:
        spec("CartPol-v1")
    assert "did you mean: CartPole-v1, CartPole-v0?" in str(info.value)
    assert "phys2d" not in str(info.value)


def test_close_matches_that_cannot_be_made_here_say_what_they_need(without) -> None:
    without("Box2D", unload=["gymnasium.envs.box2d"])
    with pytest.raises(UnknownEnvError) as info:
        spec("LunarLandr-v3")
    expected = (
        "(did you mean: LunarLander-v3, LunarLanderContinuous-v3? they need the package box2d, "
        "which is not installed here: pip install 'mentor[envs]')"
    )
    assert expected in str(info.value)


def test_an_entry_point_module_that_imports_a_missing_package(tmp_path, monkeypatch) -> None:
    (tmp_path / "mentor_test_needs_jax.py").write_text(
        "import mentor_test_absent_jax\n\nclass Env:\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(MissingPackageError) as info:
        spec("mentor_test_needs_jax:Env")
    assert str(info.value) == (
        "env 'mentor_test_needs_jax:Env' needs the package mentor_test_absent_jax, which is not "
        "installed here: install what provides mentor_test_absent_jax (often: pip install "
        "mentor_test_absent_jax) (importing module 'mentor_test_needs_jax' raised "
        "ModuleNotFoundError: No module named 'mentor_test_absent_jax')"
    )


# --- entry points: envs and experts, one resolver, also from the working folder ---------------

CWD_MODULE = """
import gymnasium as gym
import numpy as np


class Env(gym.Env):
    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        return np.zeros(2, np.float32), 1.0, True, False, {}


def expert(obs):
    return np.zeros(len(obs), dtype=np.int64)
"""


@pytest.fixture
def in_folder_off_the_path(tmp_path, monkeypatch):
    """The working folder is tmp_path, and not on sys.path (as for the ``mentor`` script)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", str(tmp_path))])
    return tmp_path


def test_env_entry_points_import_from_the_working_folder_as_experts_do(
    in_folder_off_the_path, monkeypatch
) -> None:
    (in_folder_off_the_path / "mentor_test_cwd_envs.py").write_text(CWD_MODULE)
    monkeypatch.delitem(sys.modules, "mentor_test_cwd_envs", raising=False)
    try:
        with make_env("mentor_test_cwd_envs:Env") as env:
            assert env.reset(seed=0)[0].shape == (2,)
        assert policy_from("mentor_test_cwd_envs:expert").spec == "mentor_test_cwd_envs:expert"
    finally:
        sys.modules.pop("mentor_test_cwd_envs", None)


def test_a_module_not_found_hints_at_pythonpath_and_the_working_folder(
    in_folder_off_the_path,
) -> None:
    for call, error, what in (
        (spec, UnknownEnvError, "env"),
        (policy_from, ConfigError, "expert"),
    ):
        with pytest.raises(error) as info:
            call("mentor_test_nowhere:Thing")
        message = str(info.value)
        assert message.startswith(
            f"{what} 'mentor_test_nowhere:Thing': cannot import module 'mentor_test_nowhere'"
        )
        assert f"in the working folder {in_folder_off_the_path}" in message
        assert "PYTHONPATH" in message


def test_one_resolver_for_envs_and_experts(in_folder_off_the_path) -> None:
    (in_folder_off_the_path / "mentor_test_resolver.py").write_text(CWD_MODULE)
    try:
        assert resolve_entry_point("mentor_test_resolver:expert", "expert").__name__ == "expert"
        with pytest.raises(ConfigError, match=r"has no attribute 'expertt' \(did you mean: expert"):
            resolve_entry_point("mentor_test_resolver:expertt", "expert", ConfigError)
        with pytest.raises(UnknownEnvError, match=r"is not of the form 'package\.module:name'"):
            resolve_entry_point("mentor_test_resolver:", "env")
    finally:
        sys.modules.pop("mentor_test_resolver", None)


def test_native_vectorization_without_a_native_env_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no vectorized implementation"):
        VecEnv.make("Acrobot-v1", {}, 1, vectorization="native")


def test_fault_11_sync_copies_with_other_spaces_are_an_error(tmp_path) -> None:
    kwargs = {"count_file": str(tmp_path / "made"), "odd_one": 2}
    with pytest.raises(EnvError, match=r"env 2 of the vector env has observation space .*\(5,\)"):
        VecEnv.make("mentor.envs.faulty:UnevenEnv", kwargs, 3, vectorization="sync")


def test_running_mean_std_matches_numpy_over_batches() -> None:
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, (n, 3)) for n in (5, 100, 1, 37)]
    stats = RunningMeanStd((3,), epsilon=0.0)
    stats.count.fill_(0.0)
    for batch in batches:
        stats.update(torch.from_numpy(batch))
    everything = np.concatenate(batches)
    np.testing.assert_allclose(stats.mean.numpy(), everything.mean(0))
    np.testing.assert_allclose(stats.var.numpy(), everything.var(0))


def test_schedules() -> None:
    linear = Schedule(kind="linear", start=1.0, end=0.0, fraction=0.5)
    assert value_at(linear, 0.0) == 1.0 and value_at(linear, 0.25) == 0.5
    assert value_at(linear, 0.9) == 0.0
    exponential = Schedule(kind="exponential", start=1.0, end=0.01)
    assert value_at(exponential, 0.5) == pytest.approx(0.1)
    cosine = Schedule(kind="cosine", start=2.0, end=0.0)
    assert value_at(cosine, 0.5) == pytest.approx(1.0) and value_at(cosine, 1.0) == pytest.approx(0)
    assert value_at(0.3, 0.7) == 0.3
