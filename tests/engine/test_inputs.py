"""Bad input gets a clear error that names the problem."""

from __future__ import annotations

import numpy as np
import pytest

import tumorsynth as ts


def _volume(shape=(40, 40, 30)):
    image = np.full(shape, 100.0, np.float32)
    organ = np.zeros(shape, np.uint8)
    organ[8:32, 8:32, 6:24] = 1
    return image, organ


def test_shape_mismatch():
    image, organ = _volume()
    with pytest.raises(ts.InputError, match=r"image shape \(40, 40, 30\) and organ mask shape"):
        ts.synthesize(image, organ[:, :, :20], 1.0, seed=0)


def test_empty_organ():
    image, organ = _volume()
    with pytest.raises(ts.InputError, match="organ mask is empty"):
        ts.synthesize(image, np.zeros_like(organ), 1.0, seed=0)


def test_nan_in_organ_is_rejected_but_nan_outside_is_left_alone():
    image, organ = _volume()
    image[0, 0, 0] = np.nan  # outside the organ: never read, never changed
    bad = image.copy()
    bad[20, 20, 12] = np.nan
    with pytest.raises(ts.InputError, match="1 NaN or infinite voxels in the organ"):
        ts.synthesize(bad, organ, 1.0, seed=0)
    out = ts.synthesize(image, organ, 1.0, config={"size_class": "tiny"}, seed=0)
    assert np.isnan(out.image[0, 0, 0])


@pytest.mark.parametrize("spacing", [0.0, -1.0, (1.0, 1.0), (1.0, np.inf, 1.0), "abc"])
def test_bad_spacing(spacing):
    image, organ = _volume()
    with pytest.raises(ts.InputError, match="spacing_mm"):
        ts.synthesize(image, organ, spacing, seed=0)


def test_two_dimensional_image():
    image, organ = _volume()
    with pytest.raises(ts.InputError, match="must be a 3-D"):
        ts.synthesize(image[:, :, 0], organ[:, :, 0], 1.0, seed=0)


@pytest.mark.parametrize("dtype", [np.uint8, np.int32])
def test_non_binary_mask(dtype):
    image, organ = _volume()
    labels = organ.astype(dtype) * 5  # a multi-label map passed as a mask (liver = 5)
    with pytest.raises(ts.InputError, match="not binary"):
        ts.synthesize(image, labels, 1.0, seed=0)


def test_bool_mask_is_accepted():
    image, organ = _volume()
    out = ts.synthesize(image, organ.astype(bool), 1.0, config={"size_class": "tiny"}, seed=0)
    assert (out.label == 2).any()


def test_organ_too_small_for_size_class_is_a_clear_error():
    image, organ = _volume()
    with pytest.raises(ts.PlacementError, match="no room for a large tumour"):
        ts.synthesize(image, organ, 1.0, config={"size_class": "large"}, seed=0)


def test_real_slab_too_thin_for_large_tumours(real_ct):
    """Three slices (6 mm) of a real liver hold no medium tumour: a clear error naming the case."""
    organ = np.zeros_like(real_ct.organ)
    organ[:, :, 8:11] = real_ct.organ[:, :, 8:11]
    thin = ts.as_case(real_ct.image, organ, real_ct.spacing_mm, source="thin_slab.nii.gz")
    with pytest.raises(ts.PlacementError, match=r"thin_slab\.nii\.gz: no room for a medium"):
        ts.synthesize(thin, config={"size_class": "medium"}, seed=0)


def test_if_no_room_raise_fails_at_first_tumour_that_does_not_fit():
    image, organ = _volume((60, 60, 40))
    organ[:] = 0
    organ[10:50, 10:50, 8:32] = 1
    config = {"size_class": "medium", "location": {"if_no_room": "raise"}}
    with pytest.raises(ts.PlacementError):
        ts.synthesize(image, organ, 1.0, config=config, seed=0)
    skipped = ts.synthesize(image, organ, 1.0, config={"size_class": "medium"}, seed=0)
    assert 1 <= len(skipped.params.lesions) < 5


def test_params_for_another_volume_are_rejected():
    image, organ = _volume()
    params = ts.sample_params(image, organ, 1.0, config={"size_class": "tiny"}, rng=0)
    with pytest.raises(ts.InputError, match="params were drawn for shape"):
        ts.render(image, organ, 2.0, params)
    with pytest.raises(ts.InputError, match="render needs TumorParams"):
        ts.render(image, organ, 1.0, params.to_dict())


def test_unknown_device():
    image, organ = _volume()
    with pytest.raises(ts.InputError, match="device 'tpu' is not available"):
        ts.synthesize(image, organ, 1.0, seed=0, device="tpu")


@pytest.mark.parametrize("dtype", [np.float16, ">f4", ">i2", ">f8"])
def test_float16_and_big_endian_images_are_taken_as_they_read(dtype):
    """nibabel returns float16 and big-endian arrays; the kernels take neither as they are."""
    image, organ = _volume()
    image += np.random.default_rng(0).normal(0, 10, image.shape).astype(np.float32)
    want = ts.synthesize(image.astype(dtype).astype(np.float32), organ, 1.0, seed=3)
    got = ts.synthesize(image.astype(dtype), organ.astype(">i2"), 1.0, seed=3)
    assert got.image.dtype == np.float32
    np.testing.assert_array_equal(got.image, want.image)
    np.testing.assert_array_equal(got.label, want.label)


@pytest.mark.parametrize(
    ("scale", "offset"), [(1 / 4096, 1024 / 4096), (1 / 300, 0.0), (1 / 255, 0.0)]
)
def test_an_image_not_in_hu_is_refused(scale, offset):
    """A CT scaled to [0, 1] (or z-scored) would get tumours of -60 'HU' on values near 0.5."""
    image, organ = _volume()
    image += np.random.default_rng(1).normal(0, 15, image.shape).astype(np.float32)
    with pytest.raises(ts.InputError, match="does not look like Hounsfield units"):
        ts.synthesize(image * scale + offset, organ, 1.0, seed=0)
    ts.synthesize(image, organ, 1.0, config={"size_class": "tiny"}, seed=0)  # HU: accepted


@pytest.mark.parametrize("seed", [-1, 1.5, "7", True, 2**64])
def test_a_bad_seed_gets_our_message(seed):
    image, organ = _volume()
    with pytest.raises(ts.InputError, match=r"seed must be a whole number from 0 to 2\*\*63 - 1"):
        ts.synthesize(image, organ, 1.0, seed=seed)
