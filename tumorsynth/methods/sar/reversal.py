r"""The gradient reversal layer of domain-adversarial training (Ganin and Lempitsky, ICML 2015).

Forward it is the identity; backward it multiplies the incoming gradient by :math:`-\lambda`, so
that the domain head below it learns to tell the domains apart while the encoder above it learns
features that hide them. :func:`dann_lambda` is DANN's ramp of :math:`\lambda` over training.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["GradientReversal", "dann_lambda", "reverse_gradient"]


class _Reverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, strength: float) -> torch.Tensor:
        ctx.strength = strength
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.strength * grad, None


def reverse_gradient(x: torch.Tensor, strength: float) -> torch.Tensor:
    r"""``x`` unchanged, its gradient multiplied by :math:`-` ``strength`` on the way back."""
    return _Reverse.apply(x, float(strength))


class GradientReversal(nn.Module):
    r"""The identity forward, :math:`-\lambda` times the gradient backward.

    Parameters
    ----------
    strength : float
        :math:`\lambda` (set :attr:`strength` during training to ramp it, see :func:`dann_lambda`).
    """

    def __init__(self, strength: float = 1.0) -> None:
        super().__init__()
        self.strength = float(strength)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return reverse_gradient(x, self.strength)

    def extra_repr(self) -> str:
        return f"strength={self.strength}"


def dann_lambda(progress: float, strength: float, ramp: bool = True) -> float:
    r"""The reversal strength at ``progress`` (0 at the first step, 1 at the last).

    With ``ramp``, DANN's schedule :math:`\lambda(p) = \lambda_{max} (2 / (1 + e^{-10 p}) - 1)`,
    which rises from 0 so that the domain head is trained before the encoder is pushed against
    it; else ``strength`` throughout.

    >>> dann_lambda(0.0, 0.1), round(dann_lambda(1.0, 0.1), 4), dann_lambda(0.5, 0.1, ramp=False)
    (0.0, 0.1, 0.1)
    """
    if not ramp:
        return float(strength)
    p = min(max(float(progress), 0.0), 1.0)
    return float(strength) * (2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0)
