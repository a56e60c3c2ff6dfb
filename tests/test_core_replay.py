"""Replay buffer: storage, wrap-around, n-step targets (termination, truncation), priorities."""

import numpy as np
import pytest
import torch

from mentor.core.replay import ReplayBuffer
from mentor.core.sum_tree import SumTree


def fill(buffer: ReplayBuffer, steps: list[tuple]) -> None:
    """steps: (obs value, reward, terminated, truncated, valid) for a one-env buffer."""
    for obs, reward, term, trunc, valid in steps:
        buffer.add(
            torch.tensor([[float(obs)]]), torch.tensor([0]), np.array([reward], np.float32),
            np.array([term]), np.array([trunc]), np.array([valid]),
        )  # fmt: skip


def one_env(capacity: int = 100, n_step: int = 1, **kw) -> ReplayBuffer:
    return ReplayBuffer(capacity, 1, (1,), torch.float32, (), torch.int64, 0.5, n_step, **kw)


def all_samples(buffer: ReplayBuffer) -> dict[float, tuple[float, float, float]]:
    """obs -> (reward sum, next obs, discount), drawn until every transition was seen."""
    out = {}
    sample = buffer.sample(2000, np.random.default_rng(0))
    for i in range(2000):
        out[sample.obs[i].item()] = (
            sample.rewards[i].item(), sample.next_obs[i].item(), sample.discounts[i].item()
        )  # fmt: skip
    return out


def test_one_step_transitions_and_the_reset_step_is_never_sampled() -> None:
    buffer = one_env()
    # Episode A: obs 1, 2 (terminates: 3 is its final obs). Row 3 is the reset step (invalid),
    # then episode B: obs 10, 11 (truncated: 12 is its final obs), reset step, obs 20.
    fill(buffer, [(1, 1.0, False, False, True), (2, 2.0, True, False, True),
                  (3, 0.0, False, False, False), (10, 4.0, False, False, True),
                  (11, 8.0, False, True, True), (12, 0.0, False, False, False),
                  (20, 1.0, False, False, True)])  # fmt: skip
    seen = all_samples(buffer)
    assert set(seen) == {1.0, 2.0, 10.0, 11.0}  # not 3 or 12 (reset), not 20 (no next obs yet)
    assert seen[1.0] == (1.0, 2.0, 0.5)
    assert seen[2.0] == (2.0, 3.0, 0.0)  # terminated: no bootstrap
    assert seen[11.0] == (8.0, 12.0, 0.5)  # truncated: bootstrap from the final obs 12


def test_n_step_sums_stop_at_the_episode_end() -> None:
    buffer = one_env(n_step=3)
    fill(buffer, [(1, 1.0, False, False, True), (2, 2.0, False, False, True),
                  (3, 4.0, False, False, True), (4, 8.0, True, False, True),
                  (5, 0.0, False, False, False), (30, 1.0, False, False, True),
                  (31, 1.0, False, True, True), (32, 0.0, False, False, False),
                  (40, 0.0, False, False, True), (41, 0.0, False, False, True)])  # fmt: skip
    seen = all_samples(buffer)
    # gamma 0.5: 1 + 0.5*2 + 0.25*4 = 3, bootstrap from obs 4 with 0.5^3.
    assert seen[1.0] == (3.0, 4.0, 0.125)
    # 2 + 0.5*4 + 0.25*8 = 6, and the episode terminated at step 3: no bootstrap.
    assert seen[2.0] == (6.0, 5.0, 0.0)
    assert seen[4.0] == (8.0, 5.0, 0.0)
    # truncated after two steps: 1 + 0.5*1, bootstrap from the final obs 32 with 0.5^2.
    assert seen[30.0] == (1.5, 32.0, 0.25)
    assert 40.0 not in seen and 41.0 not in seen  # fewer than 3 rows after them yet


def test_wrap_around_keeps_the_newest_rows_and_samples_only_them() -> None:
    buffer = one_env(capacity=5)
    fill(buffer, [(i, float(i), False, False, True) for i in range(20)])
    seen = all_samples(buffer)
    assert buffer.count == buffer.rows == 6
    assert set(seen) == {14.0, 15.0, 16.0, 17.0, 18.0}
    assert all(next_obs == obs + 1 for obs, (_, next_obs, _) in seen.items())


