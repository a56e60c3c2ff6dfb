"""GAE and V-trace against hand-computed values: termination and truncation, several episodes,
one rollout; V-trace on-policy is GAE."""

import pytest
import torch

from mentor.core.returns import gae, vtrace


def test_gae_exact_with_termination_and_truncation_in_one_rollout() -> None:
    # Two envs, three steps, gamma 0.9, lambda 0.5 (so gamma * lambda = 0.45).
    # env 0: terminates at t=1, a new episode runs at t=2.
    # env 1: truncated at t=0 (bootstraps from its final observation's value 3.0), then goes on.
    rewards = torch.tensor([[1.0, 2.0], [1.0, 0.0], [1.0, 1.0]])
    values = torch.tensor([[0.5, 1.0], [0.6, 2.0], [0.7, 0.0]])
    next_values = torch.tensor([[0.6, 3.0], [0.7, 0.5], [0.8, 1.0]])
    terminated = torch.tensor([[False, False], [True, False], [False, False]])
    truncated = torch.tensor([[False, True], [False, False], [False, False]])
    advantages, returns = gae(rewards, values, next_values, terminated, truncated, 0.9, 0.5)
    # env 0, by hand:
    #   t=2: delta = 1 + 0.9*0.8 - 0.7 = 1.02                 A = 1.02
    #   t=1: terminated: delta = 1 - 0.6 = 0.4, no carry      A = 0.4
    #   t=0: delta = 1 + 0.9*0.6 - 0.5 = 1.04                 A = 1.04 + 0.45*0.4 = 1.22
    # env 1:
    #   t=2: delta = 1 + 0.9*1.0 - 0 = 1.9                    A = 1.9
    #   t=1: delta = 0 + 0.9*0.5 - 2.0 = -1.55                A = -1.55 + 0.45*1.9 = -0.695
    #   t=0: truncated: delta = 2 + 0.9*3.0 - 1.0 = 3.7, no carry   A = 3.7
    expected = torch.tensor([[1.22, 3.7], [0.4, -0.695], [1.02, 1.9]])
    torch.testing.assert_close(advantages, expected)
    torch.testing.assert_close(returns, expected + values)


def test_gae_with_lambda_one_is_the_discounted_monte_carlo_return() -> None:
    rewards = torch.tensor([[1.0], [2.0], [3.0]])
    values = torch.tensor([[5.0], [-1.0], [2.0]])  # any values: lambda 1 telescopes them away
    next_values = torch.tensor([[-1.0], [2.0], [9.0]])  # 9.0 is ignored: terminated
    terminated = torch.tensor([[False], [False], [True]])
    truncated = torch.zeros_like(terminated)
    _, returns = gae(rewards, values, next_values, terminated, truncated, 0.5, 1.0)
    expected = torch.tensor([[1 + 0.5 * 2 + 0.25 * 3], [2 + 0.5 * 3], [3.0]])
    torch.testing.assert_close(returns, expected)


@pytest.mark.parametrize("gamma", [0.0, 0.99])
def test_gae_with_lambda_zero_is_the_one_step_td_error(gamma: float) -> None:
    generator = torch.Generator().manual_seed(0)
    rewards, values, next_values = (torch.randn(5, 3, generator=generator) for _ in range(3))
    terminated = torch.rand(5, 3, generator=generator) < 0.3
    truncated = ~terminated & (torch.rand(5, 3, generator=generator) < 0.3)
    advantages, _ = gae(rewards, values, next_values, terminated, truncated, gamma, 0.0)
    expected = rewards + gamma * (~terminated) * next_values - values
    torch.testing.assert_close(advantages, expected)


def test_vtrace_on_policy_targets_are_gaes_returns() -> None:
    """pi = mu: every weight is 1 (c = lambda), so the targets are the lambda-returns."""
    generator = torch.Generator().manual_seed(0)
    shape = (12, 3)
    rewards = torch.randn(shape, generator=generator)
    values = torch.randn(shape, generator=generator)
    next_values = torch.cat([values[1:], torch.randn(1, 3, generator=generator)])
    terminated = torch.rand(shape, generator=generator) < 0.15
    truncated = ~terminated & (torch.rand(shape, generator=generator) < 0.15)
    flags = (rewards, values, next_values, terminated, truncated)
    _, returns = gae(*flags, 0.95, 0.9)
    advantages, targets = vtrace(*flags, torch.zeros(shape), 0.95, 0.9)
    torch.testing.assert_close(targets, returns)
    # IMPALA's advantage: r + gamma * v_{t+1} - V, v_{t+1} the target within an episode.
    not_done = ~(terminated | truncated)
    following = torch.cat([returns[1:], next_values[-1:]])
    next_target = torch.where(not_done, following, next_values)
    expected = rewards + 0.95 * (~terminated) * next_target - values
    torch.testing.assert_close(advantages, expected)


def test_vtrace_truncates_the_importance_weights_by_hand() -> None:
    # One env, two steps, gamma 0.9, lambda 1; pi/mu = 2 (clipped to 1), then 0.5.
    #   delta_1 = 0.5 * (1 + 0.9*3 - 2) = 0.85          v_1 = 2 + 0.85 = 2.85
    #   delta_0 = 1.0 * (1 + 0.9*2 - 1) = 1.8           v_0 = 1 + 1.8 + 0.9*1*0.85 = 3.565
    #   A_0 = 1.0 * (1 + 0.9*v_1 - 1) = 2.565           A_1 = 0.5 * (1 + 0.9*3 - 2) = 0.85
    no = torch.zeros(2, 1, dtype=torch.bool)
    advantages, targets = vtrace(
        torch.tensor([[1.0], [1.0]]), torch.tensor([[1.0], [2.0]]), torch.tensor([[2.0], [3.0]]),
        no, no, torch.tensor([[2.0], [0.5]]).log(), 0.9, 1.0,
    )  # fmt: skip
    torch.testing.assert_close(targets, torch.tensor([[3.565], [2.85]]))
    torch.testing.assert_close(advantages, torch.tensor([[2.565], [0.85]]))


def test_vtrace_stops_at_a_truncation_and_bootstraps_from_the_final_observation() -> None:
    # Truncated at t=0: v_0 = V_0 + delta_0, with V(final obs) = 5; nothing of t=1 flows back.
    advantages, targets = vtrace(
        torch.tensor([[1.0], [7.0]]), torch.tensor([[1.0], [2.0]]), torch.tensor([[5.0], [3.0]]),
        torch.zeros(2, 1, dtype=torch.bool), torch.tensor([[True], [False]]),
        torch.zeros(2, 1), 0.9, 1.0,
    )  # fmt: skip
    assert targets[0, 0].item() == pytest.approx(1 + 0.9 * 5)
    assert advantages[0, 0].item() == pytest.approx(1 + 0.9 * 5 - 1)
