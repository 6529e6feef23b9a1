"""numba evaluation of a lesion's shape (see ``tumorsynth.engine.stages.shape``)."""

from __future__ import annotations

import numpy as np
from numba import njit

from tumorsynth.kernels.layout import DEFORM, KAPPA, TO_UNIT

MIN_RADIAL = 0.2


@njit(cache=True, inline="always")
def unit_coords(rows, i, dx, dy, dz):
    """Unit-ball coordinates of an offset (dx, dy, dz) mm from the centre of lesion ``i``.

    Kernels index ``rows[i, field]`` rather than taking a row view: a view per voxel would touch the
    array's reference count, which threads then contend for.
    """
    m = TO_UNIT
    qx = rows[i, m] * dx + rows[i, m + 1] * dy + rows[i, m + 2] * dz
    qy = rows[i, m + 3] * dx + rows[i, m + 4] * dy + rows[i, m + 5] * dz
    qz = rows[i, m + 6] * dx + rows[i, m + 7] * dy + rows[i, m + 8] * dz
    return qx, qy, qz


@njit(cache=True, inline="always")
def radial(rows, i, x, y, z):
    """Radius R(u) of lesion ``i``'s deformed unit ball along the unit vector (x, y, z)."""
    c = DEFORM
    z2 = z * z
    s = rows[i, c] * x + rows[i, c + 1] * y + rows[i, c + 2] * z
    s += rows[i, c + 3] * x * y + rows[i, c + 4] * y * z + rows[i, c + 5] * x * z
    s += rows[i, c + 6] * (3.0 * z2 - 1.0) + rows[i, c + 7] * (x * x - y * y)
    s += rows[i, c + 8] * y * (3.0 * x * x - y * y) + rows[i, c + 9] * x * y * z
    s += rows[i, c + 10] * y * (5.0 * z2 - 1.0) + rows[i, c + 11] * z * (5.0 * z2 - 3.0)
    s += rows[i, c + 12] * x * (5.0 * z2 - 1.0) + rows[i, c + 13] * z * (x * x - y * y)
    s += rows[i, c + 14] * x * (x * x - 3.0 * y * y)
    return max(rows[i, KAPPA] + s, rows[i, KAPPA] * MIN_RADIAL)


@njit(cache=True, inline="always")
def cbrt(v):
    return np.cbrt(v)
