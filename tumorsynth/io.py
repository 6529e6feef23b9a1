"""Reading and writing volumes through SimpleITK, with their geometry, atomically.

Reads NIfTI (``.nii``, ``.nii.gz``), NRRD, MetaImage (``.mha``, ``.mhd``) and DICOM series folders
(including compressed transfer syntaxes that GDCM decodes, such as JPEG 2000). Arrays are (X, Y, Z)
here and (Z, Y, X) in SimpleITK: the transpose happens in this module and nowhere else. Geometry is
SimpleITK's: origin and spacing in mm, a row-major 3 x 3 direction matrix in the LPS world.

Every file is written under a temporary name in its destination folder and renamed when complete,
so a crash never leaves a half-written file under the final name.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import socket
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from tumorsynth.case import Case, as_case
from tumorsynth.errors import InputError

__all__ = [
    "IMAGE_SUFFIXES",
    "RAS_DIRECTION",
    "LoadedCase",
    "Volume",
    "atomic_path",
    "centred_origin",
    "image_suffix",
    "orientation_code",
    "read_case",
    "read_image",
    "read_pair",
    "read_volume",
    "remove_stale_temporaries",
    "source_sha256",
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


@dataclass(frozen=True, eq=False)
class LoadedCase:
    """A host case read from files, with what a manifest records about it.

    Attributes
    ----------
    case : Case
        float32 image (HU), 0/1 organ mask on the image grid, spacing, origin and direction.
    notes : tuple of str
        What was done to the inputs (e.g. the mask resampled onto the CT grid).
    integral : bool
        Whether every image voxel is a whole number in the int16 range (so int16 output loses
        nothing).
    """

    case: Case
    notes: tuple[str, ...]
    integral: bool


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


def _nifti_data_bytes(header: bytes) -> int | None:
    """vox_offset + voxel bytes promised by a NIfTI-1 or NIfTI-2 header, or None if not NIfTI."""
    for endian in "<>":
        size = struct.unpack(endian + "i", header[:4])[0] if len(header) >= 4 else 0
        if size == 348 and len(header) >= 348:
            dim = struct.unpack(endian + "8h", header[40:56])
            bitpix = struct.unpack(endian + "h", header[72:74])[0]
            offset = max(int(struct.unpack(endian + "f", header[108:112])[0]), 352)
            break
        if size == 540 and len(header) >= 540:
            dim = struct.unpack(endian + "8q", header[16:80])
            bitpix = struct.unpack(endian + "h", header[14:16])[0]
            offset = max(struct.unpack(endian + "q", header[168:176])[0], 544)
            break
    else:
        return None
    ndim = min(max(int(dim[0]), 0), 7)
    n_voxels = int(np.prod([max(int(n), 1) for n in dim[1 : ndim + 1]], dtype=np.int64))
    return int(offset) + n_voxels * int(bitpix) // 8


def _check_nifti_complete(path: Path) -> None:
    """SimpleITK reads a truncated NIfTI without complaint (the missing voxels come back as 0):
    compare the data the header promises with what the file holds."""
    suffix = image_suffix(path)
    if suffix not in (".nii", ".nii.gz"):
        return
    gz = suffix == ".nii.gz"
    try:
        with gzip.open(path, "rb") if gz else open(path, "rb") as f:
            need = _nifti_data_bytes(f.read(544))
    except (OSError, EOFError, zlib.error):
        return  # SimpleITK's own error names the problem better
    if need is None:
        return
    if not gz:
        have = path.stat().st_size
    else:
        with open(path, "rb") as f:
            f.seek(-4, os.SEEK_END)
            if int.from_bytes(f.read(4), "little") == need % 2**32:
                return  # the gzip trailer records the full length (one gzip member)
        have = 0
        try:
            with gzip.open(path, "rb") as f:
                while chunk := f.read(1 << 22):
                    have += len(chunk)
        except (OSError, EOFError, zlib.error):
            raise InputError(
                f"{path}: truncated or corrupt (its gzip stream ends early; the NIfTI header "
                f"promises {need} bytes)"
            ) from None
    if have < need:
        raise InputError(
            f"{path}: truncated NIfTI (the header promises {need} bytes, the file holds {have})"
        )


def _dicom_files(folder: Path) -> list[str]:
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
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(_dicom_files(path))
            image = reader.Execute()
        else:
            _check_nifti_complete(path)
            image = sitk.ReadImage(str(path))
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


def _to_array(image: sitk.Image) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(sitk.GetArrayViewFromImage(image), (2, 1, 0)))


def _geometry(image: sitk.Image) -> tuple[tuple, tuple, tuple]:
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
    return Volume(_to_array(image), *_geometry(image))


def _world_box(image: sitk.Image) -> np.ndarray:
    """(2, 3) min and max LPS corners (mm) of the region the voxels cover."""
    size = np.asarray(image.GetSize(), float)
    corners = np.array([[c0, c1, c2] for c0 in (0, 1) for c1 in (0, 1) for c2 in (0, 1)])
    index = corners * size - 0.5  # voxel edges, in index units
    d = np.asarray(image.GetDirection()).reshape(3, 3)
    world = np.asarray(image.GetOrigin()) + (index * np.asarray(image.GetSpacing())) @ d.T
    return np.stack([world.min(0), world.max(0)])


def _same_grid(a: sitk.Image, b: sitk.Image) -> bool:
    spacing = min(min(a.GetSpacing()), min(b.GetSpacing()))
    return (
        a.GetSize() == b.GetSize()
        and np.allclose(a.GetSpacing(), b.GetSpacing(), rtol=1e-4, atol=0)
        and np.allclose(a.GetDirection(), b.GetDirection(), rtol=0, atol=1e-4)
        and np.allclose(a.GetOrigin(), b.GetOrigin(), rtol=0, atol=1e-2 * spacing)
    )


def _grid_text(image: sitk.Image) -> str:
    size = " x ".join(str(n) for n in image.GetSize())
    spacing = " x ".join(f"{s:.4g}" for s in image.GetSpacing())
    return f"{size} at {spacing} mm, {orientation_code(image.GetDirection())}"


def _binary_organ(mask: sitk.Image, organ_label: int | None, path: Path) -> sitk.Image:
    """The organ as a 0/1 uint8 image with the mask's geometry."""
    array = sitk.GetArrayViewFromImage(mask)
    if organ_label is None:
        if np.issubdtype(array.dtype, np.integer):
            binary = array.size == 0 or (array.min() >= 0 and array.max() <= 1)
        else:
            binary = bool(((array == 0) | (array == 1)).all())
        if not binary:
            values = np.unique(array)
            shown = ", ".join(f"{v:g}" for v in values[:8]) + (", ..." if len(values) > 8 else "")
            raise InputError(
                f"{path}: not a 0/1 mask (values {shown}); pass the organ's label "
                "(--organ-label, e.g. 5 for TotalSegmentator, 6 for BTCV)"
            )
        organ = (array > 0).astype(np.uint8)
    else:
        organ = (array == organ_label).astype(np.uint8)
        if not organ.any():
            values = np.unique(array)
            shown = ", ".join(f"{v:g}" for v in values[:12]) + (", ..." if len(values) > 12 else "")
            raise InputError(f"{path}: no voxel has label {organ_label} (labels present: {shown})")
    out = sitk.GetImageFromArray(organ)
    out.CopyInformation(mask)
    return out


