"""Slices of liver boxes, the labelled / unlabelled / held-out sets, and volumes assembled back in
their geometry."""

from __future__ import annotations

import numpy as np
import pytest
from toy import data_file

from tumorsynth.errors import InputError
from tumorsynth.io.volume import write_volume
from tumorsynth.methods.aslseg import data
from tumorsynth.methods.aslseg.config import load_aslseg_config
from tumorsynth.methods.aslseg.pseudo import dice_per_slice
from tumorsynth.methods.aslseg.slices import AIR_HU, Slices, cut, liver_box, paste

CFG = {"n_host_phantoms": 1, "n_unlabelled_phantoms": 1, "phantom_spacing_mm": 3.0,
       "slice_size": 32, "n_labelled_volumes": 2, "n_labelled_slices": 20, "min_liver_px": 4}  # fmt: skip


@pytest.fixture(scope="module")
def config():
    return load_aslseg_config(None, CFG)


def _dice(a, b) -> float:
    return 2 * float((a & b).sum()) / float(a.sum() + b.sum())


def test_the_box_is_square_in_mm_and_holds_the_liver():
    liver = np.zeros((60, 40, 10), bool)
    liver[20:40, 10:20, 3:7] = True  # 20 x 10 voxels at 0.5 x 1 mm: 10 x 10 mm
    box = liver_box(liver, (0.5, 1.0, 2.0), margin_mm=5.0)
    assert box.size_vox == (40, 20)  # 20 mm along both
    assert box.z == (3, 4, 5, 6)
    (x0, y0), (wx, wy) = box.lo_vox, box.size_vox
    assert x0 <= 20 and x0 + wx >= 40 and y0 <= 10 and y0 + wy >= 20
    with pytest.raises(InputError, match="liver mask is empty"):
        liver_box(np.zeros_like(liver), (1.0, 1.0, 1.0), margin_mm=0.0, source="m.nii.gz")


def test_cut_pads_with_air_and_paste_puts_slices_back_on_the_grid():
    liver = np.zeros((50, 50, 6), bool)
    yy, xx = np.mgrid[:50, :50]
    disc = (xx - 10) ** 2 + (yy - 12) ** 2 < 81  # near the edge: the box reaches outside
    liver[..., 1:5] = disc[..., None]
    box = liver_box(liver, (1.0, 1.0, 1.0), margin_mm=6.0)
    assert min(box.lo_vox) < 0
    image = cut(np.zeros(liver.shape, np.float32), box, 32)
    assert image.shape == (4, 32, 32) and image.min() == AIR_HU  # outside the volume: air
    back = paste(cut(liver, box, 32, mask=True).astype(np.float32), box, liver.shape) >= 0.5
    assert _dice(back, liver) > 0.93 and not back[..., [0, 5]].any()


def test_volume_slices_keep_ids_liver_and_hidden_tumours(config):
    (volume,) = data.phantom_volumes([200], 3.0, "syntumor", tumour_seed=1, prefix="test")
    assert volume.tumour.any() and (volume.tumour <= volume.liver).all()
    slices, box = data.volume_slices(volume, config)
    n_liver = int(volume.liver.any(axis=(0, 1)).sum())  # a sliver of liver may vanish at 32 px
    assert len(slices) == len(box.z) and n_liver - 2 <= len(slices) <= n_liver
    assert slices.known.all() and slices.ids[0] == f"test200:{box.z[0]}"
    assert slices.image.min() >= 0 and slices.image.max() <= 1  # windowed
    back = (paste(slices.tumour.astype(np.float32), box, volume.liver.shape) >= 0.5) & volume.liver
    assert _dice(back, volume.tumour) > 0.7  # 3 mm -> 32 px -> 3 mm, small lesions included


def test_the_labelled_set_comes_from_the_stream_in_the_set_ratio(config):
    hosts = data.hosts(config)
    labelled, record = data.labelled_slices(config, hosts)
    has = labelled.tumour.any(axis=(1, 2))
    assert len(labelled) == 20 and int(has.sum()) == 10
    assert (labelled.tumour <= labelled.liver).all() and labelled.known.all()
    assert len(record) == 2 and {r["host"] for r in record} == {0}
    again, _ = data.labelled_slices(config, hosts)  # the same seed, the same set
    assert np.array_equal(again.image, labelled.image) and list(again.ids) == list(labelled.ids)


def test_a_ct_without_its_liver_mask_or_with_an_empty_one(tmp_path):
    ct = np.full((20, 20, 6), 40.0, np.float32)
    write_volume(tmp_path / "ct.nii.gz", ct, (2.0, 2.0, 3.0))
    with pytest.raises(InputError, match=r"needs --masks|one organ mask"):
        data.file_volumes([str(tmp_path / "ct.nii.gz")], [], None, None, "unlabelled_images")
    write_volume(tmp_path / "liver.nii.gz", np.zeros(ct.shape, np.uint8), (2.0, 2.0, 3.0))
    with pytest.raises(InputError, match=r"ct\.nii\.gz: the organ mask is empty"):
        data.file_volumes([str(tmp_path / "ct.nii.gz")], [str(tmp_path / "liver.nii.gz")], None,
                          None, "unlabelled_images")  # fmt: skip


def test_real_ct_slices_keep_its_geometry(config):
    ct = data_file("totalsegmentator_example/example_ct_sm.nii.gz")
    mask = data_file("totalsegmentator_example/example_ct_sm_liver_mask.nii.gz")
    (volume,) = data.file_volumes([str(ct)], [str(mask)], None, None, "unlabelled_images")
    assert volume.spacing_mm == (3.0, 3.0, 3.0) and volume.tumour is None
    slices, box = data.volume_slices(volume, config, min_liver_px=1)
    assert not slices.known.any() and len(slices) == int(volume.liver.any(axis=(0, 1)).sum())
    back = paste(slices.liver.astype(np.float32), box, volume.liver.shape) >= 0.5
    assert _dice(back, volume.liver) > 0.9


def test_slice_sets_refuse_repeated_ids():
    one = np.zeros((2, 16, 16), np.float32)
    with pytest.raises(ValueError, match="ids repeat"):
        Slices(one, one > 0, one > 0, np.ones(2, bool), np.array(["a:1", "a:1"]))
    assert dice_per_slice(one > 0, one > 0).tolist() == [1.0, 1.0]
