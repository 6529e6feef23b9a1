"""The built-in abdominal phantom: determinism, geometry, HU statistics, noise and argument checks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

import tumorsynth.phantom as phantom
from tumorsynth.engine.case import Case
from tumorsynth.errors import InputError
from tumorsynth.phantom import LABELS, make_phantom

L = LABELS


@pytest.fixture(scope="module")
def ph2() -> Case:
    """Seed 0 at 2 mm, the workhorse of these tests."""
    return make_phantom(seed=0, spacing_mm=2.0)


@pytest.fixture(scope="module")
def ph_aniso() -> Case:
    return make_phantom(seed=1, spacing_mm=(0.75, 0.75, 2.5))


def _hu(case: Case, label: str) -> np.ndarray:
    return case.image[case.extras["labels"] == L[label]]


def _volume_ml(mask: np.ndarray, spacing) -> float:
    return float(mask.sum()) * float(np.prod(spacing)) / 1000.0


def _centroid_mm(mask: np.ndarray, spacing) -> np.ndarray:
    """Centroid in mm relative to the centre of the field of view."""
    idx = np.argwhere(mask)
    return (idx.mean(0) + 0.5 - np.array(mask.shape) / 2) * np.array(spacing)


def test_types_shapes_and_values(ph2):
    assert isinstance(ph2, Case)
    assert ph2.shape == (160, 160, 120)
    assert ph2.spacing_mm == (2.0, 2.0, 2.0)
    assert all(type(s) is float for s in ph2.spacing_mm)
    assert ph2.source == "phantom(seed=0)"
    assert ph2.image.dtype == np.float32
    for name in ("vessels", "labels"):
        assert ph2.extras[name].dtype == np.uint8
        assert ph2.extras[name].shape == ph2.shape
    assert ph2.organ.dtype == np.uint8
    assert set(np.unique(ph2.organ)) == {0, 1}
    assert set(np.unique(ph2.extras["vessels"])) == {0, 1}
    # RAS array axes in LPS world space, the field of view centred on the world origin
    assert ph2.direction == (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)
    assert ph2.origin_mm == (159.0, 159.0, -119.0)
    # integral HU, in the range of a stored CT
    assert np.array_equal(ph2.image, np.round(ph2.image))
    assert ph2.image.min() >= -1024 and ph2.image.max() <= 3071


def test_default_shape_follows_the_field_of_view():
    assert make_phantom(seed=0, spacing_mm=4.0).shape == (80, 80, 60)


def test_labels_are_consistent_with_masks(ph2):
    labels = ph2.extras["labels"]
    assert set(np.unique(labels)) <= set(L.values())
    assert len(set(L.values())) == len(L) and L["background"] == 0 and L["liver"] == 1
    # every structure of the phantom is there
    present = set(np.unique(labels).tolist())
    assert present == set(L.values())
    organ = np.isin(labels, (L["liver"], L["liver_vessels"]))
    assert np.array_equal(ph2.organ.astype(bool), organ)
    vessels = ph2.extras["vessels"].astype(bool)
    assert np.array_equal(vessels, labels == L["liver_vessels"])
    assert not np.any(vessels & ~ph2.organ.astype(bool)), "vessels must lie inside the liver"


def test_same_seed_is_bit_identical_and_other_seeds_differ(ph2):
    phantom._patient.cache_clear()  # rebuild the anatomy from the seed, not from the cache
    again = make_phantom(seed=0, spacing_mm=2.0)
    assert np.array_equal(again.image, ph2.image)
    assert np.array_equal(again.organ, ph2.organ)
    for name in ("vessels", "labels"):
        assert np.array_equal(again.extras[name], ph2.extras[name])
    a, b = make_phantom(seed=1, spacing_mm=4.0), make_phantom(seed=2, spacing_mm=4.0)
    assert not np.array_equal(a.organ, b.organ)
    assert not np.array_equal(a.extras["vessels"], b.extras["vessels"])
    assert np.mean(a.image != b.image) > 0.5


def test_hu_statistics_per_structure(ph2):
    liver = np.median(_hu(ph2, "liver"))
    assert 95 <= liver <= 115
    assert np.median(ph2.image[ph2.extras["vessels"] > 0]) >= liver + 50
    assert np.median(_hu(ph2, "subcutaneous_fat")) < -50
    assert np.median(_hu(ph2, "visceral_fat")) < -50
    assert np.median(_hu(ph2, "background")) < -900
    assert np.median(_hu(ph2, "bone")) > 250
    assert np.median(_hu(ph2, "lung")) < -700
    assert 30 <= np.median(_hu(ph2, "muscle")) <= 70
    assert 100 <= np.median(_hu(ph2, "spleen")) <= 130
    assert np.median(_hu(ph2, "aorta")) > np.median(_hu(ph2, "ivc")) > liver
    for side in ("kidney_right", "kidney_left"):
        assert np.median(_hu(ph2, side)) > liver + 30
    assert np.median(_hu(ph2, "gallbladder")) < 40


def test_noise_level_in_the_parenchyma(ph2):
    parenchyma = ndimage.binary_erosion(ph2.extras["labels"] == L["liver"], iterations=3)
    assert parenchyma.sum() > 10_000
    assert 8.0 <= ph2.image[parenchyma].std() <= 20.0


def test_noise_is_spatially_correlated(ph_aniso):
    """At 0.75 mm in-plane the 0.7 mm correlation length links neighbouring voxels."""
    fat = ndimage.binary_erosion(ph_aniso.extras["labels"] == L["subcutaneous_fat"], iterations=2)
    values = ph_aniso.image - ph_aniso.image[fat].mean()
    pairs = fat[:-1] & fat[1:]
    r = np.corrcoef(values[:-1][pairs], values[1:][pairs])[0, 1]
    assert 0.4 < r < 0.95
    assert 8.0 <= ph_aniso.image[fat].std() <= 20.0


def test_liver_volume_extent_and_position(ph2):
    organ = ph2.organ.astype(bool)
    assert 1200 <= _volume_ml(organ, ph2.spacing_mm) <= 1900
    idx = np.argwhere(organ)
    extent = (idx.max(0) - idx.min(0) + 1) * 2.0
    assert 160 <= extent[0] <= 210 and 120 <= extent[1] <= 170 and 130 <= extent[2] <= 170
    # inside the field of view, off the borders
    assert np.all(idx.min(0) >= 3) and np.all(idx.max(0) <= np.array(ph2.shape) - 4)
    # RAS: the liver on the patient's right, high; the spine posterior; the spleen on the left
    labels = ph2.extras["labels"]
    liver = _centroid_mm(organ, ph2.spacing_mm)
    canal = _centroid_mm(labels == L["spinal_canal"], ph2.spacing_mm)
    assert liver[0] > 30 and liver[2] > 0
    assert abs(canal[0]) < 10 and canal[1] < -40
    assert _centroid_mm(labels == L["spleen"], ph2.spacing_mm)[0] < -40
    assert _centroid_mm(labels == L["kidney_right"], ph2.spacing_mm)[0] > 30
    assert _centroid_mm(labels == L["kidney_left"], ph2.spacing_mm)[0] < -30
    assert _centroid_mm(labels == L["lung"], ph2.spacing_mm)[2] > liver[2]


def test_vessel_tree_and_room_for_tumours(ph2):
    organ = ph2.organ.astype(bool)
    vessels = ph2.extras["vessels"].astype(bool)
    fraction = vessels.sum() / organ.sum()
    assert 0.01 < fraction < 0.12
    # a tumour of 40 mm fits in vessel-free parenchyma: some point is 20 mm from any vessel or edge
    clearance = ndimage.distance_transform_edt(organ & ~vessels, sampling=ph2.spacing_mm)
    assert clearance.max() >= 20.0
    assert (clearance >= 10.0).sum() * 8e-3 > 20.0, "room (mL) for the centres of 20 mm tumours"


def test_same_patient_at_any_spacing(ph2, ph_aniso):
    assert ph_aniso.shape == (427, 427, 96)
    iso = make_phantom(seed=1, spacing_mm=1.0)
    v_iso = _volume_ml(iso.organ, iso.spacing_mm)
    v_aniso = _volume_ml(ph_aniso.organ, ph_aniso.spacing_mm)
    assert abs(v_aniso / v_iso - 1) < 0.05
    np.testing.assert_allclose(
        _centroid_mm(ph_aniso.organ, ph_aniso.spacing_mm),
        _centroid_mm(iso.organ, iso.spacing_mm),
        atol=1.0,
    )
    coarse = make_phantom(seed=0, spacing_mm=4.0)
    v_coarse = _volume_ml(coarse.organ, coarse.spacing_mm)
    assert abs(v_coarse / _volume_ml(ph2.organ, ph2.spacing_mm) - 1) < 0.05


def test_a_smaller_field_of_view_crops_the_same_patient(ph2):
    crop = make_phantom(seed=0, shape=(120, 90, 110), spacing_mm=2.0)
    box = (slice(20, 140), slice(35, 125), slice(5, 115))
    assert np.array_equal(crop.extras["labels"], ph2.extras["labels"][box])
    assert np.array_equal(crop.organ, ph2.organ[box])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"spacing_mm": 0.0},
        {"spacing_mm": -1.0},
        {"spacing_mm": (1.0, 1.0)},
        {"spacing_mm": (1.0, float("nan"), 1.0)},
        {"spacing_mm": "thin"},
        {"shape": (100, 100)},
        {"shape": (0, 100, 100)},
        {"shape": (100.5, 100, 100)},
        {"shape": "big"},
        {"seed": -1},
        {"seed": 1.5},
    ],
)
def test_argument_errors(kwargs):
    with pytest.raises(InputError):
        make_phantom(**kwargs)


def test_field_of_view_too_small_for_the_liver():
    with pytest.raises(InputError, match="minimum field of view") as err:
        make_phantom(seed=0, shape=(60, 60, 60), spacing_mm=2.0)
    # the minimum it names is enough
    numbers = str(err.value).split("minimum field of view is ")[1].split(" mm")[0]
    fov = np.array([float(v) for v in numbers.split(" x ")])
    shape = tuple(int(n) for n in np.ceil(fov / 2.0))
    assert make_phantom(seed=0, shape=shape, spacing_mm=2.0).organ.any()


def test_a_phantom_larger_than_memory_is_refused_before_allocating(capsys):
    """0.05 mm voxels: 6400 x 6400 x 4800, hundreds of GiB. Refused in one line, at once."""
    from tumorsynth.cli import main

    with pytest.raises(SystemExit) as info:
        main(["phantom", "--spacing", "0.05", "--out", "never-written"])
    assert info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: phantom: 0.05 x 0.05 x 0.05 mm")
    assert "6400 x 6400 x 4800 volume" in err and "GiB of memory" in err
    need = float(err.split("needs about ")[1].split(" GiB")[0].replace(",", ""))
    assert need >= 6400 * 6400 * 4800 * 4 / 2**30  # at least its float32 image
    with pytest.raises(InputError, match="use larger voxels"):
        make_phantom(seed=0, shape=(4000, 4000, 4000), spacing_mm=0.1)
