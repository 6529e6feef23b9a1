"""Box prompts from masks: one box per connected component, in SAM's (x0, y0, x1, y1) order.

A slice is indexed (row, column); SAM's x is the column and y the row, and a box covers the
pixels from its first to its last, so ``x1 = last column + 1``. Components are 8-connected
(``scipy.ndimage.label``); components smaller than ``min_area_px`` are dropped (the same rule
removes specks from pseudo-labels).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["EIGHT", "boxes", "components", "jitter", "remove_small"]

EIGHT = np.ones((3, 3), bool)
"""8-connectivity of slice components."""


def components(mask: np.ndarray, min_area_px: int = 1) -> list[np.ndarray]:
    """The 8-connected components of a 2-D mask with at least ``min_area_px`` pixels, each as a
    bool mask, in label order."""
    labels, n = ndimage.label(np.asarray(mask, bool), structure=EIGHT)
    if n == 0:
        return []
    areas = ndimage.sum_labels(np.ones_like(labels), labels, index=np.arange(1, n + 1))
    return [labels == k for k, a in zip(range(1, n + 1), areas, strict=True) if a >= min_area_px]


def remove_small(mask: np.ndarray, min_area_px: int) -> np.ndarray:
    """``mask`` without its components smaller than ``min_area_px`` pixels (2-D, or a stack of
    2-D masks along the first axis)."""
    mask = np.asarray(mask, bool)
    if mask.ndim == 3:
        return np.stack([remove_small(m, min_area_px) for m in mask]) if len(mask) else mask
    labels, n = ndimage.label(mask, structure=EIGHT)
    if n == 0:
        return mask
    areas = ndimage.sum_labels(np.ones_like(labels), labels, index=np.arange(n + 1))
    areas[0] = 0
    return (areas >= min_area_px)[labels] & mask


def _box(component: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(component)
    return np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], np.float32)


def boxes(mask: np.ndarray, min_area_px: int = 1) -> np.ndarray:
    """(K, 4) float32 boxes (x0, y0, x1, y1) in pixels, one per component of ``mask``."""
    found = components(mask, min_area_px)
    if not found:
        return np.zeros((0, 4), np.float32)
    return np.stack([_box(c) for c in found])


def jitter(
    box_xyxy: np.ndarray, fraction: float, size_px: int, rng: np.random.Generator
) -> np.ndarray:
    """Boxes with each side moved by up to ``fraction`` of the box's width (x) or height (y),
    uniformly, kept inside the ``size_px`` x ``size_px`` slice and at least 1 pixel wide.

    Parameters
    ----------
    box_xyxy : (K, 4) array
    fraction : float
        Largest move of a side, as a fraction of the box size.
    size_px : int
    rng : numpy.random.Generator
    """
    b = np.asarray(box_xyxy, np.float32).reshape(-1, 4)
    extent = np.concatenate([b[:, 2:] - b[:, :2]] * 2, axis=1)
    moved = b + rng.uniform(-fraction, fraction, b.shape).astype(np.float32) * extent
    moved = np.round(moved)
    moved[:, :2] = np.clip(moved[:, :2], 0, size_px - 1)
    moved[:, 2:] = np.clip(np.maximum(moved[:, 2:], moved[:, :2] + 1), 1, size_px)
    return moved.astype(np.float32)
