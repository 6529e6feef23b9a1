r"""Synthetic pseudo-labels: true tumour masks corrupted the ways a segmenter errs.

The adaptation network learns to repair SAM's masks from these (stage III). Each corruption is a
pure function of a 2-D mask (rows, columns), the liver and a generator:

========  ==================================================================================
erode     boundary pulled in by a disc of radius 1-4 px (under-segmentation)
dilate    boundary pushed out by a disc of radius 1-4 px, inside the liver (over-segmentation)
warp      smooth elastic displacement (Gaussian-filtered noise, sigma 2-4 px, up to 1-3 px)
drop      one lesion removed (a missed tumour)
blob      one or two ellipses added in the liver (a false positive, "misdetection")
noise     pixels of the boundary band flipped at random (ragged edges)
empty     everything removed (a slice the segmenter missed entirely)
========  ==================================================================================

The pixel sizes are those of a 256-pixel slice (:data:`REFERENCE_SIZE_PX`) and scale with the
slice (a 64-pixel slice erodes by 1 px), so a corruption takes the same share of a lesion at any
``slice_size``.

:func:`corrupt` applies one or two of them, drawn at random among those that change the mask
(on an empty mask only ``blob`` does; drawing ``empty`` there leaves it empty), and keeps the
result inside the liver.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import ndimage

from tumorsynth.methods.aslseg.config import CORRUPTIONS
from tumorsynth.methods.aslseg.prompts import EIGHT

__all__ = [
    "OPERATIONS",
    "REFERENCE_SIZE_PX",
    "blob",
    "corrupt",
    "dilate",
    "drop",
    "empty",
    "erode",
    "noise",
    "warp",
]


REFERENCE_SIZE_PX = 256
"""Slice side at which the corruptions' sizes are given, pixels."""


def _scale(mask: np.ndarray) -> float:
    return mask.shape[0] / REFERENCE_SIZE_PX


def _radius_px(mask: np.ndarray, rng: np.random.Generator) -> int:
    """A disc radius drawn from 1-4 px at the reference size, at least 1 px."""
    return max(1, round(rng.integers(1, 5) * _scale(mask)))


def _disc(radius_px: int) -> np.ndarray:
    r = int(radius_px)
    y, x = np.mgrid[-r : r + 1, -r : r + 1]
    return x * x + y * y <= r * r


def erode(mask: np.ndarray, liver: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``mask`` eroded by a disc of radius 1-4 px."""
    return ndimage.binary_erosion(mask, _disc(_radius_px(mask, rng)))


def dilate(mask: np.ndarray, liver: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``mask`` dilated by a disc of radius 1-4 px, inside the liver."""
    return ndimage.binary_dilation(mask, _disc(_radius_px(mask, rng))) & liver


def warp(mask: np.ndarray, liver: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``mask`` moved by a smooth random displacement (sigma 2-4 px, at most 1-3 px)."""
    sigma_px = max(1.0, rng.uniform(2.0, 4.0) * _scale(mask))
    most_px = max(1.0, rng.uniform(1.0, 3.0) * _scale(mask))
    field = [ndimage.gaussian_filter(rng.standard_normal(mask.shape), sigma_px) for _ in range(2)]
    scale = most_px / max(float(np.abs(np.stack(field)).max()), 1e-8)
    grid = np.mgrid[: mask.shape[0], : mask.shape[1]].astype(np.float64)
    coords = [g + scale * f for g, f in zip(grid, field, strict=True)]
    return ndimage.map_coordinates(mask.astype(np.float32), coords, order=1, mode="constant") >= 0.5


def drop(mask: np.ndarray, liver: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``mask`` without one of its lesions (8-connected components), drawn at random."""
    labels, n = ndimage.label(mask, structure=EIGHT)
    if n == 0:
        return mask.copy()
    return mask & (labels != rng.integers(1, n + 1))


def blob(mask: np.ndarray, liver: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``mask`` with one or two ellipses (semi-axes 2 px at the reference size, at least 1 px, to
    a tenth of the slice) centred on random liver pixels, inside the liver."""
    out = mask.copy()
    where = np.argwhere(liver)
    if not len(where):
        return out
    low = max(1.0, 2.0 * _scale(mask))
    top = max(low + 1.0, mask.shape[0] / 10)
    rows, cols = np.mgrid[: mask.shape[0], : mask.shape[1]]
    for _ in range(rng.integers(1, 3)):
        r0, c0 = where[rng.integers(len(where))]
        a, b = rng.uniform(low, top, size=2)
        angle = rng.uniform(0, np.pi)
        u = (rows - r0) * np.cos(angle) + (cols - c0) * np.sin(angle)
        v = -(rows - r0) * np.sin(angle) + (cols - c0) * np.cos(angle)
        out |= (u / a) ** 2 + (v / b) ** 2 <= 1.0
    return out & liver


def noise(mask: np.ndarray, liver: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``mask`` with each pixel of its boundary band (2 px wide) flipped with probability 0.5."""
    band = ndimage.binary_dilation(mask, EIGHT) & ~ndimage.binary_erosion(mask, EIGHT)
    return mask ^ (band & (rng.random(mask.shape) < 0.5))


def empty(mask: np.ndarray, liver: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Nothing: the whole slice missed."""
    return np.zeros_like(mask)


Corruption = Callable[[np.ndarray, np.ndarray, np.random.Generator], np.ndarray]
OPERATIONS: dict[str, Corruption] = {
    "erode": erode, "dilate": dilate, "warp": warp, "drop": drop, "blob": blob, "noise": noise,
    "empty": empty,
}  # fmt: skip
"""The corruptions by name (the names of :data:`~tumorsynth.methods.aslseg.config.CORRUPTIONS`)."""


def corrupt(
    mask: np.ndarray,
    liver: np.ndarray,
    rng: np.random.Generator,
    operations: Sequence[str] = CORRUPTIONS,
) -> tuple[np.ndarray, tuple[str, ...]]:
    """A synthetic pseudo-label of ``mask``: one or two corruptions drawn from ``operations``.

    Parameters
    ----------
    mask, liver : (rows, columns) bool arrays
    rng : numpy.random.Generator
    operations : sequence of str
        Names of :data:`OPERATIONS` to draw from.

    Returns
    -------
    corrupted : (rows, columns) bool array
        Inside the liver.
    applied : tuple of str
        The corruptions applied, in order.
    """
    mask, liver = np.asarray(mask, bool), np.asarray(liver, bool)
    names = [n for n in operations if mask.any() or n in ("blob", "empty")]
    if not names:
        return mask & liver, ()
    picked = rng.choice(names, size=min(len(names), int(rng.integers(1, 3))), replace=False)
    if "empty" in picked:
        picked = np.array(["empty"])
    out = mask
    for name in picked:
        out = OPERATIONS[str(name)](out, liver, rng)
    return out & liver, tuple(str(n) for n in picked)
