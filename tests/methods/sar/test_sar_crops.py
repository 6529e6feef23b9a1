"""SAR's crops: each scale label is the physical size its crop was taken at; tumour crops from
the stream; the same seed gives the same crops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tumorsynth.methods.sar.config import load_sar_config
from tumorsynth.methods.sar.crops import SarCrops, fixed_crops
from tumorsynth.methods.sar.domains import Domain, Volume, crop_voxels

SIZES_MM = [[12, 12, 12], [24, 24, 24], [48, 48, 48]]
NO_CORRUPTION = ["pretrain.flip_prob=0", "pretrain.shuffle_prob=0", "pretrain.nonlinear_prob=0",
                 "pretrain.paint_prob=0"]  # fmt: skip


def _config(*more):
    return load_sar_config(None, [
        "pretrain.network=unet", "pretrain.channels=[4,8]", "pretrain.input_size=[8,8,8]",
        f"pretrain.crop_sizes_mm={SIZES_MM}", "pretrain.window_hu=[0,100]",
        "pretrain.body_hu=-1000", "pretrain.shuffle_blocks=50", *more,
    ]).pretrain  # fmt: skip


def _ramp_domain(spacing=(2.0, 2.0, 2.0), index=0) -> Domain:
    """HU = x in mm: a crop's intensity range along x tells its extent."""
    shape = (50, 50, 30)
    x_mm = np.arange(shape[0]) * spacing[0]
    image = np.broadcast_to(x_mm[:, None, None], shape).astype(np.float32).copy()
    return Domain(index, f"ramp{index}", [Volume("ramp", image, spacing)], tumours=False)


def test_scale_labels_match_the_crop_sizes():
    cfg = _config(*NO_CORRUPTION)
    crops = SarCrops([_ramp_domain()], cfg, seed=0)
    batch = fixed_crops(crops, 60, seed=0)
    target = batch["target"][:, 0]
    # the clean target spans (crop voxels - 1) * 2 mm along x, in [0, 1] over a 100 HU window
    extent_mm = (target[:, -1, :, :].mean((1, 2)) - target[:, 0, :, :].mean((1, 2))) * 100
    for scale in range(3):
        mine = extent_mm[batch["scale"] == scale]
        assert len(mine) > 5
        expected = (crop_voxels(SIZES_MM[scale], (2, 2, 2))[0] - 1) * 2.0
        assert torch.allclose(mine, torch.full_like(mine, expected), rtol=0.2), (scale, mine)
    assert set(batch["domain"].tolist()) == {0}


def test_crops_have_the_physical_size_of_their_class_at_any_spacing():
    cfg = _config()
    for spacing in [(2.0, 2.0, 2.0), (1.0, 1.0, 3.0)]:
        domain = _ramp_domain(spacing)
        crops = SarCrops([domain], cfg, seed=0)
        rng = np.random.default_rng(0)
        for scale, size_mm in enumerate(SIZES_MM):
            crop, tumour = crops.crop(rng, domain, scale)
            assert crop.shape == crop_voxels(size_mm, spacing) and not tumour


def test_tumour_crops_come_from_the_stream_and_leave_the_domain_loss(phantom_4mm):
    cfg = _config("pretrain.synth_config=syntumor", "pretrain.pos_fraction=1.0")
    organ = np.asarray(phantom_4mm.organ)
    host = Volume("phantom", np.asarray(phantom_4mm.image, np.float32), phantom_4mm.spacing_mm,
                  organ)  # fmt: skip
    domains = [Domain(0, "healthy", [host], False), Domain(1, "synthetic", [host], True)]
    batch = fixed_crops(SarCrops(domains, cfg, seed=0), 24, seed=1)
    tumour, domain = batch["tumour"], batch["domain"]
    assert tumour.any() and not tumour[domain == 0].any()
    assert torch.equal(batch["domain_weight"], (~tumour).float())
    counted = _config("pretrain.domain_on_tumour_crops=true")
    batch = fixed_crops(SarCrops(domains, counted, seed=0), 8, seed=1)
    assert (batch["domain_weight"] == 1).all()


def test_the_same_seed_gives_the_same_crops_and_workers_differ():
    cfg = _config()
    crops = SarCrops([_ramp_domain(), _ramp_domain(index=1)], cfg, seed=3)
    a, b = fixed_crops(crops, 4, seed=5), fixed_crops(crops, 4, seed=5)
    assert all(torch.equal(a[k], b[k]) for k in a)
    loader = torch.utils.data.DataLoader(crops, batch_size=2, num_workers=0)
    first = next(iter(loader))["input"]
    assert torch.equal(first, next(iter(loader))["input"])  # one process: reproducible
    assert not torch.equal(first, a["input"][:2])  # another stream than the held-out crops


@pytest.fixture(scope="module")
def phantom_4mm():
    from tumorsynth.phantom import make_phantom

    return make_phantom(seed=0, spacing_mm=4.0)
