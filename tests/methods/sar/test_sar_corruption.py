"""Models Genesis' corruptions: the input is corrupted, the target is the clean crop, untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tumorsynth.methods.sar.corruption import RandBezierIntensityd, bezier_curve, models_genesis

SIZE = (24, 24, 16)


def _crop(seed=0):
    gen = torch.Generator().manual_seed(seed)
    smooth = torch.nn.functional.avg_pool3d(torch.rand(1, 1, *SIZE, generator=gen), 3, 1, 1)
    return smooth[0]


@pytest.mark.parametrize(
    "which",
    [
        {"shuffle_prob": 1.0},
        {"nonlinear_prob": 1.0},
        {"paint_prob": 1.0, "inpaint_fraction": 1.0},
        {"paint_prob": 1.0, "inpaint_fraction": 0.0},
        {"shuffle_prob": 1.0, "nonlinear_prob": 1.0, "paint_prob": 1.0},
    ],
)
def test_the_input_is_corrupted_and_the_target_is_the_untouched_crop(which):
    off = {"flip_prob": 0.0, "shuffle_prob": 0.0, "nonlinear_prob": 0.0, "paint_prob": 0.0}
    corrupt = models_genesis(SIZE, shuffle_blocks=500, **{**off, **which})
    for seed in range(3):
        corrupt.set_random_state(seed=seed)
        crop = _crop(seed)
        clean = crop.clone()
        out = corrupt({"image": crop})
        target, image = torch.as_tensor(out["target"]), torch.as_tensor(out["image"])
        assert torch.equal(target, clean)  # the in-place transforms did not reach it
        assert image.shape == target.shape
        assert (image - target).abs().mean() > 1e-3


def test_a_flip_turns_input_and_target_alike():
    corrupt = models_genesis(SIZE, flip_prob=1.0, shuffle_prob=0.0, nonlinear_prob=0.0,
                             paint_prob=0.0)  # fmt: skip
    corrupt.set_random_state(seed=1)
    crop = _crop()
    out = corrupt({"image": crop.clone()})
    target = torch.as_tensor(out["target"])
    assert torch.equal(torch.as_tensor(out["image"]), target)
    assert any(torch.equal(target, crop.flip(axis)) for axis in (1, 2, 3))


def test_the_same_seed_gives_the_same_corruption():
    corrupt = models_genesis(SIZE, shuffle_blocks=200)
    outs = []
    for _ in range(2):
        corrupt.set_random_state(seed=7)
        outs.append(torch.as_tensor(corrupt({"image": _crop()})["image"]))
    assert torch.equal(outs[0], outs[1])


def test_bezier_curve_runs_from_the_last_control_point_to_the_first():
    points = np.array([(0.0, 0.0), (0.2, 0.8), (0.6, 0.1), (1.0, 1.0)])
    xs, ys = bezier_curve(points, 11)
    assert (xs[0], ys[0]) == (1.0, 1.0) and (xs[-1], ys[-1]) == (0.0, 0.0)
    # the cubic's middle point: (P0 + 3 P1 + 3 P2 + P3) / 8
    assert np.allclose((xs[5], ys[5]), (points[0] + 3 * points[1] + 3 * points[2] + points[3]) / 8)


def test_bezier_intensity_rises_or_falls_with_the_flip():
    ramp = torch.linspace(0, 1, 101)
    transform = RandBezierIntensityd("image", prob=1.0)
    seen = set()
    for seed in range(12):
        transform.set_random_state(seed)
        out = transform({"image": ramp.clone()})["image"]
        steps = torch.diff(out)
        if transform.inverted:
            assert out[0] > 0.9 and out[-1] < 0.1  # dark becomes bright
        else:
            assert (steps >= -1e-6).all() and out[0] < 1e-6 and out[-1] > 1 - 1e-6
        assert out.min() >= 0 and out.max() <= 1
        seen.add(transform.inverted)
    assert seen == {True, False}
    transform = RandBezierIntensityd("image", prob=0.0)
    assert torch.equal(transform({"image": ramp})["image"], ramp)
