"""Reading and writing volumes through SimpleITK, with their geometry, atomically.

Reads NIfTI (``.nii``, ``.nii.gz``), NRRD, MetaImage (``.mha``, ``.mhd``) and DICOM series folders
(including compressed transfer syntaxes that GDCM decodes, such as JPEG 2000). Arrays are (X, Y, Z)
here and (Z, Y, X) in SimpleITK: the transpose happens in this module and nowhere else. Geometry is
SimpleITK's: origin and spacing in mm, a row-major 3 x 3 direction matrix in the LPS world.

Every file is written under a temporary name in its destination folder, checked, and renamed when
complete, so a crash, a full disk or a file-size limit never leaves a half-written file under the
final name (:mod:`tumorsynth.io.verify`); DICOM series are checked for missing slices
(:mod:`tumorsynth.io.dicom`).
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from tumorsynth.errors import InputError
from tumorsynth.io.dicom import read_series, series_files
from tumorsynth.io.nifti import nonfinite_voxels
from tumorsynth.io.verify import (
    check_image_complete,
    check_nifti_complete,
    describe_os_error,
    write_failure_cause,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "RAS_DIRECTION",
    "Volume",
    "atomic_path",
    "centred_origin",
    "geometry_of",
    "image_suffix",
    "orientation_code",
    "read_image",
    "read_volume",
    "remove_stale_temporaries",
    "resample_to_spacing",
    "source_sha256",
    "to_array",
    "write_atomic",
    "write_text_atomic",
    "write_volume",
]

# array axes pointing to the patient's Right, Anterior and Superior, in SimpleITK's LPS world
RAS_DIRECTION = (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)
#: File endings read as single-file volumes (a folder is read as a DICOM series).
IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")


@dataclass(frozen=True)
class Volume:
    """An (X, Y, Z) array with its geometry (LPS world, as SimpleITK)."""

    array: np.ndarray
    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float]
    direction: tuple[float, ...]


def image_suffix(path: str | Path) -> str | None:
    """The recognised image ending of ``path`` (``".nii.gz"``, ``".nrrd"``, ...), or None."""
    name = Path(path).name.lower()
    return next((s for s in IMAGE_SUFFIXES if name.endswith(s)), None)


def orientation_code(direction: Sequence[float]) -> str:
    """Three letters naming where the array axes point in the LPS world, e.g. ``"LPS"``, ``"RAS"``."""
    d = np.asarray(direction, dtype=float).reshape(3, 3)
    letters = ("RL", "AP", "IS")
    code = ""
    for axis in range(3):
        world = int(np.argmax(np.abs(d[:, axis])))
        code += letters[world][int(d[world, axis] > 0)]
    return code


def _itk_reason(err: RuntimeError, path: Path) -> str:
    """The informative line of an ITK exception, without ITK's prefixes and the file name."""
    lines = []
    for line in str(err).strip().splitlines():
        line = re.sub(r"^(ITK ERROR: \w+\(0x[0-9a-f]+\): |sitk::ERROR: |\[\w+\] \w*:? ?)", "", line)
        line = line.replace(f'"{path}"', "").replace(str(path), "").strip(" :.")
        if not line or line.startswith("Exception thrown") or "trouble" in line:
            continue
        if line.startswith("Reason:"):  # a stale errno, printed whatever the real cause
            continue
        lines.append(line)
    reason = lines[-1] if lines else "unreadable"
    if "Unable to determine ImageIO reader" in reason:
        return "not an image file SimpleITK can read (unknown format or corrupt)"
    if "File cannot be read" in reason:
        return "file cannot be read (truncated or corrupt)"
    return reason


def _with_nonfinite(path: Path, image: sitk.Image) -> sitk.Image:
    """``image`` with the NaN and infinite voxels of its NIfTI file back where SimpleITK's reader
    put zeros (:func:`tumorsynth.io.nifti.nonfinite_voxels`)."""
    found = nonfinite_voxels(path)
    if found is None:
        return image
    array = sitk.GetArrayFromImage(image)
    if not np.issubdtype(array.dtype, np.floating):
        return image
    array.reshape(-1)[found[0]] = found[1]
    fixed = sitk.GetImageFromArray(array, isVector=image.GetNumberOfComponentsPerPixel() > 1)
    fixed.CopyInformation(image)
    return fixed


