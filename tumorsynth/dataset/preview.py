"""PNG previews of a CT with tumours: axial, coronal and sagittal slices through each tumour.

One row per tumour (largest first, at most ``max_tumours``), three panels per row: axial (patient's
right on the left, anterior up), coronal and sagittal (superior up), each through the tumour's
centre, in a soft-tissue window (W 400, L 40 HU), with the tumour outlined in red and the organ in
green. Panels share one scale in mm per pixel, so anisotropic voxels look their true shape (for a
thin slab, the coronal and sagittal panels are stacked beside the axial one); the view is cropped
to the organ plus a margin.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import ndimage

from tumorsynth.errors import InputError
from tumorsynth.io.case import read_pair
from tumorsynth.io.volume import write_atomic

__all__ = ["preview_files", "render_preview", "write_preview"]

TUMOUR_RGB = (255, 48, 48)
ORGAN_RGB = (64, 208, 64)
_GAP = 4


def _to_lps(array: np.ndarray, spacing: Sequence[float], direction: Sequence[float] | None):
    """Permute and flip array axes so that they point to the patient's Left, Posterior,
    Superior."""
    if direction is None:  # tumorsynth's default geometry: RAS
        direction = (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)
    d = np.asarray(direction, dtype=float).reshape(3, 3)
    world = [int(np.argmax(np.abs(d[:, a]))) for a in range(3)]
    if sorted(world) != [0, 1, 2]:  # oblique beyond 45 degrees: keep the array order
        world = [0, 1, 2]
    order = [world.index(w) for w in range(3)]
    out = np.transpose(array, order)
    for w, a in enumerate(order):
        if d[w, a] < 0:
            out = np.flip(out, axis=w)
    return out, tuple(float(spacing[a]) for a in order)


def _resize(panel: np.ndarray, row_mm: float, col_mm: float, mm_per_px: float) -> np.ndarray:
    """Nearest-neighbour resampling of a 2-D panel to square pixels of ``mm_per_px``."""
    rows = max(1, round(panel.shape[0] * row_mm / mm_per_px))
    cols = max(1, round(panel.shape[1] * col_mm / mm_per_px))
    r = np.minimum(((np.arange(rows) + 0.5) * mm_per_px / row_mm).astype(int), panel.shape[0] - 1)
    c = np.minimum(((np.arange(cols) + 0.5) * mm_per_px / col_mm).astype(int), panel.shape[1] - 1)
    return panel[np.ix_(r, c)]


def _outline(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def _cut(volume: np.ndarray, view: str, centre: Sequence[int]) -> np.ndarray:
    """A 2-D display slice of an LPS volume: rows top to bottom, columns left to right."""
    x, y, z = (int(c) for c in centre)
    if view == "axial":  # rows: anterior to posterior; columns: patient's right to left
        return volume[:, :, z].T
    if view == "coronal":  # rows: superior to inferior; columns: right to left
        return volume[:, y, :].T[::-1]
    return volume[x, :, :].T[::-1]  # sagittal; columns: anterior to posterior


def _panel(ct, organ, tumour, row_mm, col_mm, mm_per_px, window) -> np.ndarray:
    lo, hi = window
    grey = _resize(ct, row_mm, col_mm, mm_per_px).astype(np.float32)
    grey = np.clip((grey - lo) / (hi - lo) * 255.0, 0, 255).astype(np.uint8)
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    rgb[_outline(_resize(organ, row_mm, col_mm, mm_per_px))] = ORGAN_RGB
    rgb[_outline(_resize(tumour, row_mm, col_mm, mm_per_px))] = TUMOUR_RGB
    return rgb


def render_preview(
    image: np.ndarray,
    label: np.ndarray,
    spacing_mm: Sequence[float],
    direction: Sequence[float] | None = None,
    *,
    organ_value: int = 1,
    tumour_value: int = 2,
    max_tumours: int = 6,
    margin_mm: float = 20.0,
    width_px: int = 320,
    window_hu: tuple[float, float] = (-160.0, 240.0),
) -> np.ndarray:
    """An RGB montage of slices through each tumour's centre.

    Parameters
    ----------
    image : (X, Y, Z) array
        CT in HU.
    label : (X, Y, Z) array
        Label map on the same grid: ``organ_value`` organ, ``tumour_value`` tumour.
    spacing_mm : sequence of 3 float
        Voxel size along (X, Y, Z), mm.
    direction : sequence of 9 float, optional
        Row-major LPS direction matrix (SimpleITK's); default RAS, tumorsynth's default geometry.
    organ_value, tumour_value : int
        Label values outlined in green and red.
    max_tumours : int
        At most this many rows (the largest tumours).
    margin_mm : float
        Margin around the organ's bounding box, mm.
    width_px : int
        Pixels across the largest extent of the view.
    window_hu : (float, float)
        Grey-level window, HU.

    Returns
    -------
    (H, W, 3) uint8 array
        One row per tumour (or one row through the organ's centre if there is none).
    """
    image, spacing = _to_lps(np.asarray(image), spacing_mm, direction)
    label, _ = _to_lps(np.asarray(label), spacing_mm, direction)
    if image.shape != label.shape:
        raise InputError(f"image {image.shape} and label {label.shape} differ in shape")
    tumour = label == tumour_value
    organ = (label == organ_value) | tumour
    if organ.any():
        where = np.argwhere(organ)
        lo, hi = where.min(0), where.max(0) + 1
    else:
        lo, hi = np.zeros(3, int), np.array(image.shape)
    margin = np.ceil(margin_mm / np.asarray(spacing)).astype(int)
    lo, hi = np.maximum(lo - margin, 0), np.minimum(hi + margin, image.shape)
    crop = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    image, organ, tumour = image[crop], organ[crop], tumour[crop]
    mm_per_px = float(np.max((hi - lo) * np.asarray(spacing))) / width_px

    components, n = ndimage.label(tumour)
    if n:
        sizes = np.bincount(components.ravel())[1:]
        order = np.argsort(-sizes, kind="stable")[:max_tumours] + 1
        boxes = ndimage.find_objects(components)
        centres = []
        for c in order:
            box = boxes[c - 1]
            voxels = np.argwhere(components[box] == c) + [b.start for b in box]
            mean = voxels.mean(0)
            centres.append(voxels[np.argmin(((voxels - mean) ** 2).sum(1))])  # a voxel inside it
    else:
        inside = np.argwhere(organ) if organ.any() else np.argwhere(np.ones_like(organ))
        centres = [inside[np.argmin(((inside - inside.mean(0)) ** 2).sum(1))]]
    sx, sy, sz = spacing
    views = (("axial", sy, sx), ("coronal", sz, sx), ("sagittal", sz, sy))
    rows = []
    for centre in centres:
        panels = [
            _panel(
                *(_cut(v, view, centre) for v in (image, organ, tumour)), r, c, mm_per_px, window_hu
            )
            for view, r, c in views
        ]
        axial, coronal, sagittal = panels
        if coronal.shape[0] + sagittal.shape[0] + _GAP <= axial.shape[0]:  # a thin slab
            rows.append(_join([axial, _join([coronal, sagittal], axis=0)], axis=1))
        else:
            rows.append(_join(panels, axis=1))
    return _join(rows, axis=0, align_start=True)


def _join(images: list[np.ndarray], axis: int, align_start: bool = False) -> np.ndarray:
    """Place RGB images side by side (``axis=1``) or one above the other (``axis=0``), with a
    gap, centred across (or aligned to the start with ``align_start``) on black."""
    across = 1 - axis
    size = max(im.shape[across] for im in images)
    length = sum(im.shape[axis] for im in images) + _GAP * (len(images) - 1)
    shape = (length, size, 3) if axis == 0 else (size, length, 3)
    out = np.zeros(shape, np.uint8)
    at = 0
    for im in images:
        offset = 0 if align_start else (size - im.shape[across]) // 2
        if axis == 0:
            out[at : at + im.shape[0], offset : offset + im.shape[1]] = im
        else:
            out[offset : offset + im.shape[0], at : at + im.shape[1]] = im
        at += im.shape[axis] + _GAP
    return out


def write_preview(
    path: str | Path,
    image: np.ndarray,
    label: np.ndarray,
    spacing_mm: Sequence[float],
    direction: Sequence[float] | None = None,
    **kwargs,
) -> Path:
    """Write :func:`render_preview` as a PNG, atomically. Keyword arguments go to it."""
    import imageio.v3 as iio

    path = Path(path)
    rgb = render_preview(image, label, spacing_mm, direction, **kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, lambda tmp: iio.imwrite(tmp, rgb, extension=".png"))


def preview_files(
    image_path: str | Path, label_path: str | Path, out_path: str | Path, **kwargs
) -> Path:
    """Preview any CT and label map (files or DICOM folders). A label on another grid is resampled
    onto the CT's by world position (nearest neighbour). Keyword arguments go to
    :func:`render_preview`."""
    image, label, _ = read_pair(image_path, label_path)
    return write_preview(out_path, image.array, label, image.spacing_mm, image.direction, **kwargs)