def test_vectorized_envs_and_uint8_observations_stay_uint8() -> None:
    buffer = ReplayBuffer(64, 4, (2, 2, 1), torch.uint8, (2,), torch.float32, 0.9)
    assert buffer.obs.dtype == torch.uint8
    for t in range(10):
        obs = torch.full((4, 2, 2, 1), t, dtype=torch.uint8) + torch.arange(4).view(4, 1, 1, 1)
        buffer.add(obs, torch.zeros(4, 2), np.ones(4, np.float32), np.zeros(4, bool),
                   np.zeros(4, bool), np.ones(4, bool))  # fmt: skip
    sample = buffer.sample(256, np.random.default_rng(1))
    assert sample.obs.dtype == torch.uint8
    assert (sample.next_obs.int() - sample.obs.int() == 1).all()  # same env, next row


def test_a_million_transition_buffer_of_17_dim_observations_is_small() -> None:
    buffer = ReplayBuffer(1_000_000, 1, (17,), torch.float32, (6,), torch.float32, 0.99)
    assert buffer.nbytes < 200 * 2**20


def test_state_dict_round_trip_resumes_sampling_exactly() -> None:
    buffer = one_env(n_step=2)
    fill(buffer, [(i, float(i), i % 7 == 6, False, i % 7 != 0 or i == 0) for i in range(30)])
    copy = one_env(n_step=2)
    copy.load_state_dict(buffer.state_dict())
    a = buffer.sample(64, np.random.default_rng(5))
    b = copy.sample(64, np.random.default_rng(5))
    for field in ("obs", "rewards", "next_obs", "discounts"):
        assert torch.equal(getattr(a, field), getattr(b, field))


def test_sum_tree_samples_in_proportion_to_values() -> None:
    tree = SumTree(5)
    tree.update(np.arange(5), np.array([1.0, 0.0, 3.0, 0.0, 6.0]))
    assert tree.total == 10.0
    indices, probabilities = tree.sample(100_000, np.random.default_rng(0))
    frequencies = np.bincount(indices, minlength=5) / len(indices)
    np.testing.assert_allclose(frequencies, [0.1, 0.0, 0.3, 0.0, 0.6], atol=0.005)
    np.testing.assert_allclose(probabilities[indices == 2], 0.3)
    tree.update(np.array([4]), np.array([0.0]))
    assert tree.total == 4.0


def test_prioritized_sampling_prefers_high_priority_and_weights_correct_it() -> None:
    buffer = one_env(capacity=50, prioritized=True, priority_alpha=1.0)
    fill(buffer, [(i, 0.0, False, False, True) for i in range(11)])
    first = buffer.sample(10, np.random.default_rng(0))
    assert (first.weights == 1).all()  # all at the same (max) priority
    priorities = np.full(len(first.indices), 1.0)
    priorities[first.obs[:, 0].numpy() == 3.0] = 100.0
    buffer.update_priorities(first.indices, priorities)
    sample = buffer.sample(1000, np.random.default_rng(1), beta=1.0)
    share = (sample.obs[:, 0] == 3.0).float().mean().item()
    assert share > 0.8
    # The frequent transition gets the smallest weight: w ∝ (N p)^-beta.
    assert sample.weights[sample.obs[:, 0] == 3.0].max() < sample.weights.max()


def test_sampling_an_empty_buffer_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no transition to sample"):
        one_env().sample(4, np.random.default_rng(0))


def test_a_buffer_larger_than_memory_is_refused_before_allocation(tmp_path) -> None:
    import mentor
    from mentor.errors import ConfigError
    from mentor.experiment import build

    experiment = build(method="dqn", env_id="mentor.envs.testing:ImageEnv", overrides=[
        f"output_dir={tmp_path}", "method.buffer_size=100000000", "logging.progress=false",
        "logging.tensorboard=false",
    ])  # fmt: skip
    with pytest.raises(ConfigError, match=r"method.buffer_size 100,000,000 .* need .* GiB"):
        mentor.train(experiment)


def test_the_memory_a_buffer_needs_counts_its_action_masks() -> None:
    """One bool per mask entry per transition: a masked Discrete(9) buffer of 1,000 transitions
    of 4 float32 numbers needs 1,000 x (16 + 8 + 4 + 3 + 9) bytes."""
    plain = ReplayBuffer.bytes_needed(1000, (4,), torch.float32, (), torch.int64)
    masked = ReplayBuffer.bytes_needed(1000, (4,), torch.float32, (), torch.int64, mask_size=9)
    assert plain == 1000 * (16 + 8 + 4 + 3) and masked == plain + 9000
    buffer = ReplayBuffer(1000, 1, (4,), torch.float32, (), torch.int64, gamma=0.99)
    buffer._make_masks(9)  # as the first add with masks does
    held = ReplayBuffer.bytes_needed(buffer.rows, (4,), torch.float32, (), torch.int64, 9)
    assert buffer.nbytes == held  # the estimate is the buffer's own size, masks included