def read_image(path: str | Path) -> sitk.Image:
    """Read a 3-D scalar image: a file (NIfTI, NRRD, MHA/MHD) or a DICOM series folder.

    Raises
    ------
    InputError
        Missing path, unreadable or truncated file, not 3-D, or more than one value per voxel;
        the message names the file.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    warnings = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)  # errors are raised; ITK warnings are noise
    try:
        if path.is_dir():
            image = read_series(path)
        else:
            check_nifti_complete(path)
            image = _with_nonfinite(path, sitk.ReadImage(str(path)))
    except RuntimeError as err:
        raise InputError(f"{path}: cannot read image ({_itk_reason(err, path)})") from None
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(warnings)
    if image.GetDimension() != 3:
        size = " x ".join(str(n) for n in image.GetSize())
        raise InputError(f"{path}: a {image.GetDimension()}-D image ({size}); need a 3-D volume")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(
            f"{path}: {image.GetNumberOfComponentsPerPixel()} values per voxel; need a scalar "
            "(grey-level) volume"
        )
    return image


def to_array(image: sitk.Image) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(sitk.GetArrayViewFromImage(image), (2, 1, 0)))


def geometry_of(image: sitk.Image) -> tuple[tuple, tuple, tuple]:
    return (
        tuple(float(s) for s in image.GetSpacing()),
        tuple(float(o) for o in image.GetOrigin()),
        tuple(float(d) for d in image.GetDirection()),
    )


def read_volume(path: str | Path) -> Volume:
    """Read a 3-D image file or DICOM series folder as an (X, Y, Z) array with its geometry.

    Raises
    ------
    InputError
        If the path is missing, cannot be read, is truncated or is not a 3-D scalar volume.
    """
    image = read_image(path)
    return Volume(to_array(image), *geometry_of(image))


def source_sha256(path: str | Path) -> str:
    """sha256 of an input file; for a DICOM series folder, of its ``sha256sum``-style listing
    (one ``<sha256>  <file name>`` line per slice, in series order)."""
    path = Path(path)

    def digest(file: Path) -> str:
        h = hashlib.sha256()
        with open(file, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        return h.hexdigest()

    if not path.is_dir():
        return digest(path)
    listing = "".join(f"{digest(Path(f))}  {Path(f).name}\n" for f in series_files(path))
    return hashlib.sha256(listing.encode()).hexdigest()


def centred_origin(shape: Sequence[int], spacing_mm: Sequence[float], direction) -> tuple:
    """The origin that puts the centre of the volume at world (0, 0, 0)."""
    half = (np.asarray(shape) - 1) / 2.0 * np.asarray(spacing_mm)
    return tuple(float(v) for v in -(np.asarray(direction).reshape(3, 3) @ half))


_HOST = re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname()) or "host"
_TMP = re.compile(r"^\..*\.tmp-(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)(\.[A-Za-z0-9.]+)?$")


def atomic_path(path: Path) -> Path:
    """A temporary sibling of ``path`` with the same suffixes (so writers pick the same format),
    named after this host and process: ``.{stem}.tmp-{host}-{pid}{suffixes}``."""
    suffix = image_suffix(path) or "".join(path.suffixes[-1:])
    stem = path.name[: len(path.name) - len(suffix)] if suffix else path.name
    return path.with_name(f".{stem}.tmp-{_HOST}-{os.getpid()}{suffix}")


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporary files (see :func:`atomic_path`) that processes of this host left in
    ``folder`` when they were killed; those of live processes and of other hosts are kept.

    Returns
    -------
    list of Path
        The files removed.
    """
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        match = _TMP.match(entry.name)
        if not match or match["host"] != _HOST or not entry.is_file():
            continue
        pid = int(match["pid"])
        try:
            os.kill(pid, 0)
            continue  # alive
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def write_atomic(
    path: str | Path,
    write: Callable[[Path], object],
    verify: Callable[[Path], None] | None = None,
) -> Path:
    """Call ``write(tmp)`` on a temporary sibling of ``path`` (:func:`atomic_path`), check it with
    ``verify(tmp)`` (which raises when the file is incomplete), then rename it to ``path``:
    readers see the old file or the whole new one, never half of it, and a failed write leaves
    nothing behind.

    Raises
    ------
    InputError
        The write failed (a full disk, a file-size limit, a read-only file system, ...): one line
        naming ``path`` and the cause.
    """
    path = Path(path)
    tmp = atomic_path(path)
    try:
        write(tmp)
        if verify is not None:
            verify(tmp)
        os.replace(tmp, path)
    except OSError as err:
        raise InputError(f"{path}: cannot write ({describe_os_error(err)})") from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and a rename; a short write
    raises :class:`~tumorsynth.errors.InputError` (see :func:`write_atomic`)."""
    data = text.encode()

    def verify(tmp: Path) -> None:
        if tmp.stat().st_size != len(data):
            raise InputError(
                f"{path}: the write was cut short ({tmp.stat().st_size} of {len(data)} bytes); "
                f"likely cause: {write_failure_cause(tmp.parent)}"
            )

    return write_atomic(path, lambda tmp: tmp.write_bytes(data), verify)


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

    Raises
    ------
    InputError
        The write failed or was cut short (checked before the file is renamed into place; see
        :func:`tumorsynth.io.verify.check_image_complete`), or a format with a detached header
        (``.mhd``, ``.nhdr``).

    Notes
    -----
    NIfTI stores the geometry in float32: origins and spacings read from DICOM come back to within
    about 1e-6 mm. NRRD and MHA keep the doubles exactly.
    """
    path = Path(path)
    if path.name.lower().endswith((".mhd", ".nhdr")):
        raise InputError(
            f"{path}: a header with its voxels in another file cannot be written atomically; "
            "write .mha or .nrrd (one file) instead"
        )
    direction = tuple(RAS_DIRECTION if direction is None else direction)
    if origin_mm is None:
        origin_mm = centred_origin(array.shape, spacing_mm, direction)
    image = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(array, (2, 1, 0))))
    image.SetSpacing(tuple(float(s) for s in spacing_mm))
    image.SetOrigin(tuple(float(o) for o in origin_mm))
    image.SetDirection(direction)

    def write(tmp: Path) -> None:
        try:
            sitk.WriteImage(image, str(tmp), compress, 1)
        except RuntimeError as err:
            raise InputError(
                f"{path}: cannot write the image ({_itk_reason(err, tmp)}); likely cause: "
                f"{write_failure_cause(tmp.parent)}"
            ) from None

    return write_atomic(path, write, lambda tmp: check_image_complete(tmp, path))


