"""Reading and writing volumes: formats, geometry, DICOM, masks on other grids, bad files."""

from __future__ import annotations

import gzip
import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk
from toy import data_file

from tumorsynth import InputError
from tumorsynth.io.case import read_case
from tumorsynth.io.volume import (
    atomic_path,
    read_volume,
    remove_stale_temporaries,
    source_sha256,
    write_volume,
)

OBLIQUE = (0.8, -0.6, 0.0, 0.6, 0.8, 0.0, 0.0, 0.0, 1.0)  # a 37 degree rotation about z


def _volume(shape=(24, 20, 12), seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(-1000, 1000, size=shape).astype(np.int16)


def _organ(shape=(24, 20, 12)):
    organ = np.zeros(shape, np.uint8)
    organ[6:18, 5:15, 3:9] = 1
    return organ


@pytest.mark.parametrize("ext", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_round_trip_keeps_array_axes_and_geometry(tmp_path, ext):
    array = _volume()
    origin = (-12.5, 40.25, -801.0)
    path = write_volume(tmp_path / f"v{ext}", array, (0.75, 0.8, 2.5), origin, OBLIQUE)
    back = read_volume(path)
    np.testing.assert_array_equal(back.array, array)
    assert back.array.dtype == np.int16
    # (X, Y, Z) here is SimpleITK's index (i, j, k)
    image = sitk.ReadImage(str(path))
    assert image.GetPixel(3, 2, 1) == array[3, 2, 1] and image.GetSize() == array.shape
    tol = 1e-5 if ext.startswith(".nii") else 0.0  # NIfTI stores float32
    np.testing.assert_allclose(back.spacing_mm, (0.75, 0.8, 2.5), rtol=tol)
    np.testing.assert_allclose(back.origin_mm, origin, atol=tol * 1000)
    np.testing.assert_allclose(back.direction, OBLIQUE, atol=max(tol, 1e-12))
    assert sorted(os.listdir(tmp_path)) == [f"v{ext}"]  # no temporary left


def test_dicom_series_jpeg2000_equals_its_conversion():
    series = read_volume(data_file("totalsegmentator_example/example_ct_dicom"))
    converted = read_volume(data_file("totalsegmentator_example/example_ct_dicom.nii.gz"))
    assert series.array.shape == (512, 512, 20) and series.array.dtype == np.int16
    np.testing.assert_array_equal(series.array, converted.array)
    assert series.spacing_mm == converted.spacing_mm and series.origin_mm == converted.origin_mm
    assert series.direction == converted.direction
    assert -1100 < series.array.min() < series.array.max() < 3100


def test_mask_stored_las_is_resampled_onto_the_lps_ct():
    ct = data_file("totalsegmentator_example/example_ct_dicom")
    seg = data_file("totalsegmentator_example/example_seg_dicom.nii.gz")
    reference = read_volume(
        data_file("totalsegmentator_example/example_ct_dicom_liver_mask.nii.gz")
    )
    loaded = read_case(ct, seg, organ_label=5)
    np.testing.assert_array_equal(loaded.case.organ, reference.array)
    assert loaded.case.organ.sum() == 366_708
    assert len(loaded.notes) == 1 and "LAS" in loaded.notes[0] and "nearest" in loaded.notes[0]
    assert loaded.case.origin_mm == reference.origin_mm and loaded.integral
    assert loaded.case.image.dtype == np.float32


def test_dicom_with_nrrd_labelmap_on_the_same_grid():
    folder = data_file("dcmqi_ct_3slice_liver/ct")
    loaded = read_case(folder, data_file("dcmqi_ct_3slice_liver/liver_seg.nrrd"))
    assert loaded.case.shape == (512, 512, 3) and loaded.notes == ()
    assert loaded.case.organ.sum() == 107_098
    assert loaded.case.spacing_mm[0] == pytest.approx(0.810547)


def test_mask_at_another_resolution_is_resampled(tmp_path):
    image = _volume((24, 20, 12))
    ct = write_volume(tmp_path / "ct.nii.gz", image, (1.0, 1.0, 2.0), (0.0, 0.0, 0.0), OBLIQUE)
    fine = np.repeat(_organ((24, 20, 12)), 2, axis=2)  # same region at 1 mm slices
    # same physical region: the first slice centre moves by -0.5 mm
    origin = tuple(np.asarray(OBLIQUE).reshape(3, 3) @ (0.0, 0.0, -0.5))
    mask = write_volume(tmp_path / "m.nrrd", fine, (1.0, 1.0, 1.0), origin, OBLIQUE)
    loaded = read_case(ct, mask)
    np.testing.assert_array_equal(loaded.case.organ, _organ())
    assert "resampled" in loaded.notes[0]


def _bad(tmp_path, kind):
    """A bad (image, mask, organ_label) and the words its error must hold."""
    image, organ = _volume(), _organ()
    ct = write_volume(tmp_path / "ct.nii.gz", image, (1.0, 1.0, 2.0))
    mask = write_volume(tmp_path / "mask.nii.gz", organ, (1.0, 1.0, 2.0))
    if kind == "missing":
        return tmp_path / "nope.nii.gz", mask, None, "no such file"
    if kind == "garbage":
        (tmp_path / "g.nii.gz").write_bytes(os.urandom(2000))
        return tmp_path / "g.nii.gz", mask, None, "cannot read image"
    if kind == "truncated-gz":
        data = ct.read_bytes()
        (tmp_path / "t.nii.gz").write_bytes(data[: len(data) // 2])
        return tmp_path / "t.nii.gz", mask, None, "truncated"
    if kind == "truncated-nii":
        raw = write_volume(tmp_path / "raw.nii", image, (1.0, 1.0, 2.0)).read_bytes()
        (tmp_path / "t.nii").write_bytes(raw[: len(raw) - 100])
        return tmp_path / "t.nii", mask, None, "truncated NIfTI"
    if kind == "2-D":
        flat = sitk.GetImageFromArray(image[:, :, 0].T.copy())
        sitk.WriteImage(flat, str(tmp_path / "flat.nii.gz"))
        return tmp_path / "flat.nii.gz", mask, None, "2-D image"
    if kind == "extent":
        short = write_volume(tmp_path / "short.nii.gz", organ[:, :, :10], (1.0, 1.0, 2.0))
        return ct, short, None, "different physical region"
    if kind == "label":
        return ct, mask, 5, "no voxel has label 5 (labels present: 0, 1)"
    if kind == "multilabel":
        labels = write_volume(tmp_path / "labels.nii.gz", organ * 5 + (organ == 0), (1.0, 1.0, 2.0))
        return ct, labels, None, "not a 0/1 mask"
    if kind == "empty-folder":
        (tmp_path / "series").mkdir()
        (tmp_path / "series" / "notes.txt").write_text("hi")
        return tmp_path / "series", mask, None, "no DICOM series"
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    ["missing", "garbage", "truncated-gz", "truncated-nii", "2-D", "extent", "label",
     "multilabel", "empty-folder"],
)  # fmt: skip
def test_bad_inputs_name_the_file_and_the_problem(tmp_path, kind):
    image, mask, label, words = _bad(tmp_path, kind)
    with pytest.raises(InputError) as info:
        read_case(image, mask, label)
    message = str(info.value)
    assert words in message and len(message.splitlines()) == 1
    culprit = mask if kind in ("extent", "label", "multilabel") else image
    assert message.startswith(f"{culprit}: ")


def test_sha256_of_files_and_dicom_series(tmp_path):
    ct = data_file("totalsegmentator_example/example_ct.nii.gz")
    # the value published in ../shared/data/README.md
    assert source_sha256(ct) == "dbd3ae6d614d1d7ef3a46925c30c70038ed52da6b37fdd6afdc7b9b71387e3e1"
    folder = data_file("dcmqi_ct_3slice_liver/ct")
    listing = "".join(
        f"{hashlib.sha256((folder / n).read_bytes()).hexdigest()}  {n}\n"
        for n in ("03.dcm", "02.dcm", "01.dcm")  # series order: by slice position
    )
    assert source_sha256(folder) == hashlib.sha256(listing.encode()).hexdigest()


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    pid = int(dead.stdout)
    mine = atomic_path(tmp_path / "case_0000.nii.gz")
    theirs = mine.with_name(mine.name.replace(f"-{os.getpid()}.", f"-{pid}."))
    other_host = tmp_path / f".x.tmp-otherhost-{pid}.nii.gz"
    for f in (mine, theirs, other_host, tmp_path / "keep.nii.gz"):
        f.write_bytes(b"")
    assert mine.name.endswith(".nii.gz") and mine.name.startswith(".case_0000.tmp-")
    assert remove_stale_temporaries(tmp_path) == [theirs]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [mine.name, other_host.name, "keep.nii.gz"]
    )


def test_nifti_truncation_check_accepts_multi_member_gzip(tmp_path):
    ct = write_volume(tmp_path / "ct.nii.gz", _volume(), (1.0, 1.0, 2.0))
    raw = gzip.decompress(ct.read_bytes())
    half = len(raw) // 2
    (tmp_path / "two.nii.gz").write_bytes(gzip.compress(raw[:half]) + gzip.compress(raw[half:]))
    np.testing.assert_array_equal(read_volume(tmp_path / "two.nii.gz").array, _volume())


@pytest.mark.parametrize("ext", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_nan_and_infinity_survive_a_round_trip(tmp_path, ext):
    """SimpleITK's NIfTI reader sets them to 0 (nifti1_io): they are read back from the file."""
    array = _volume().astype(np.float32)
    array[0, 0, :3] = np.nan
    array[5, 1, 2], array[23, 19, 11] = np.inf, -np.inf
    back = read_volume(write_volume(tmp_path / f"v{ext}", array, (1.0, 1.0, 2.0))).array
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, array)  # NaN where NaN, the infinities with their sign
