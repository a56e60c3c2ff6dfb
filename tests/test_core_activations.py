"""mentor's CPU tanh (through sigmoid) against torch.tanh: values, gradients, modes; one kernel per
network, so what PPO scores a rollout with is bitwise what its update recomputes; the switch."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from mentor.core.activations import ACTIVATIONS, Tanh
from mentor.core.networks import ActorCritic
from mentor.errors import ConfigError
from mentor.experiment import build


def test_tanh_matches_torch_values_and_gradients() -> None:
    x = torch.linspace(-20, 20, 100_001)
    ours, reference = x.clone().requires_grad_(), x.double().requires_grad_()
    y = Tanh()(ours)
    expected = torch.tanh(reference)
    assert (y.double() - expected).abs().max() < 5e-7
    y.sum().backward()
    expected.sum().backward()
    assert (ours.grad.double() - reference.grad).abs().max() < 5e-7


def test_tanh_without_autograd_and_at_the_limits() -> None:
    x = torch.tensor([0.0, 1e-3, -1e-3, 50.0, -50.0, float("inf"), float("-inf")])
    with torch.inference_mode():
        y = Tanh()(x)
    torch.testing.assert_close(y, torch.tanh(x), atol=2e-7, rtol=0)
    assert torch.isnan(Tanh()(torch.tensor([float("nan")]))).all()


@pytest.mark.parametrize("shape", [(1, 8), (8, 64), (256, 64), (2048, 64)])
def test_one_kernel_with_and_without_gradients_whatever_the_size(shape) -> None:
    x = torch.randn(shape)
    with torch.inference_mode():
        scored = Tanh()(x)
    with torch.no_grad():
        assert torch.equal(Tanh()(x), scored)
    y = Tanh()(x.clone().requires_grad_())
    assert y.grad_fn.name().startswith("_TanhFunction")
    assert torch.equal(y, scored)


def test_other_devices_than_the_cpu_use_torch_tanh() -> None:
    # A network moved off the CPU after it was built (.to("cuda")) takes torch.tanh there.
    x = torch.empty(8, 64, device="meta", requires_grad=True)
    assert Tanh()(x).grad_fn.name() == "TanhBackward0"


def test_the_switch_makes_tanh_plain_torch(monkeypatch) -> None:
    monkeypatch.delenv("MENTOR_FAST_KERNELS", raising=False)
    assert type(ACTIVATIONS["tanh"]()) is Tanh
    monkeypatch.setenv("MENTOR_FAST_KERNELS", "1")
    assert type(ACTIVATIONS["tanh"]()) is Tanh
    monkeypatch.setenv("MENTOR_FAST_KERNELS", "0")
    assert type(ACTIVATIONS["tanh"]()) is nn.Tanh
    assert type(ACTIVATIONS["relu"]()) is nn.ReLU
    monkeypatch.setenv("MENTOR_FAST_KERNELS", "off")
    with pytest.raises(ConfigError, match="MENTOR_FAST_KERNELS must be 0 or 1"):
        ACTIVATIONS["tanh"]()


@pytest.mark.parametrize("fast", ["1", "0"])
def test_rollout_scoring_and_the_update_agree_bitwise(monkeypatch, fast: str) -> None:
    # Issue 11, item 7. PPO scores a rollout under inference_mode (ppo.score_rollout), then
    # evaluates the same rows with gradients in a shuffled minibatch (ppo.ppo_loss): the same
    # network must give the same numbers, so every first-epoch log-ratio is exactly 0. With
    # tanh's old size threshold, 2 of these 256 were not (and values differed by up to 3e-7).
    monkeypatch.setenv("MENTOR_FAST_KERNELS", fast)
    torch.manual_seed(0)
    space = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
    network = build(method="ppo", env_id="CartPole-v1").agent.network
    policy = ActorCritic(space, gym.spaces.Discrete(2), network)
    assert {type(m) for m in policy.modules()} >= {Tanh if fast == "1" else nn.Tanh}
    obs = torch.randn(256, 4) * torch.tensor([1.0, 2.0, 0.1, 2.0])  # CartPole-like scales
    actions = torch.randint(0, 2, (256,))
    with torch.inference_mode():
        old_log_probs, _, old_values = policy.evaluate_actions(obs, actions)
    index = torch.randperm(256)
    log_probs, _, values = policy.evaluate_actions(obs[index], actions[index])
    assert log_probs.requires_grad
    log_ratio = log_probs.detach() - old_log_probs[index]
    assert torch.count_nonzero(log_ratio) == 0, f"max |log-ratio| {log_ratio.abs().max():.1e}"
    assert torch.equal(values.detach(), old_values[index])
