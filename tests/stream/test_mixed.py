"""Mixed streams: each crop's source by the ratios and marked; labelled crops keep their labels."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
import torch

import tumorsynth as ts
from tumorsynth.errors import InputError
from tumorsynth.stream import insert_tumours
from tumorsynth.stream.crops import TumorStream, collate
from tumorsynth.stream.mixed import LabelledScan, LabelledStream, MixedStream, mix_fractions

PATCH = (24, 24, 24)


@pytest.fixture(scope="module")
def labelled(phantom_2mm):
    """The phantom with syntumor tumours, as a labelled scan."""
    result = ts.synthesize(phantom_2mm, config="syntumor", seed=5)
    return LabelledScan("scan", result.image, result.label, phantom_2mm.spacing_mm)


def test_fractions_follow_the_ratios_within_one_crop(phantom_2mm, labelled):
    streams = {
        "phantom": TumorStream([phantom_2mm], PATCH, prob=0.0, seed=1),
        "real": LabelledStream([labelled], PATCH, seed=1),
    }
    weights = {"phantom": 2.0, "real": 1.0}
    items = list(itertools.islice(MixedStream(streams, weights, seed=3), 30))
    counts = Counter(item["source"] for item in items)
    assert counts == {"phantom": 20, "real": 10}
    for n in range(1, 31):  # at every point of the stream, not only at the end
        so_far = Counter(item["source"] for item in items[:n])
        assert abs(so_far["real"] - n / 3) <= 1, (n, so_far)
    assert mix_fractions({"phantom": 3, "ct": 0, "real": 1}) == {"phantom": 0.75, "real": 0.25}
    with pytest.raises(InputError, match="weights"):
        MixedStream(streams, {"phantom": -1.0, "real": 1.0})
    with pytest.raises(InputError, match="does not have"):
        MixedStream(streams, {"ct": 1.0})


def test_labelled_crops_keep_their_tumours_and_replay(labelled):
    stream = LabelledStream([labelled], PATCH, pos_fraction=1.0, seed=0)
    rng = np.random.default_rng(0)
    items = [stream.sample(rng) for _ in range(12)]
    assert all(not item["params"] for item in items)  # nothing synthesised
    with_tumour = [i for i in items if (i["label"] == 2).any()]
    assert with_tumour, "no crop of a scan with tumours holds one"
    for item in items:
        lo = item["crop_lo_vox"].numpy()
        box = tuple(slice(a, a + s) for a, s in zip(lo, PATCH, strict=True))
        assert torch.equal(item["label"][0], torch.from_numpy(labelled.label[box]))
        assert torch.equal(item["image"][0], torch.from_numpy(labelled.image[box]))
    again = stream.replay(items[0]["case"], items[0]["crop_lo_vox"], None)
    assert torch.equal(again["label"], items[0]["label"])


def test_one_source_is_that_sources_own_stream(phantom_2mm):
    alone = TumorStream([phantom_2mm], PATCH, config="syntumor", seed=7)
    mixed = MixedStream({"ct": TumorStream([phantom_2mm], PATCH, config="syntumor", seed=7)},
                        {"ct": 1.0}, seed=7)  # fmt: skip
    for a, b in zip(itertools.islice(alone, 3), itertools.islice(mixed, 3), strict=True):
        assert torch.equal(a["image"], b["image"]) and a["params"] == b["params"]
        assert b["source"] == "ct"


def test_the_gpu_hook_keeps_the_tumours_of_labelled_crops(phantom_2mm, labelled):
    kwargs = {"patch_size": PATCH, "pos_fraction": 1.0, "seed": 2}
    drawn = [TumorStream([phantom_2mm], render=False, **kwargs).sample(np.random.default_rng(4))]
    real = LabelledStream([labelled], **kwargs)
    rng = np.random.default_rng(0)
    crop = next(
        item for item in (real.sample(rng) for _ in range(50)) if (item["label"] == 2).any()
    )
    batch = collate([*drawn, crop])
    image, label = insert_tumours(batch["image"], batch["label"], batch["params"])
    assert torch.equal(label[1], crop["label"]) and torch.equal(image[1], crop["image"])
    assert (label[0] == 2).any() or not drawn[0]["params"]
