"""Reading a CT and its organ mask into a :class:`~tumorsynth.engine.case.Case`, geometry kept.

The mask may be a 0/1 mask or a multi-label map (``organ_label``: a value, several, or an organ by
name, :func:`tumorsynth.engine.label_maps.select_organ`); a mask on another grid than its
CT (another orientation, resolution or crop of the same region) is resampled onto the CT grid by
world position, nearest neighbour, with a note; a mask covering another region is an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from tumorsynth.engine.case import Case, as_case
from tumorsynth.engine.label_maps import LABEL_MAP_MAX, LABEL_MAPS, OrganSelection
from tumorsynth.errors import InputError
from tumorsynth.io.volume import Volume, geometry_of, orientation_code, read_image, to_array

__all__ = [
    "LoadedCase",
    "OrganLabel",
    "as_selection",
    "grid_text",
    "nearest_onto",
    "read_case",
    "read_pair",
    "same_grid",
]


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
        nothing); NaN or infinite voxels (outside the organ) make it false, with a note.
    """

    case: Case
    notes: tuple[str, ...]
    integral: bool


def _world_box(image: sitk.Image) -> np.ndarray:
    """(2, 3) min and max LPS corners (mm) of the region the voxels cover."""
    size = np.asarray(image.GetSize(), float)
    corners = np.array([[c0, c1, c2] for c0 in (0, 1) for c1 in (0, 1) for c2 in (0, 1)])
    index = corners * size - 0.5  # voxel edges, in index units
    d = np.asarray(image.GetDirection()).reshape(3, 3)
    world = np.asarray(image.GetOrigin()) + (index * np.asarray(image.GetSpacing())) @ d.T
    return np.stack([world.min(0), world.max(0)])


def same_grid(a: sitk.Image, b: sitk.Image) -> bool:
    spacing = min(min(a.GetSpacing()), min(b.GetSpacing()))
    return (
        a.GetSize() == b.GetSize()
        and np.allclose(a.GetSpacing(), b.GetSpacing(), rtol=1e-4, atol=0)
        and np.allclose(a.GetDirection(), b.GetDirection(), rtol=0, atol=1e-4)
        and np.allclose(a.GetOrigin(), b.GetOrigin(), rtol=0, atol=1e-2 * spacing)
    )


def grid_text(image: sitk.Image) -> str:
    size = " x ".join(str(n) for n in image.GetSize())
    spacing = " x ".join(f"{s:.4g}" for s in image.GetSpacing())
    return f"{size} at {spacing} mm, {orientation_code(image.GetDirection())}"


OrganLabel = int | tuple[int, ...] | OrganSelection | None
"""What selects the organ in a mask: nothing (a 0/1 mask), a value, several, or a selection."""


def as_selection(organ_label: OrganLabel) -> OrganSelection | None:
    """``organ_label`` as an :class:`~tumorsynth.engine.label_maps.OrganSelection` (None stays
    None)."""
    if organ_label is None or isinstance(organ_label, OrganSelection):
        return organ_label
    values = (organ_label,) if isinstance(organ_label, (int, np.integer)) else organ_label
    return OrganSelection(tuple(int(v) for v in values))


def _shown(values: np.ndarray, n: int) -> str:
    return ", ".join(f"{v:g}" for v in values[:n]) + (", ..." if len(values) > n else "")


def _check_map(array: np.ndarray, selection: OrganSelection, path: Path) -> None:
    """Refuse a label map that holds values its named map does not (another map: the organ's
    value there names another structure)."""
    if selection.label_map is None or array.size == 0:
        return
    top, largest = LABEL_MAP_MAX[selection.label_map], float(array.max())
    if largest > top:
        raise InputError(
            f"{path}: holds labels up to {largest:g}, so it is not a "
            f"{LABEL_MAPS[selection.label_map]} label map (labels 1 to {top}); choose its "
            f"--label-map ({', '.join(LABEL_MAPS)}) or give the organ's value with --organ-label"
        )


