"""What sampling needs to know about the organ: the backend's organ scan turned into
:class:`OrganStats`, or into a clear error."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tumorsynth.backend import to_numpy
from tumorsynth.errors import InputError
from tumorsynth.kernels.cpu.organ import HU_MIN, measure_organ_arrays

__all__ = ["NOT_HU_SPAN", "OrganStats", "measure_organ"]

NOT_HU_SPAN = 16
"""An organ whose voxels all lie within this many HU of each other, around 0, is refused as not in
HU: normalised intensities ([0, 1], z-scores) look like that; no organ in a CT does (its noise
alone spreads it over tens of HU)."""


@dataclass(frozen=True)
class OrganStats:
    """What sampling needs to know about the organ, measured once per case.

    Attributes
    ----------
    bbox_lo, bbox_hi : tuple of int
        Inclusive-exclusive bounding box of the organ mask, in voxels, (X, Y, Z).
    n_voxels : int
        Number of organ voxels.
    median_hu : float
        Median HU of the image inside the organ.
    """

    bbox_lo: tuple[int, int, int]
    bbox_hi: tuple[int, int, int]
    n_voxels: int
    median_hu: float


def measure_organ(image, organ, source: str, scan=measure_organ_arrays) -> OrganStats:
    """Bounding box, size and median HU of the organ; raises :class:`InputError` on a mask that is
    not 0/1, an empty organ, NaN / infinite HU inside the organ, or an image not in HU (see
    :data:`NOT_HU_SPAN`).

    ``scan`` is the backend's ``measure_organ_arrays`` (numba by default; the CUDA module passes
    its own, and the arrays may then live on the GPU).
    """
    lo, hi, count, not_binary, not_finite, hist = scan(image, organ)
    if not_binary:
        values = np.unique(to_numpy(organ[organ > 1]))[:8].tolist()
        raise InputError(
            f"{source}: the organ mask is not binary ({not_binary} voxels with values {values}); "
            "pass a 0/1 mask, or select the organ's label first"
        )
    if count == 0:
        raise InputError(f"{source}: the organ mask is empty (no voxel equals 1)")
    if not_finite:
        raise InputError(
            f"{source}: the image has {not_finite} NaN or infinite voxels in the organ"
        )
    median_bin = int(np.searchsorted(np.cumsum(hist), (count + 1) / 2))
    occupied = np.flatnonzero(np.asarray(hist))
    lo_hu, hi_hu = int(occupied[0]) + HU_MIN, int(occupied[-1]) + HU_MIN
    if hi_hu - lo_hu < NOT_HU_SPAN and abs(median_bin + HU_MIN) < NOT_HU_SPAN / 2:
        raise InputError(
            f"{source}: the image does not look like Hounsfield units: every organ voxel lies "
            f"between {lo_hu} and {hi_hu + 1} (a normalised image, e.g. to [0, 1]?); pass the CT "
            "in HU"
        )
    return OrganStats(
        tuple(int(v) for v in lo), tuple(int(v) for v in hi), int(count), float(median_bin + HU_MIN)
    )
