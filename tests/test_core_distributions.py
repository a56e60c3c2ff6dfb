"""mentor's fast action distributions against torch.distributions."""

import math

import numpy as np
import pytest
import torch
from gymnasium import spaces
from torch import distributions as D

from mentor.core.distributions import make_dist


def test_categorical_log_prob_entropy_and_sampling_frequencies() -> None:
    dist = make_dist(spaces.Discrete(4))
    logits = torch.tensor([[0.0, 1.0, -1.0, 2.0]]).repeat(20_000, 1)
    reference = D.Categorical(logits=logits)
    actions = torch.randint(0, 4, (20_000,))
    torch.testing.assert_close(dist.log_prob(logits, actions), reference.log_prob(actions))
    torch.testing.assert_close(dist.entropy(logits), reference.entropy())
    torch.manual_seed(0)
    samples = dist.sample(logits, deterministic=False)
    frequencies = torch.bincount(samples, minlength=4).float() / len(samples)
    torch.testing.assert_close(frequencies, reference.probs[0], atol=0.01, rtol=0)
    assert (dist.sample(logits, deterministic=True) == 3).all()


def test_multidiscrete_is_a_product_of_categoricals() -> None:
    dist = make_dist(spaces.MultiDiscrete([3, 2]))
    logits = torch.randn(6, 5)
    actions = torch.stack([torch.randint(0, 3, (6,)), torch.randint(0, 2, (6,))], -1)
    first, second = D.Categorical(logits=logits[:, :3]), D.Categorical(logits=logits[:, 3:])
    expected = first.log_prob(actions[:, 0]) + second.log_prob(actions[:, 1])
    torch.testing.assert_close(dist.log_prob(logits, actions), expected)
    torch.testing.assert_close(dist.entropy(logits), first.entropy() + second.entropy())
    assert dist.sample(logits, deterministic=False).shape == (6, 2)


def test_bernoulli_matches_torch() -> None:
    dist = make_dist(spaces.MultiBinary(3))
    logits = torch.randn(8, 3)
    actions = (torch.rand(8, 3) < 0.5).float()
    reference = D.Independent(D.Bernoulli(logits=logits), 1)
    torch.testing.assert_close(dist.log_prob(logits, actions), reference.log_prob(actions))
    torch.testing.assert_close(dist.entropy(logits), reference.entropy())


def test_diagonal_gaussian_matches_torch_and_its_entropy_formula() -> None:
    dist = make_dist(spaces.Box(-1, 1, (2,)), log_std_init=-0.5)
    mean = torch.randn(7, 2)
    actions = torch.randn(7, 2)
    reference = D.Independent(D.Normal(mean, torch.full((2,), math.exp(-0.5))), 1)
    torch.testing.assert_close(dist.log_prob(mean, actions), reference.log_prob(actions))
    torch.testing.assert_close(dist.entropy(mean), reference.entropy())
    assert torch.equal(dist.sample(mean, deterministic=True), mean)


@pytest.mark.parametrize(
    "space", [spaces.Discrete(3), spaces.MultiDiscrete([2, 2]), spaces.Box(-1, 1, (3,))]
)
def test_log_probs_of_sampled_actions_are_finite_and_gradients_flow(space) -> None:
    dist = make_dist(space)
    params = torch.randn(4, dist.num_params, requires_grad=True)
    actions = dist.sample(params.detach(), deterministic=False)
    log_prob = dist.log_prob(params, actions)
    assert np.isfinite(log_prob.detach().numpy()).all()
    log_prob.sum().backward()
    assert params.grad is not None and params.grad.abs().sum() > 0


def test_ensemble_mlp_members_are_independent_mlps() -> None:
    from mentor.core.networks import EnsembleMLP

    torch.manual_seed(0)
    ensemble = EnsembleMLP(2, 5, [8, 8], 1, "relu")
    x = torch.randn(3, 5)
    out = ensemble(x)
    assert out.shape == (2, 3, 1)
    for k in range(2):
        layers = ensemble.layers
        h = torch.relu(x @ layers[0].weight[k] + layers[0].bias[k])
        h = torch.relu(h @ layers[2].weight[k] + layers[2].bias[k])
        torch.testing.assert_close(out[k], h @ layers[4].weight[k] + layers[4].bias[k])
    out[0].sum().backward()  # member 0's loss leaves member 1's weights untouched
    assert ensemble.layers[0].weight.grad[1].abs().sum() == 0
    assert ensemble.layers[0].weight.grad[0].abs().sum() > 0