def _align(organ: sitk.Image, ct: sitk.Image, mask_path: Path, ct_path: Path) -> tuple:
    """The organ on the CT grid: as is when the grids agree, else resampled by world position."""
    if _same_grid(organ, ct):
        return _to_array(organ), None
    box_ct, box_mask = _world_box(ct), _world_box(organ)
    tol = 0.5 * min(min(ct.GetSpacing()), min(organ.GetSpacing()))
    if np.abs(box_ct - box_mask).max() > tol:

        def text(box: np.ndarray) -> str:
            return " x ".join(f"[{lo:.1f}, {hi:.1f}]" for lo, hi in box.T)

        raise InputError(
            f"{mask_path}: covers a different physical region than its CT {ct_path} "
            f"(mask {text(box_mask)} mm, CT {text(box_ct)} mm, LPS); is it the right mask?"
        )
    resampled = sitk.Resample(organ, ct, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    note = (
        f"{mask_path}: on another grid than its CT ({_grid_text(organ)} vs {_grid_text(ct)}); "
        "resampled onto the CT grid by physical coordinates (nearest neighbour)"
    )
    return _to_array(resampled), note


def read_case(
    image_path: str | Path, mask_path: str | Path, organ_label: int | None = None
) -> LoadedCase:
    """Read a CT and its organ mask as a :class:`~tumorsynth.case.Case` on the CT's grid.

    Parameters
    ----------
    image_path : str or Path
        CT file or DICOM series folder, in HU.
    mask_path : str or Path
        Organ mask: a 0/1 mask, or a label map with ``organ_label``. A mask on another grid (another
        orientation, resolution or crop of the same region) is resampled onto the CT grid by world
        position, nearest neighbour, with a note.
    organ_label : int, optional
        The organ's value in a multi-label map (5: liver in TotalSegmentator, 6 in BTCV).

    Returns
    -------
    LoadedCase

    Raises
    ------
    InputError
        Unreadable files, a mask covering another physical region, a label that is absent, an empty
        organ or NaN inside it; the message names the file.
    """
    image_path, mask_path = Path(image_path), Path(mask_path)
    ct = read_image(image_path)
    mask = read_image(mask_path)
    organ, note = _align(_binary_organ(mask, organ_label, mask_path), ct, mask_path, image_path)
    array = _to_array(ct)
    if np.issubdtype(array.dtype, np.integer):
        integral = bool(array.min() >= -32768 and array.max() <= 32767) if array.size else True
    else:
        finite = array[np.isfinite(array)]
        integral = bool(
            finite.size == array.size
            and (finite.size == 0 or (np.abs(finite).max() <= 32767 and (finite % 1 == 0).all()))
        )
    checked = as_case(
        array.astype(np.float32, copy=False), organ, ct.GetSpacing(), source=str(image_path)
    )
    spacing, origin, direction = _geometry(ct)
    case = Case(
        checked.image, checked.organ, spacing, source=str(image_path), origin_mm=origin,
        direction=direction,
    )  # fmt: skip
    case.__dict__["organ_stats"] = checked.organ_stats  # already measured by as_case
    return LoadedCase(case, (note,) if note else (), integral)


def read_pair(
    image_path: str | Path, label_path: str | Path
) -> tuple[Volume, np.ndarray, str | None]:
    """A CT and a label map (any values) on the CT's grid, resampled by world position (nearest
    neighbour) when the grids differ.

    Returns
    -------
    image : Volume
    label : (X, Y, Z) array
        On the image's grid.
    note : str or None
        Set when the label was resampled.
    """
    image = read_image(image_path)
    label, note = _align(read_image(label_path), image, Path(label_path), Path(image_path))
    return Volume(_to_array(image), *_geometry(image)), label, note


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
    listing = "".join(f"{digest(Path(f))}  {Path(f).name}\n" for f in _dicom_files(path))
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


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    tmp = atomic_path(path)
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


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

    Notes
    -----
    NIfTI stores the geometry in float32: origins and spacings read from DICOM come back to within
    about 1e-6 mm. NRRD and MHA keep the doubles exactly.
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
    except RuntimeError as err:
        raise InputError(f"{path}: cannot write image ({_itk_reason(err, tmp)})") from None
    finally:
        tmp.unlink(missing_ok=True)
    return path
