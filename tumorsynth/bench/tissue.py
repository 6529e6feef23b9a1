r"""The texture of a tumour's tissue, measured on a CT: how much its HU vary against the organ
around it, and over what distance they stay alike.

Both read the tumour's **core** (the voxels at least 5 mm inside it, or at least half its greatest
inner depth when it is thinner) and its **ring** (the organ, without tumour, 3 to 10 mm outside
it), the regions :mod:`~tumorsynth.bench.fit` takes its contrast from, and both are robust: a
spread is the interquartile range scaled to a normal's standard deviation
(``scipy.stats.iqr(..., scale="normal")``), so a few vessel voxels do not decide it.

- **std ratio**: the spread of the core's HU over the ring's. 1 is a tumour as uniform as the
  parenchyma around it; the scan's own noise is in both.
- **grain**: the distance, in mm, at which the core's HU stop being alike: the lag at which the
  correlation :math:`\rho(h) = 1 - s(d_h)^2 / (2 s(x)^2)` of voxel pairs :math:`h` apart along the
  array axes (:math:`d_h` their differences, :math:`s` the robust spread, :math:`x` the core's
  HU) falls to 1/2, interpolated linearly between the lags measured (0, where it is 1, and 1 to
  :data:`MAX_LAG_VOX` voxels along each axis, pooled in mm). White noise gives half a voxel, a
  scan's noise (correlated over about a voxel) somewhat more, and a tumour whose texture is
  coarser than its noise more still. When the correlation stays above 1/2 at every lag measured,
  the largest lag is returned (a lower bound).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
from scipy import stats

__all__ = ["MAX_LAG_VOX", "MIN_CORE_VOXELS", "MIN_PAIRS", "grain_mm", "std_ratio"]

#: Largest lag, in voxels along each axis, of the grain's correlation.
MAX_LAG_VOX = 4
#: Fewer core voxels than this: no texture is measured (None).
MIN_CORE_VOXELS = 20
#: A lag needs at least this many voxel pairs inside the core to count.
MIN_PAIRS = 10
_HALF = 0.5


def _spread(values: np.ndarray) -> float:
    return float(stats.iqr(values, scale="normal"))


def std_ratio(core_hu: np.ndarray, ring_hu: np.ndarray) -> float | None:
    """Robust spread of the core's HU over the ring's (see the module's notes).

    Parameters
    ----------
    core_hu, ring_hu : 1-D array
        HU of the core's and the ring's voxels.

    Returns
    -------
    float or None
        None with fewer than :data:`MIN_CORE_VOXELS` core voxels or a ring without spread.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> round(std_ratio(rng.normal(0, 20, 4000), rng.normal(60, 10, 4000)), 1)
    2.0
    """
    if core_hu.size < MIN_CORE_VOXELS or ring_hu.size < MIN_CORE_VOXELS:
        return None
    ring = _spread(np.asarray(ring_hu, np.float64))
    if not ring > 0:
        return None
    return _spread(np.asarray(core_hu, np.float64)) / ring


def _correlations(values: np.ndarray, core: np.ndarray, spacing: np.ndarray, var: float):
    """(lag in mm, correlation) of the core's voxel pairs along each axis, lag 1 to MAX_LAG_VOX."""
    out = [(0.0, 1.0)]
    for axis in range(3):
        n = values.shape[axis]
        for lag in range(1, min(MAX_LAG_VOX, n - 1) + 1):
            first = tuple(slice(0, n - lag) if k == axis else slice(None) for k in range(3))
            second = tuple(slice(lag, n) if k == axis else slice(None) for k in range(3))
            both = core[first] & core[second]
            if int(both.sum()) < MIN_PAIRS:
                break
            d = (values[second] - values[first])[both]
            out.append((lag * float(spacing[axis]), 1.0 - _spread(d) ** 2 / (2.0 * var)))
    return sorted(out)


def grain_mm(values: np.ndarray, core: np.ndarray, spacing_mm: Sequence[float]) -> float | None:
    """The lag, mm, at which the correlation of the core's HU falls to 1/2 (see the module's notes).

    Parameters
    ----------
    values : (X, Y, Z) array
        HU around the tumour.
    core : (X, Y, Z) bool array
        The tumour's core.
    spacing_mm : sequence of 3 float
        Voxel size, mm.

    Returns
    -------
    float or None
        None with fewer than :data:`MIN_CORE_VOXELS` core voxels, no spread, or no lag measured.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> noise = rng.normal(0, 10, (30, 30, 30))  # white: neighbours already unalike
    >>> round(grain_mm(noise, np.ones(noise.shape, bool), (2.0, 2.0, 2.0)), 1)
    1.0
    """
    core = np.asarray(core, bool)
    if int(core.sum()) < MIN_CORE_VOXELS:
        return None
    values = np.asarray(values, np.float64)
    var = _spread(values[core]) ** 2
    if not var > 0:
        return None
    points = _correlations(values, core, np.asarray(spacing_mm, np.float64), var)
    if len(points) < 2:
        return None
    for (h0, r0), (h1, r1) in itertools.pairwise(points):
        if r1 < _HALF <= r0:
            return float(h0 + (h1 - h0) * (r0 - _HALF) / (r0 - r1))
    return float(points[-1][0])
