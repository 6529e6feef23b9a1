"""Writing volumes to disk through SimpleITK, atomically.

Arrays are (X, Y, Z) here and (Z, Y, X) in SimpleITK: the transpose happens in this module and
nowhere else. Every file is written under a temporary name in its destination folder and renamed
when complete, so a crash never leaves a half-written file under the final name.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from tumorsynth.errors import InputError

__all__ = [
    "RAS_DIRECTION",
    "Volume",
    "atomic_path",
    "centred_origin",
    "read_volume",
    "write_volume",
]

# array axes pointing to the patient's Right, Anterior and Superior, in SimpleITK's LPS world
RAS_DIRECTION = (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)


@dataclass(frozen=True)
class Volume:
    """An (X, Y, Z) array with its geometry (LPS world, as SimpleITK)."""

    array: np.ndarray
    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float]
    direction: tuple[float, ...]


def read_volume(path: str | Path) -> Volume:
    """Read a medical image file (NIfTI, NRRD, MHA, ...) as an (X, Y, Z) array with its geometry.

    Raises
    ------
    InputError
        If the file is missing or cannot be read, naming the file.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as err:
        reason = str(err).strip().splitlines()[-1] if str(err).strip() else "unreadable"
        raise InputError(f"{path}: cannot read image ({reason})") from None
    array = np.transpose(sitk.GetArrayFromImage(image), (2, 1, 0))
    return Volume(
        np.ascontiguousarray(array),
        tuple(float(s) for s in image.GetSpacing()),
        tuple(float(o) for o in image.GetOrigin()),
        tuple(float(d) for d in image.GetDirection()),
    )


def centred_origin(shape: Sequence[int], spacing_mm: Sequence[float], direction) -> tuple:
    """The origin that puts the centre of the volume at world (0, 0, 0)."""
    half = (np.asarray(shape) - 1) / 2.0 * np.asarray(spacing_mm)
    return tuple(float(v) for v in -(np.asarray(direction).reshape(3, 3) @ half))


def atomic_path(path: Path) -> Path:
    """A temporary sibling of ``path`` with the same suffixes (so writers pick the same format)."""
    suffixes = "".join(path.suffixes)
    stem = path.name[: len(path.name) - len(suffixes)] if suffixes else path.name
    return path.with_name(f".{stem}.tmp-{os.getpid()}{suffixes}")


def write_volume(
    path: str | Path,
    array: np.ndarray,
    spacing_mm: Sequence[float],
    origin_mm: Sequence[float] | None = None,
    direction: Sequence[float] | None = None,
    *,
    compress: bool = True,
) -> Path:
    """Write an (X, Y, Z) array as a medical image (format from the suffix: ``.nii.gz``, ``.nrrd``,
    ``.mha``, ...), atomically.

    Parameters
    ----------
    path : str or Path
        Destination file.
    array : (X, Y, Z) array
        Voxels; the dtype is written as is.
    spacing_mm : sequence of 3 floats
    origin_mm : sequence of 3 floats, optional
        LPS world position of voxel (0, 0, 0), mm; default: the volume centred on (0, 0, 0).
    direction : sequence of 9 floats, optional
        Row-major LPS direction matrix; default: RAS axes (:data:`RAS_DIRECTION`).
    compress : bool
        Compress (gzip for NIfTI), at the fastest level.

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    direction = tuple(RAS_DIRECTION if direction is None else direction)
    if origin_mm is None:
        origin_mm = centred_origin(array.shape, spacing_mm, direction)
    image = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(array, (2, 1, 0))))
    image.SetSpacing(tuple(float(s) for s in spacing_mm))
    image.SetOrigin(tuple(float(o) for o in origin_mm))
    image.SetDirection(direction)
    tmp = atomic_path(path)
    try:
        sitk.WriteImage(image, str(tmp), compress, 1)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
