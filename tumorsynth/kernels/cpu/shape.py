"""numba evaluation of a lesion's shape (see ``tumorsynth.stages.shape``)."""

from __future__ import annotations

import math

from numba import njit

from tumorsynth.kernels.layout import DEFORM, KAPPA, TO_UNIT

MIN_RADIAL = 0.2


@njit(cache=True, inline="always")
def unit_coords(row, dx, dy, dz):
    """Unit-ball coordinates of an offset (dx, dy, dz) mm from the lesion centre."""
    m = TO_UNIT
    qx = row[m] * dx + row[m + 1] * dy + row[m + 2] * dz
    qy = row[m + 3] * dx + row[m + 4] * dy + row[m + 5] * dz
    qz = row[m + 6] * dx + row[m + 7] * dy + row[m + 8] * dz
    return qx, qy, qz


@njit(cache=True, inline="always")
def radial(row, x, y, z):
    """Radius R(u) of the deformed unit ball along the unit vector (x, y, z)."""
    c = DEFORM
    z2 = z * z
    s = row[c] * x + row[c + 1] * y + row[c + 2] * z
    s += row[c + 3] * x * y + row[c + 4] * y * z + row[c + 5] * x * z
    s += row[c + 6] * (3.0 * z2 - 1.0) + row[c + 7] * (x * x - y * y)
    s += row[c + 8] * y * (3.0 * x * x - y * y) + row[c + 9] * x * y * z
    s += row[c + 10] * y * (5.0 * z2 - 1.0) + row[c + 11] * z * (5.0 * z2 - 3.0)
    s += row[c + 12] * x * (5.0 * z2 - 1.0) + row[c + 13] * z * (x * x - y * y)
    s += row[c + 14] * x * (x * x - 3.0 * y * y)
    return max(row[KAPPA] + s, row[KAPPA] * MIN_RADIAL)


@njit(cache=True, inline="always")
def cbrt(v):
    return math.copysign(abs(v) ** (1.0 / 3.0), v)
