"""The gradient reversal layer: identity forward, minus lambda times the gradient backward."""

from __future__ import annotations

import itertools

import pytest
import torch

from tumorsynth.methods.sar.reversal import GradientReversal, dann_lambda


@pytest.mark.parametrize("strength", [0.0, 0.1, 1.0, 2.5])
def test_the_gradient_is_minus_lambda_times_the_incoming_one(strength):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, generator=gen, requires_grad=True)
    incoming = torch.randn(3, 4, generator=gen)
    y = GradientReversal(strength)(x)
    assert torch.equal(y, x)  # identity forward
    y.backward(incoming)
    assert torch.allclose(x.grad, -strength * incoming)


def test_only_the_layers_input_side_is_reversed():
    x = torch.ones(2, requires_grad=True)
    w = torch.full((2,), 3.0, requires_grad=True)
    (GradientReversal(0.5)(x * w)).sum().backward()
    assert torch.allclose(x.grad, torch.full((2,), -1.5))  # -0.5 * w
    assert torch.allclose(w.grad, torch.full((2,), -0.5))  # -0.5 * x: also above the layer


def test_dann_ramp_rises_from_zero_to_lambda():
    values = [dann_lambda(p / 10, 0.2) for p in range(11)]
    assert values[0] == 0.0 and abs(values[-1] - 0.2) < 1e-4
    assert all(a < b for a, b in itertools.pairwise(values))
    assert dann_lambda(0.3, 0.2, ramp=False) == 0.2
    assert dann_lambda(7.0, 0.2) == dann_lambda(1.0, 0.2)  # clipped to the run
