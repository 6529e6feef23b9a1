r"""2-D axial slices of a volume's liver box, and 3-D volumes assembled back from slices.

Every slice of one volume is cut from the same in-plane box: the liver's bounding box in (X, Y),
grown by a margin and made square in millimetres, so its pixels are square whatever the CT's
in-plane spacing. The box is resized to ``size`` x ``size`` pixels; parts outside the volume are
air. A slice keeps the volume's axes: rows along X, columns along Y. Slices hold the CT windowed
to [0, 1] (:func:`window_hu`), the liver, and the tumour where it is known.

:func:`paste` puts per-slice probabilities back on the volume's own grid (bilinear, then the
caller thresholds), so a 3-D label map lies in the CT's exact geometry.

Examples
--------
>>> import numpy as np
>>> liver = np.zeros((40, 30, 8), bool); liver[10:30, 5:25, 2:6] = True
>>> box = liver_box(liver, (1.0, 1.0, 2.0), margin_mm=2.0, min_liver_vox=1)
>>> box.lo_vox, box.size_vox, box.z
((8, 3), (24, 24), (2, 3, 4, 5))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from tumorsynth.errors import InputError

__all__ = ["AIR_HU", "SliceBox", "Slices", "cut", "liver_box", "paste", "window_hu"]

AIR_HU = -1024.0
"""Value of the padding outside the volume, HU."""


@dataclass(frozen=True)
class SliceBox:
    """Where a volume's slices are cut.

    Attributes
    ----------
    lo_vox : 2 ints
        First voxel (X, Y) of the square box; negative where it reaches past the volume.
    size_vox : 2 ints
        Box size along (X, Y), voxels (the same length in mm along both).
    z : tuple of int
        Axial indices of the slices.
    """

    lo_vox: tuple[int, int]
    size_vox: tuple[int, int]
    z: tuple[int, ...]


def liver_box(
    liver: np.ndarray,
    spacing_mm: Sequence[float],
    *,
    margin_mm: float,
    min_liver_vox: int = 1,
    source: str = "liver mask",
) -> SliceBox:
    """The in-plane box around the liver, square in mm, and the axial slices that hold liver.

    Parameters
    ----------
    liver : (X, Y, Z) array
        Nonzero is liver.
    spacing_mm : 3 floats
        Voxel size, mm.
    margin_mm : float
        Added on every side of the liver's in-plane bounding box, mm.
    min_liver_vox : int
        A slice is taken when it holds at least this many liver voxels.
    source : str
        Named in the error.

    Raises
    ------
    InputError
        An empty liver, or no slice with ``min_liver_vox`` liver voxels.
    """
    liver = np.asarray(liver).astype(bool, copy=False)
    if liver.ndim != 3:
        raise InputError(f"{source}: need a 3-D (X, Y, Z) liver mask, got shape {liver.shape}")
    per_slice = liver.sum(axis=(0, 1))
    if not per_slice.any():
        raise InputError(f"{source}: the liver mask is empty (no liver voxel)")
    z = tuple(int(k) for k in np.flatnonzero(per_slice >= min_liver_vox))
    if not z:
        raise InputError(f"{source}: no slice holds {min_liver_vox} liver voxels")
    spacing = np.asarray(spacing_mm, float)[:2]
    hit = [np.flatnonzero(liver.any(axis=tuple(a for a in range(3) if a != k))) for k in (0, 1)]
    lo_mm = np.array([h[0] for h in hit]) * spacing
    hi_mm = (np.array([h[-1] for h in hit]) + 1) * spacing
    side_mm = float((hi_mm - lo_mm).max()) + 2 * margin_mm
    size = np.maximum(np.round(side_mm / spacing).astype(int), 1)
    centre_vox = (lo_mm + hi_mm) / 2 / spacing
    lo = np.floor(centre_vox - size / 2).astype(int)
    return SliceBox((int(lo[0]), int(lo[1])), (int(size[0]), int(size[1])), z)


def window_hu(image_hu: np.ndarray, window: Sequence[float]) -> np.ndarray:
    """HU -> [0, 1]: the window mapped linearly, clipped outside (float32)."""
    lo, hi = float(window[0]), float(window[1])
    return np.clip((np.asarray(image_hu, np.float32) - lo) / (hi - lo), 0.0, 1.0)


def _crop(volume: np.ndarray, box: SliceBox, fill: float) -> np.ndarray:
    """(N, wx, wy) in-plane crops of ``volume`` at the box's slices, padded with ``fill``."""
    (x0, y0), (wx, wy) = box.lo_vox, box.size_vox
    out = np.full((len(box.z), wx, wy), fill, dtype=np.float32)
    nx, ny = volume.shape[:2]
    sx, sy = slice(max(x0, 0), min(x0 + wx, nx)), slice(max(y0, 0), min(y0 + wy, ny))
    if sx.start < sx.stop and sy.start < sy.stop:
        part = volume[sx, sy][:, :, list(box.z)]
        out[:, sx.start - x0 : sx.stop - x0, sy.start - y0 : sy.stop - y0] = np.moveaxis(part, 2, 0)
    return out


