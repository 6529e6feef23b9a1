r"""SAR's loss: restoration, scale discrimination and the domain loss behind gradient reversal.

.. math::

    L = w_{res}\,\mathrm{MSE}(\hat y, y) + w_{sd}\,\mathrm{CE}(h(z), s)
        + w_{d}\,\mathrm{CE}(d(\mathrm{GRL}_\lambda(z)), m)

The domain term trains the discriminator :math:`d` to tell the domains apart; the reversal layer
passes :math:`-\lambda` times its gradient into the encoder, which so learns to hide them. Crops
with ``domain_weight`` 0 (tumour crops, by default) do not count in the domain term.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from tumorsynth.methods.sar.network import SarOutput

__all__ = ["SarLoss"]


class SarLoss:
    """The weighted sum of SAR's terms, and the terms themselves for the logs.

    Parameters
    ----------
    restore_weight, scale_weight, domain_weight : float
        :math:`w_{res}`, :math:`w_{sd}`, :math:`w_d`; a term whose weight is 0 is not computed (its
        head is not built).
    """

    def __init__(self, restore_weight: float, scale_weight: float, domain_weight: float) -> None:
        self.restore_weight = float(restore_weight)
        self.scale_weight = float(scale_weight)
        self.domain_weight = float(domain_weight)

    def __call__(
        self, output: SarOutput, batch: Mapping[str, Any]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss of one batch and its terms.

        Parameters
        ----------
        output : SarOutput
        batch : dict
            ``target`` (B, 1, X, Y, Z), ``scale`` and ``domain`` (B,) int64, ``domain_weight`` (B,).

        Returns
        -------
        loss : torch.Tensor
            Scalar, with the graph.
        terms : dict of str to float
            ``restore_mse``, and where computed ``scale_ce``, ``scale_acc``, ``domain_ce``,
            ``domain_acc`` (the accuracies over the crops that count).
        """
        mse = F.mse_loss(output.restored.float(), batch["target"])
        loss = self.restore_weight * mse
        terms = {"restore_mse": float(mse.detach())}
        if self.scale_weight > 0 and output.scale_logits is not None:
            logits = output.scale_logits.float()
            ce = F.cross_entropy(logits, batch["scale"])
            loss = loss + self.scale_weight * ce
            terms["scale_ce"] = float(ce.detach())
            terms["scale_acc"] = _accuracy(logits, batch["scale"])
        if self.domain_weight > 0 and output.domain_logits is not None:
            ce, acc = self.domain(output.domain_logits.float(), batch)
            loss = loss + self.domain_weight * ce
            terms["domain_ce"], terms["domain_acc"] = float(ce.detach()), acc
        return loss, terms

    @staticmethod
    def domain(logits: torch.Tensor, batch: Mapping[str, Any]) -> tuple[torch.Tensor, float]:
        """The domain cross-entropy averaged over the crops whose ``domain_weight`` is 1 (0 with
        the graph when none is), and the accuracy over them (NaN when none)."""
        weight = batch["domain_weight"].to(logits.dtype)
        each = F.cross_entropy(logits, batch["domain"], reduction="none")
        ce = (each * weight).sum() / weight.sum().clamp_min(1.0)
        counted = weight > 0
        acc = _accuracy(logits[counted], batch["domain"][counted])
        return ce, acc


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    if labels.numel() == 0:
        return float("nan")
    return float((logits.detach().argmax(1) == labels).float().mean())