def _binary_organ(mask: sitk.Image, organ_label: OrganLabel, path: Path) -> sitk.Image:
    """The organ as a 0/1 uint8 image with the mask's geometry."""
    array = sitk.GetArrayViewFromImage(mask)
    selection = as_selection(organ_label)
    if selection is None:
        if np.issubdtype(array.dtype, np.integer):
            binary = array.size == 0 or (array.min() >= 0 and array.max() <= 1)
        else:
            binary = bool(((array == 0) | (array == 1)).all())
        if not binary:
            raise InputError(
                f"{path}: not a 0/1 mask (values {_shown(np.unique(array), 8)}); name the organ "
                "(--organ liver|pancreas|kidney, with --label-map) or give its value "
                "(--organ-label, e.g. 5 for the liver in TotalSegmentator, 6 in BTCV)"
            )
        organ = (array > 0).astype(np.uint8)
    else:
        _check_map(array, selection, path)
        organ = np.isin(array, selection.values).astype(np.uint8)
        if not organ.any():
            hint = (
                "; is it another label map? (--label-map)"
                if selection.label_map is not None
                else ""
            )
            what = (
                f"no voxel has {selection.describe()}"
                if selection.organ is None
                else f"the label map has no {selection.describe()}"
            )
            raise InputError(
                f"{path}: {what} (labels present: {_shown(np.unique(array), 12)}){hint}"
            )
    out = sitk.GetImageFromArray(organ)
    out.CopyInformation(mask)
    return out


def nearest_onto(moving: sitk.Image, fixed: sitk.Image) -> sitk.Image | None:
    """``moving`` (a mask or label map) resampled onto ``fixed``'s grid by world position, nearest
    neighbour; None when it covers another physical region (its box differs by more than half a
    voxel)."""
    tol = 0.5 * min(min(fixed.GetSpacing()), min(moving.GetSpacing()))
    if np.abs(_world_box(fixed) - _world_box(moving)).max() > tol:
        return None
    return sitk.Resample(moving, fixed, sitk.Transform(), sitk.sitkNearestNeighbor, 0)


def _align(organ: sitk.Image, ct: sitk.Image, mask_path: Path, ct_path: Path) -> tuple:
    """The organ on the CT grid: as is when the grids agree, else resampled by world position."""
    if same_grid(organ, ct):
        return to_array(organ), None
    resampled = nearest_onto(organ, ct)
    if resampled is None:
        box_ct, box_mask = _world_box(ct), _world_box(organ)

        def text(box: np.ndarray) -> str:
            return " x ".join(f"[{lo:.1f}, {hi:.1f}]" for lo, hi in box.T)

        raise InputError(
            f"{mask_path}: covers a different physical region than its CT {ct_path} "
            f"(mask {text(box_mask)} mm, CT {text(box_ct)} mm, LPS); is it the right mask?"
        )
    note = (
        f"{mask_path}: on another grid than its CT ({grid_text(organ)} vs {grid_text(ct)}); "
        "resampled onto the CT grid by physical coordinates (nearest neighbour)"
    )
    return to_array(resampled), note


def read_case(
    image_path: str | Path, mask_path: str | Path, organ_label: OrganLabel = None
) -> LoadedCase:
    """Read a CT and its organ mask as a :class:`~tumorsynth.engine.case.Case` on the CT's grid.

    Parameters
    ----------
    image_path : str or Path
        CT file or DICOM series folder, in HU.
    mask_path : str or Path
        Organ mask: a 0/1 mask, or a label map with ``organ_label``. A mask on another grid (another
        orientation, resolution or crop of the same region) is resampled onto the CT grid by world
        position, nearest neighbour, with a note.
    organ_label : int, tuple of int or OrganSelection, optional
        The organ's value(s) in a multi-label map (5: liver in TotalSegmentator, 6 in BTCV), or an
        organ by name (:func:`~tumorsynth.engine.label_maps.select_organ`).

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
    array = to_array(ct)
    notes = [note] if note else []
    if np.issubdtype(array.dtype, np.integer):
        integral = bool(array.min() >= -32768 and array.max() <= 32767) if array.size else True
    else:
        finite = array[np.isfinite(array)]
        integral = bool(
            finite.size == array.size
            and (finite.size == 0 or (np.abs(finite).max() <= 32767 and (finite % 1 == 0).all()))
        )
        if finite.size < array.size:  # inside the organ they are an error (as_case)
            notes.append(
                f"{image_path}: {array.size - finite.size} NaN or infinite voxels outside the "
                "organ, kept as they are (int16 cannot hold them: --dtype auto writes float32)"
            )
    checked = as_case(
        array.astype(np.float32, copy=False), organ, ct.GetSpacing(), source=str(image_path)
    )
    spacing, origin, direction = geometry_of(ct)
    case = Case(
        checked.image, checked.organ, spacing, source=str(image_path), origin_mm=origin,
        direction=direction,
    )  # fmt: skip
    case.__dict__["organ_stats"] = checked.organ_stats  # already measured by as_case
    return LoadedCase(case, tuple(notes), integral)


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
    return Volume(to_array(image), *geometry_of(image)), label, note