def _resize(stack: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N, a, b) float32 -> (N, *size), bilinear (antialiased when shrinking)."""
    if stack.shape[1:] == tuple(size):
        return stack.astype(np.float32, copy=False)
    t = torch.from_numpy(np.ascontiguousarray(stack, dtype=np.float32))[:, None]
    shrink = size[0] < stack.shape[1] or size[1] < stack.shape[2]
    out = F.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=shrink)
    return out[:, 0].numpy()


def cut(volume: np.ndarray, box: SliceBox, size: int, *, mask: bool = False) -> np.ndarray:
    """The box's slices of ``volume``, resized to ``size`` x ``size``.

    Parameters
    ----------
    volume : (X, Y, Z) array
        A CT (already windowed or in HU: padded with :data:`AIR_HU`, or 0 when windowed values are
        passed with ``mask``) or a mask.
    box : SliceBox
    size : int
        Slice side, pixels.
    mask : bool
        ``volume`` is a mask: padded with 0 and returned as bool (area-weighted, >= 0.5).

    Returns
    -------
    (N, size, size) float32 or bool array
    """
    fill = 0.0 if mask else AIR_HU
    stack = _resize(_crop(np.asarray(volume, np.float32), box, fill), (size, size))
    return stack >= 0.5 if mask else stack


def paste(slices: np.ndarray, box: SliceBox, shape: Sequence[int]) -> np.ndarray:
    """Per-slice maps (e.g. tumour probabilities) put back on the volume's grid.

    Parameters
    ----------
    slices : (N, size, size) array
        One map per slice of ``box``, in its order.
    box : SliceBox
    shape : 3 ints
        The volume's (X, Y, Z) shape.

    Returns
    -------
    (X, Y, Z) float32 array
        The maps resized to the box (bilinear) and placed at its slices; 0 elsewhere.
    """
    if len(slices) != len(box.z):
        raise ValueError(f"{len(slices)} slices for a box of {len(box.z)}")
    out = np.zeros(tuple(shape), np.float32)
    if not len(slices):
        return out
    (x0, y0), (wx, wy) = box.lo_vox, box.size_vox
    big = _resize(np.asarray(slices, np.float32), (wx, wy))
    nx, ny = out.shape[:2]
    sx, sy = slice(max(x0, 0), min(x0 + wx, nx)), slice(max(y0, 0), min(y0 + wy, ny))
    part = big[:, sx.start - x0 : sx.stop - x0, sy.start - y0 : sy.stop - y0]
    out[sx, sy, list(box.z)] = np.moveaxis(part, 0, 2)
    return out


@dataclass(frozen=True, eq=False)
class Slices:
    """A set of slices, each with an id ``"<volume>:<z>"``.

    Attributes
    ----------
    image : (N, S, S) float32
        CT windowed to [0, 1].
    liver : (N, S, S) bool
    tumour : (N, S, S) bool
        The label: true (synthetic), a pseudo-label, a hidden truth, or zeros where unknown.
    known : (N,) bool
        Whether ``tumour`` is known for the slice (hidden labels: for reports only).
    ids : (N,) str
    """

    image: np.ndarray
    liver: np.ndarray
    tumour: np.ndarray
    known: np.ndarray
    ids: np.ndarray

    def __post_init__(self) -> None:
        for name, dtype in (
            ("image", np.float32),
            ("liver", bool),
            ("tumour", bool),
            ("known", bool),
        ):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=dtype))
        n = len(self.ids)
        for name in ("image", "liver", "tumour", "known"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"Slices: {name} has {len(getattr(self, name))} rows, ids {n}")
        if len(set(self.ids.tolist())) != n:
            raise ValueError("Slices: ids repeat")

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def size(self) -> int:
        """Side of the slices, pixels."""
        return int(self.image.shape[-1])

    def take(self, index: np.ndarray | Sequence[int]) -> Slices:
        """The slices at ``index`` (integer positions or a boolean mask)."""
        i = np.asarray(index)
        i = i if i.dtype == bool else i.astype(np.intp)
        return Slices(self.image[i], self.liver[i], self.tumour[i], self.known[i], self.ids[i])

    def with_tumour(self, tumour: np.ndarray) -> Slices:
        """The same slices with another (known) tumour mask."""
        return Slices(self.image, self.liver, np.asarray(tumour, bool), np.ones(len(self), bool),
                      self.ids)  # fmt: skip

    @staticmethod
    def concat(parts: Sequence[Slices], size: int) -> Slices:
        """One set from several (an empty one has ``size`` x ``size`` slices)."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return Slices(
                np.zeros((0, size, size), np.float32), np.zeros((0, size, size), bool),
                np.zeros((0, size, size), bool), np.zeros(0, bool), np.zeros(0, dtype="<U1"),
            )  # fmt: skip
        return Slices(*(np.concatenate([getattr(p, k) for p in parts]) for k in
                        ("image", "liver", "tumour", "known", "ids")))  # fmt: skip
