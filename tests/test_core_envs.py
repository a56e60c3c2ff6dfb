"""The vector env contract: NEXT_STEP autoreset, final observations kept, faults named."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from mentor.core.normalize import RunningMeanStd
from mentor.core.schedules import value_at
from mentor.core.vec_env import VecEnv
from mentor.errors import ConfigError, EnvError, NonFiniteError, UnknownEnvError
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
    returns, lengths = venv.pop_episodes()
    assert returns == [5.0, 5.0] and lengths == [5, 5]
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
    assert venv.pop_episodes()[1] == [4, 4, 4]
    _, rewards, terminated, truncated = venv.step(np.array([0, 1, 0]))
    assert (rewards == 0).all() and not (terminated | truncated).any()


def test_episode_lengths_do_not_count_the_reset_step() -> None:
    venv = VecEnv.make("CartPole-v1", {}, 4)
    venv.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(300):
        venv.step(rng.integers(0, 2, 4))
    returns, lengths = venv.pop_episodes()
    assert len(returns) > 10
    assert returns == [float(n) for n in lengths]  # CartPole pays 1 per step of an episode


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


def test_unknown_env_id_lists_close_matches() -> None:
    with pytest.raises(UnknownEnvError, match="did you mean: CartPole-v1"):
        VecEnv.make("CartPol-v1", {}, 1)


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