def _place(image: sitk.Image, spacing_mm: Sequence[float]) -> sitk.Image:
    """Put voxel (0, 0, 0)'s edge, not its centre, at 0 mm: grids of different voxel sizes then
    cover the same region."""
    image.SetSpacing(tuple(float(s) for s in spacing_mm))
    image.SetOrigin(tuple(0.5 * float(s) for s in spacing_mm))
    return image


def _image(array: np.ndarray, spacing_mm: Sequence[float]) -> sitk.Image:
    return _place(
        sitk.GetImageFromArray(np.ascontiguousarray(array.transpose(2, 1, 0))), spacing_mm
    )


def _grid(shape: Sequence[int], spacing_mm: Sequence[float]) -> sitk.Image:
    return _place(sitk.Image([int(n) for n in shape], sitk.sitkUInt8), spacing_mm)


def resample_to_spacing(array: np.ndarray, spacing_mm, target_mm, shape=None) -> np.ndarray:
    """``array`` (linear; uint8 labels: nearest) resampled from ``spacing_mm`` to a grid of
    ``target_mm`` voxels over the same region (of ``shape``, by default as many voxels as fit).

    Voxel (0, 0, 0)'s corner stays at 0 mm on both grids, so grids of different voxel sizes cover
    the same region; origin and direction play no part (the arrays' own geometry is kept apart).
    """
    if shape is None:
        shape = [
            max(1, round(n * s / t))
            for n, s, t in zip(array.shape, spacing_mm, target_mm, strict=True)
        ]
    labels = array.dtype == np.uint8
    interp = sitk.sitkNearestNeighbor if labels else sitk.sitkLinear
    fill = 0.0 if labels else float(array.min())
    moved = sitk.Resample(
        _image(array, spacing_mm), _grid(shape, target_mm), sitk.Transform(), interp, fill
    )
    return to_array(moved)
