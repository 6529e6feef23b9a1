"""DICOM series folders: which files make the series, and whether its slices are all there.

GDCM (through SimpleITK) orders a series by slice position and leaves out files it cannot parse;
ITK then reads the slices as evenly spaced, whatever their positions. A series with a missing
slice (20 slices at 2 mm, one gone, become 19 at 2.11 mm) or a truncated one (left out of the
series) would be read with the wrong geometry. :func:`read_series` refuses both, naming the gap
or the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from tumorsynth.errors import InputError

__all__ = ["SPACING_TOLERANCE", "read_series", "series_files"]

#: Relative deviation of a slice step from the series' median step that counts as uneven.
SPACING_TOLERANCE = 0.01
_POSITION, _ORIENTATION = "0020|0032", "0020|0037"


def series_files(folder: Path) -> list[str]:
    """The slice files of the one DICOM series in ``folder``, in slice order (GDCM's).

    Raises
    ------
    InputError
        No series, or more than one, in the folder.
    """
    reader = sitk.ImageSeriesReader
    try:
        series = reader.GetGDCMSeriesIDs(str(folder))
    except RuntimeError:
        series = ()
    if not series:
        raise InputError(f"{folder}: a folder, but no DICOM series in it")
    if len(series) > 1:
        raise InputError(
            f"{folder}: holds {len(series)} DICOM series; put each series in its own folder"
        )
    return list(reader.GetGDCMSeriesFileNames(str(folder), series[0]))


def _readable(path: str, pixels: bool = False) -> bool:
    """Whether SimpleITK reads the file's header (and, with ``pixels``, its voxels)."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(path)
    try:
        reader.Execute() if pixels else reader.ReadImageInformation()
    except RuntimeError:
        return False
    return True


def _check_left_out(folder: Path, files: list[str]) -> None:
    """Refuse a DICOM file of the folder that GDCM left out of the series (truncated, corrupt)."""
    taken = {Path(f).name for f in files}
    for path in sorted(folder.iterdir()):
        if path.name in taken or path.name.startswith(".") or not path.is_file():
            continue
        if path.name.upper() == "DICOMDIR":
            continue
        with open(path, "rb") as f:
            magic = f.read(132)[128:]
        if magic == b"DICM" and not _readable(str(path)):
            raise InputError(
                f"{path}: a DICOM file of the series in {folder} that cannot be read (truncated or "
                "corrupt); replace it or remove it"
            )


def _numbers(text: str, n: int) -> np.ndarray | None:
    try:
        values = np.array([float(v) for v in text.strip().split("\\")])
    except ValueError:
        return None
    return values if values.shape == (n,) and np.isfinite(values).all() else None


def _check_steps(folder: Path, files: list[str], reader: sitk.ImageSeriesReader) -> None:
    """Refuse slices that are not evenly spaced along the slice normal (a missing slice, two at
    one position, a series of uneven steps)."""
    if len(files) < 3:
        return
    keys = [(reader.HasMetaDataKey(i, _POSITION), reader.HasMetaDataKey(i, _ORIENTATION))
            for i in range(len(files))]  # fmt: skip
    if not all(p and o for p, o in keys):
        return  # not a slice-per-file series with positions (e.g. one multi-frame file)
    cosines = _numbers(reader.GetMetaData(0, _ORIENTATION), 6)
    positions = [_numbers(reader.GetMetaData(i, _POSITION), 3) for i in range(len(files))]
    if cosines is None or any(p is None for p in positions):
        return
    normal = np.cross(cosines[:3], cosines[3:])
    depth_mm = np.array([float(p @ normal) for p in positions])
    steps_mm = np.abs(np.diff(depth_mm))
    typical = float(np.median(steps_mm))
    bad = np.flatnonzero(np.abs(steps_mm - typical) > max(SPACING_TOLERANCE * typical, 1e-3))
    if not bad.size:
        return
    i = int(bad[np.argmax(np.abs(steps_mm[bad] - typical))])
    a, b = Path(files[i]).name, Path(files[i + 1]).name
    step = float(steps_mm[i])
    ratio = step / typical if typical > 0 else 0.0
    if step < 1e-3:
        what = "are at the same position (a duplicate slice?)"
    elif round(ratio) >= 2 and abs(ratio - round(ratio)) < 0.1:
        missing = round(ratio) - 1
        what = f"are {step:.4g} mm apart: {missing} slice{'s' * (missing > 1)} missing between them"
    else:
        what = f"are {step:.4g} mm apart: the series is unevenly spaced"
    raise InputError(
        f"{folder}: slices {a} and {b} {what} (the others are {typical:.4g} mm apart); refusing "
        "to read it as evenly spaced"
    )


def read_series(folder: Path) -> sitk.Image:
    """Read the DICOM series in ``folder``, refusing missing, duplicate or unreadable slices.

    Raises
    ------
    InputError
        No series or several; a DICOM file of the folder that cannot be read; slices that are not
        evenly spaced (the message names the two slices around the gap).
    RuntimeError
        SimpleITK's, when the slices' pixel data cannot be decoded.
    """
    files = series_files(folder)
    _check_left_out(folder, files)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    reader.MetaDataDictionaryArrayUpdateOn()
    try:
        image = reader.Execute()
    except RuntimeError:
        broken = next((f for f in files if not _readable(f, pixels=True)), None)
        if broken is not None:
            raise InputError(
                f"{broken}: a slice of the DICOM series in {folder} that cannot be read (truncated "
                "or corrupt)"
            ) from None
        raise
    _check_steps(folder, files, reader)
    return image
