"""Synthetic pseudo-labels: each corruption does the error it is named after."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from tumorsynth.methods.aslseg.config import CORRUPTIONS
from tumorsynth.methods.aslseg.corrupt import (
    OPERATIONS,
    blob,
    corrupt,
    dilate,
    drop,
    empty,
    erode,
    noise,
    warp,
)

S = 64


@pytest.fixture
def masks():
    yy, xx = np.mgrid[:S, :S]
    liver = (xx - 32) ** 2 / 28**2 + (yy - 32) ** 2 / 24**2 < 1
    tumour = ((xx - 24) ** 2 + (yy - 30) ** 2 < 36) | ((xx - 42) ** 2 + (yy - 36) ** 2 < 16)
    return tumour & liver, liver


def test_every_corruption_is_named_in_the_config():
    assert tuple(OPERATIONS) == CORRUPTIONS


def test_each_corruption_makes_its_error(masks):
    tumour, liver = masks
    rng = np.random.default_rng(0)
    assert erode(tumour, liver, rng).sum() < tumour.sum()
    assert (erode(tumour, liver, rng) <= tumour).all()
    grown = dilate(tumour, liver, rng)
    assert (grown >= tumour).all() and grown.sum() > tumour.sum() and (grown <= liver).all()
    dropped = drop(tumour, liver, rng)
    assert ndimage.label(dropped)[1] == 1 and (dropped <= tumour).all()
    added = blob(tumour, liver, rng)
    assert (
        (added >= tumour).all() and added.sum() > tumour.sum() and (added <= liver | tumour).all()
    )
    ragged = noise(tumour, liver, rng)
    band = ndimage.binary_dilation(tumour, np.ones((3, 3))) & ~ndimage.binary_erosion(
        tumour, np.ones((3, 3))
    )
    assert (ragged != tumour).any() and not ((ragged != tumour) & ~band).any()
    moved = warp(tumour, liver, rng)
    assert (moved != tumour).any() and abs(
        int(moved.sum()) - int(tumour.sum())
    ) < 0.5 * tumour.sum()
    assert not empty(tumour, liver, rng).any()


def test_corrupt_draws_reproducibly_inside_the_liver(masks):
    tumour, liver = masks
    a, names_a = corrupt(tumour, liver, np.random.default_rng(7))
    b, names_b = corrupt(tumour, liver, np.random.default_rng(7))
    assert np.array_equal(a, b) and names_a == names_b and 1 <= len(names_a) <= 2
    seen = set()
    for seed in range(40):
        out, names = corrupt(tumour, liver, np.random.default_rng(seed))
        assert (out <= liver).all()
        seen.update(names)
    assert seen == set(CORRUPTIONS)
    # on an empty mask only a false blob or nothing can happen
    for seed in range(10):
        out, names = corrupt(np.zeros_like(tumour), liver, np.random.default_rng(seed))
        assert set(names) <= {"blob", "empty"} and (out <= liver).all()
    only, names = corrupt(tumour, liver, np.random.default_rng(1), ["erode"])
    assert names == ("erode",) and (only <= tumour).all()
