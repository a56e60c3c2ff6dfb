"""mentor's CPU tanh (through sigmoid) against torch.tanh: values, gradients, modes."""

import torch

from mentor.core.activations import ACTIVATIONS, GRAD_MIN_SIZE, Tanh


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


def test_tanh_is_the_registered_activation() -> None:
    assert ACTIVATIONS["tanh"] is Tanh


def test_small_tensors_that_need_gradients_use_torch_tanh() -> None:
    x = torch.randn(8, 64, requires_grad=True)
    assert x.numel() < GRAD_MIN_SIZE
    assert torch.equal(Tanh()(x), torch.tanh(x))
    large = torch.randn(GRAD_MIN_SIZE, requires_grad=True)
    assert Tanh()(large).grad_fn.name().startswith("_TanhFunction")
