"""SAR's loss: each term as its formula says, weighted, and left out where its weight is 0."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from tumorsynth.methods.sar.losses import SarLoss
from tumorsynth.methods.sar.network import SarOutput


def _case(seed=0):
    gen = torch.Generator().manual_seed(seed)
    out = SarOutput(
        restored=torch.rand(4, 1, 6, 6, 4, generator=gen, requires_grad=True),
        scale_logits=torch.randn(4, 3, generator=gen, requires_grad=True),
        domain_logits=torch.randn(4, 2, generator=gen, requires_grad=True),
    )
    batch = {
        "target": torch.rand(4, 1, 6, 6, 4, generator=gen),
        "scale": torch.tensor([0, 1, 2, 1]),
        "domain": torch.tensor([0, 1, 1, 0]),
        "domain_weight": torch.tensor([1.0, 1.0, 0.0, 1.0]),
    }
    return out, batch


def test_each_term_is_its_formula():
    out, batch = _case()
    loss, terms = SarLoss(1.0, 0.1, 0.5)(out, batch)
    with torch.no_grad():
        mse = ((out.restored - batch["target"]) ** 2).mean()
        scale_ce = -torch.log_softmax(out.scale_logits, 1)[torch.arange(4), batch["scale"]].mean()
        keep = [0, 1, 3]  # the crop with domain_weight 0 does not count
        domain_ce = -torch.log_softmax(out.domain_logits, 1)[keep, batch["domain"][keep]].mean()
    assert math.isclose(terms["restore_mse"], float(mse), rel_tol=1e-6)
    assert math.isclose(terms["scale_ce"], float(scale_ce), rel_tol=1e-6)
    assert math.isclose(terms["domain_ce"], float(domain_ce), rel_tol=1e-6)
    assert torch.allclose(loss, mse + 0.1 * scale_ce + 0.5 * domain_ce)
    predicted = out.scale_logits.argmax(1)
    assert terms["scale_acc"] == float((predicted == batch["scale"]).float().mean())


def test_a_crop_left_out_of_the_domain_term_gets_no_domain_gradient():
    out, batch = _case(1)
    SarLoss(0.0, 0.0, 1.0)(out, batch)[0].backward()
    assert (out.domain_logits.grad[2] == 0).all() and (out.domain_logits.grad[0] != 0).any()
    assert out.scale_logits.grad is None  # weight 0: not computed


def test_zero_weights_leave_terms_out_and_an_all_excluded_batch_is_zero():
    out, batch = _case(2)
    loss, terms = SarLoss(1.0, 0.0, 0.0)(out, batch)
    assert set(terms) == {"restore_mse"}
    assert torch.allclose(loss, F.mse_loss(out.restored, batch["target"]))
    batch["domain_weight"] = torch.zeros(4)
    loss, terms = SarLoss(0.0, 0.0, 1.0)(out, batch)
    assert float(loss.detach()) == 0.0 and math.isnan(terms["domain_acc"])
