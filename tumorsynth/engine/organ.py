"""What sampling needs to know about the organ: the backend's organ scan turned into
:class:`OrganStats`, or into a clear error."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tumorsynth.backend import to_numpy
from tumorsynth.errors import InputError
from tumorsynth.kernels.cpu.organ import HU_MIN, measure_organ_arrays

__all__ = ["NOISE_BOX_VOX", "NOT_HU_SPAN", "OrganStats", "measure_noise", "measure_organ"]

NOISE_BOX_VOX = 64
"""The scan's noise is measured in the central box of the organ of at most this many voxels per
side (a few hundred thousand voxel pairs: plenty for two robust statistics)."""

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
    percentiles_hu : tuple of float
        The organ's HU at each whole percentile, 0 to 100 (1-HU bins; empty when not measured).
    """

    bbox_lo: tuple[int, int, int]
    bbox_hi: tuple[int, int, int]
    n_voxels: int
    median_hu: float
    percentiles_hu: tuple[float, ...] = ()

    def level_hu(self, quantile: float = 0.5) -> float:
        """The organ's HU at ``quantile`` (the median at 0.5, exactly :attr:`median_hu`), from
        the whole percentiles, interpolated linearly."""
        if quantile == 0.5 or not self.percentiles_hu:
            return self.median_hu
        return float(np.interp(100.0 * quantile, np.arange(101), self.percentiles_hu))


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
    cumulative = np.cumsum(hist)
    ranks = np.clip(np.linspace(0.0, 1.0, 101) * count, 1, count)
    percentiles = np.searchsorted(cumulative, ranks) + HU_MIN
    return OrganStats(
        tuple(int(v) for v in lo), tuple(int(v) for v in hi), int(count),
        float(median_bin + HU_MIN), tuple(float(v) for v in percentiles),
    )  # fmt: skip


def _robust_var(values: np.ndarray) -> float:
    """Variance of the bulk of ``values``: those within 3 robust standard deviations of the median
    (from the median absolute deviation), corrected for the cut (a normal's variance within 3 sigma
    is 0.97334 of its whole). Outliers, such as differences across vessel walls, do not count, and
    unlike the median absolute deviation itself the result is not stepped when CT values are whole
    HU."""
    if values.size == 0:
        return 0.0
    centred = values - np.median(values)
    scale = max(1.4826 * float(np.median(np.abs(centred))), 0.5)
    bulk = centred[np.abs(centred) <= 3.0 * scale]
    return float(np.mean(bulk**2)) / 0.97334


def measure_noise(image, organ, bbox_lo, bbox_hi, to_host) -> tuple[float, float]:
    r"""The scan's noise inside the organ, as the grain a replacing tumour is given: a standard
    deviation (HU) and the correlation of neighbouring voxels.

    From the differences of organ voxel pairs along each axis at lag 1 and 2, whose robust variances
    :math:`v_1, v_2` are what the eye sees of the grain: for noise of standard deviation
    :math:`\sigma` whose correlation is :math:`c` between neighbours and about 0 two voxels apart
    (CT noise is correlated over a voxel or so), :math:`v_2 = 2 \sigma^2` and
    :math:`v_1 = 2 \sigma^2 (1 - c)`. Smooth changes of the organ's level add little to such short
    differences, and vessel walls are outliers the median ignores. Measured in the central box of
    the organ's bounding box (:data:`NOISE_BOX_VOX`); the arrays may live on the GPU (``to_host``
    brings that box over).

    Returns
    -------
    (sigma_hu, corr) : float, float
        ``corr`` is clipped to [0, 0.5] (the grain's model reaches no further); both are 0 for an
        organ too thin to measure.
    """
    lo, hi = np.asarray(bbox_lo), np.asarray(bbox_hi)
    centre = (lo + hi) // 2
    a = np.maximum(centre - NOISE_BOX_VOX // 2, lo)
    b = np.minimum(a + NOISE_BOX_VOX, hi)
    box = tuple(slice(int(x), int(y)) for x, y in zip(a, b, strict=True))
    values = np.asarray(to_host(image[box]), np.float64)
    inside = np.asarray(to_host(organ[box])) > 0
    v1, v2 = (_robust_var(_pair_differences(values, inside, lag)) for lag in (1, 2))
    if v1 <= 0.0 or v2 <= 0.0:
        return 0.0, 0.0
    return float(np.sqrt(v2 / 2.0)), float(np.clip(1.0 - v1 / v2, 0.0, 0.5))


def _pair_differences(values: np.ndarray, inside: np.ndarray, lag: int) -> np.ndarray:
    """Differences of the organ voxel pairs ``lag`` apart along each axis, pooled."""
    out = []
    for axis in range(3):
        n = values.shape[axis]
        if n <= lag:
            continue
        first = tuple(slice(0, n - lag) if k == axis else slice(None) for k in range(3))
        second = tuple(slice(lag, n) if k == axis else slice(None) for k in range(3))
        both = inside[first] & inside[second]
        out.append((values[second] - values[first])[both])
    return np.concatenate(out) if out else np.zeros(0)
