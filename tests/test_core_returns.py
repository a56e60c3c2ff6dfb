"""GAE against hand-computed values: termination and truncation, several episodes, one rollout."""

import pytest
import torch

from mentor.core.returns import gae


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
