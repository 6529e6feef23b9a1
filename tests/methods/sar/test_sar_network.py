"""SarNet: the heads hang off each backbone's bottleneck, and the loss terms reach the weights."""

from __future__ import annotations

import pytest
import torch

from tumorsynth.methods.sar.network import SarNet, bottleneck, bottleneck_channels

# (spec, input size, bottleneck size): UNet halves per level but the last, BasicUNet 4 times,
# SwinUNETR 5 times (input / 32)
CASES = {
    "unet": ({"network": "unet", "channels": [4, 8, 16]}, 16, 4),
    "basic_unet": ({"network": "basic_unet", "channels": [4, 4, 8, 8, 16, 4]}, 32, 2),
    "swin_unetr": ({"network": "swin_unetr", "channels": [1], "swin_feature_size": 12}, 64, 2),
}


def _spec(name):
    spec, size, bottom = CASES[name]
    return {"swin_feature_size": 12, **spec, "patch_size": [size] * 3}, size, bottom


@pytest.mark.parametrize(
    "name", ["unet", "basic_unet", pytest.param("swin_unetr", marks=pytest.mark.slow)]
)
def test_the_heads_see_each_backbones_bottleneck(name):
    spec, size, bottom = _spec(name)
    torch.manual_seed(0)
    net = SarNet(spec, n_scales=3, n_domains=2)
    seen = {}
    bottleneck(net.backbone, name).register_forward_hook(lambda m, i, o: seen.setdefault("z", o))
    x = torch.rand(2, 1, size, size, size)
    with torch.no_grad():
        out = net(x)
    assert seen["z"].shape == (2, bottleneck_channels(spec), bottom, bottom, bottom)
    assert out.restored.shape == x.shape and 0 <= out.restored.min() <= out.restored.max() <= 1
    assert out.scale_logits.shape == (2, 3) and out.domain_logits.shape == (2, 2)
    # the scale head is a function of the bottleneck features
    assert torch.allclose(net.scale_head(seen["z"]), out.scale_logits)


def test_with_clean_crops_the_heads_see_them_and_restoration_sees_the_input():
    spec, size, _ = _spec("unet")
    torch.manual_seed(0)
    net = SarNet(spec, n_scales=3, n_domains=2).eval()
    x, clean = torch.rand(2, 1, size, size, size), torch.rand(2, 1, size, size, size)
    with torch.no_grad():
        both = net(x, clean)
        alone, of_clean = net(x), net(clean)
    assert torch.allclose(both.restored, alone.restored, atol=1e-5)
    assert torch.allclose(both.scale_logits, of_clean.scale_logits, atol=1e-5)
    assert torch.allclose(both.domain_logits, of_clean.domain_logits, atol=1e-5)


def test_every_parameter_gets_a_gradient_and_unneeded_heads_are_not_built():
    spec, size, _ = _spec("unet")
    net = SarNet(spec, n_scales=3, n_domains=2)
    out = net(torch.rand(2, 1, size, size, size))
    (out.restored.mean() + out.scale_logits.sum() + out.domain_logits.sum()).backward()
    assert all(p.grad is not None for p in net.parameters())
    plain = SarNet(spec, n_scales=0, n_domains=0)  # Models Genesis
    out = plain(torch.rand(1, 1, size, size, size))
    assert plain.scale_head is None and out.scale_logits is None and out.domain_logits is None


def test_the_domain_gradient_reaches_the_encoder_reversed():
    spec, size, _ = _spec("unet")
    torch.manual_seed(0)
    net = SarNet(spec, n_scales=0, n_domains=2)
    x = torch.rand(2, 1, size, size, size)
    z = net.features(x).detach().requires_grad_(True)
    net.reversal.strength = 0.3
    net.domain_head(net.reversal(z)).sum().backward()
    reversed_grad = z.grad.clone()
    z.grad = None
    net.domain_head(z).sum().backward()
    assert torch.allclose(reversed_grad, -0.3 * z.grad)
