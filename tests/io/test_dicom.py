"""DICOM series: a missing, duplicate or truncated slice is refused, naming the gap or the file,
instead of being read as evenly spaced."""

from __future__ import annotations

import contextlib
import locale
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from tumorsynth import InputError
from tumorsynth.io.volume import read_volume

N_SLICES, STEP_MM = 20, 2.0


@contextlib.contextmanager
def _locale_kept():
    """GDCM's DICOM writer sets the C locale for the whole process (Python's text files would
    then default to ASCII in later tests): put it back."""
    saved = locale.setlocale(locale.LC_ALL)
    try:
        yield
    finally:
        locale.setlocale(locale.LC_ALL, saved)


def write_series(folder: Path, n: int = N_SLICES, step_mm: float = STEP_MM) -> np.ndarray:
    """A CT series of ``n`` axial slices ``step_mm`` apart, one file per slice (``s000.dcm`` at
    z = 0, ...); returns the (X, Y, Z) voxels."""
    with _locale_kept():
        return _write_series(folder, n, step_mm)


def _write_series(folder: Path, n: int, step_mm: float) -> np.ndarray:
    folder.mkdir(parents=True)
    volume = (np.arange(12 * 16 * n).reshape(12, 16, n) % 300 - 100).astype(np.int16)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(n):
        image = sitk.GetImageFromArray(np.ascontiguousarray(volume[:, :, k].T))
        image.SetSpacing((0.8, 0.8))
        tags = {
            "0008|0060": "CT", "0008|0008": "ORIGINAL\\PRIMARY\\AXIAL",
            "0020|000d": "1.2.826.0.1.3680043.2.1125.1.1", "0020|000e": "1.2.826.0.1.3680043.2.1125.1.2",
            "0020|0013": str(k + 1), "0020|0032": f"0\\0\\{k * step_mm:g}",
            "0020|0037": "1\\0\\0\\0\\1\\0", "0018|0050": f"{step_mm:g}", "0028|0030": "0.8\\0.8",
        }  # fmt: skip
        for tag, value in tags.items():
            image.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"s{k:03d}.dcm"))
        writer.Execute(image)
    return volume


def test_a_whole_series_reads_with_its_spacing(tmp_path):
    volume = write_series(tmp_path / "ct")
    read = read_volume(tmp_path / "ct")
    np.testing.assert_array_equal(read.array, volume)
    assert read.spacing_mm == pytest.approx((0.8, 0.8, STEP_MM))


def test_a_missing_slice_is_refused_naming_the_gap(tmp_path):
    write_series(tmp_path / "ct")
    (tmp_path / "ct" / "s007.dcm").unlink()
    with pytest.raises(InputError) as info:
        read_volume(tmp_path / "ct")
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'ct'}: slices s006.dcm and s008.dcm are 4 mm apart")
    assert "1 slice missing" in message and len(message.splitlines()) == 1


@pytest.mark.parametrize("which", ["s012.dcm", "s000.dcm", "s019.dcm"])
def test_a_truncated_slice_is_refused_naming_the_file(tmp_path, which):
    """Also the first and the last slice, whose loss leaves no gap."""
    write_series(tmp_path / "ct")
    path = tmp_path / "ct" / which
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(InputError) as info:
        read_volume(tmp_path / "ct")
    assert str(info.value).startswith(f"{path}: a DICOM file of the series")
    assert "cannot be read (truncated or corrupt)" in str(info.value)


def test_a_duplicate_and_an_uneven_slice_are_refused(tmp_path):
    write_series(tmp_path / "ct")
    shutil.copy(tmp_path / "ct" / "s005.dcm", tmp_path / "ct" / "s005b.dcm")
    with pytest.raises(InputError, match=r"s005b?\.dcm and s005b?\.dcm are at the same position"):
        read_volume(tmp_path / "ct")
    write_series(tmp_path / "uneven", n=6, step_mm=2.0)
    moved = tmp_path / "uneven" / "s003.dcm"
    image = sitk.ReadImage(str(moved))
    image.SetMetaData("0020|0032", "0\\0\\6.7")  # 2.0, 2.0, 2.7, 1.3, 2.0 mm steps
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    writer.SetFileName(str(moved))
    with _locale_kept():
        writer.Execute(image)
    with pytest.raises(InputError, match="unevenly spaced"):
        read_volume(tmp_path / "uneven")
