"""Per-direction bounds of a lesion's deformed radius, so the render kernel evaluates the shape only
near its surface.

A lesion's radius R(u) varies with the direction u; the row's ``INNER_RHO`` and ``FAR_RHO`` bound it
over all directions at once, so for a strongly deformed tumour most voxels of its box fall between
them and pay for the full evaluation (radial function, distance, erfc) only to find that they are
deep inside or out of reach. Here the sphere of directions is cut into the cells of a cube map
(:data:`N_CELLS` x :data:`N_CELLS` per face) and each cell gets its own two thresholds: below the
first a voxel is deep inside (edge weight exactly 1, no capsule), beyond the second the lesion
changes nothing there. The bounds are conservative, so the image is the same, bit for bit, as with
the global ones:

- R is sampled on a grid of ``N_CELLS * SUB + 1`` points per face side, and widened by a Lipschitz
  margin: the radial function's angular gradient is at most ``sum_k |c_k| G_k`` (:data:`GRADIENT`,
  the maximum gradient of each basis function on the sphere), and every direction of a cell lies
  within half a sample step's diagonal of a sample (the cube-map projection shortens distances);
- a voxel at unit-ball radius ``rho`` lies ``a_min * (rho - R)`` mm or more from the surface along
  its ray, so ``rho <= R_min - inward / a_min`` is deep inside and ``rho >= R_max + outward / a_min``
  out of reach, as for the global bounds (``tumorsynth.packing.pack_lesion``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from tumorsynth.kernels.cpu.shape import MIN_RADIAL, radial
from tumorsynth.kernels.layout import (
    A_MIN,
    CAPS_IN,
    CAPS_OUT,
    CAPS_T,
    DEFORM,
    EDGE_REACH,
    EDGE_SIGMA,
    FAR_RHO,
    INNER_RHO,
    KAPPA,
    MASS_K,
    MASS_REACH,
)

__all__ = ["GRADIENT", "N_CELLS", "SUB", "cell_of", "radial_bounds"]

N_CELLS = 12  # cells per side of a cube-map face
SUB = 2  # samples per cell side

# max over the unit sphere of |grad f| for the 15 terms of ``shape.radial`` (x, y, z, xy, yz, xz,
# 3z^2 - 1, x^2 - y^2, y(3x^2 - y^2), xyz, y(5z^2 - 1), z(5z^2 - 3), x(5z^2 - 1), z(x^2 - y^2),
# x(x^2 - 3y^2)): the tangential gradient's maximum over 2 * 10^6 random directions (1, 1, 1, 1, 1,
# 1, 3, 2, 3, 0.5, 4, 4.13, 4, 1, 3), rounded up by 5 % or more
GRADIENT = np.array(
    [1.05, 1.05, 1.05, 1.05, 1.05, 1.05, 3.15, 2.1, 3.15, 0.53, 4.2, 4.35, 4.2, 1.05, 3.15]
)


@njit(cache=True, inline="always")
def cell_of(qx, qy, qz):
    """Cube-map face (0..5: +x, -x, +y, -y, +z, -z) and cell indices of the direction of q != 0."""
    ax, ay, az = abs(qx), abs(qy), abs(qz)
    if ax >= ay and ax >= az:
        face, inv, a, b = (0 if qx > 0.0 else 1), 1.0 / ax, qy, qz
    elif ay >= az:
        face, inv, a, b = (2 if qy > 0.0 else 3), 1.0 / ay, qx, qz
    else:
        face, inv, a, b = (4 if qz > 0.0 else 5), 1.0 / az, qx, qy
    half = 0.5 * N_CELLS
    ci = min(max(int((a * inv + 1.0) * half), 0), N_CELLS - 1)
    cj = min(max(int((b * inv + 1.0) * half), 0), N_CELLS - 1)
    return face, ci, cj


@njit(cache=True, inline="always")
def _direction(face, a, b):
    """Unit vector of the cube-map point (a, b) on ``face``."""
    s = 1.0 if face % 2 == 0 else -1.0
    n = 1.0 / math.sqrt(1.0 + a * a + b * b)
    if face < 2:
        return s * n, a * n, b * n
    if face < 4:
        return a * n, s * n, b * n
    return a * n, b * n, s * n


@njit(cache=True, parallel=True)
def radial_bounds(rows, gradient):
    """(L, 6, N_CELLS, N_CELLS, 2) unit-ball radii per lesion and direction cell: deep inside at
    or below ``[..., 0]``, out of reach at or beyond ``[..., 1]`` (see the module notes)."""
    n_samples = N_CELLS * SUB + 1
    step = 2.0 / (n_samples - 1)
    out = np.empty((rows.shape[0], 6, N_CELLS, N_CELLS, 2))
    for i in prange(rows.shape[0]):
        lipschitz = 0.0
        for k in range(15):
            lipschitz += abs(rows[i, DEFORM + k]) * gradient[k]
        margin = lipschitz * step * 0.7072  # half the diagonal of a sample square, rounded up
        floor = rows[i, KAPPA] * MIN_RADIAL
        sigma, thick = rows[i, EDGE_SIGMA], rows[i, CAPS_T]
        inward = max(EDGE_REACH * sigma, CAPS_IN * thick) / rows[i, A_MIN]
        outward = max(EDGE_REACH * sigma, CAPS_OUT * thick)
        if rows[i, MASS_K] > 0.0:
            outward = max(outward, rows[i, MASS_REACH])
        outward /= rows[i, A_MIN]
        values = np.empty((n_samples, n_samples))
        for face in range(6):
            for p in range(n_samples):
                for q in range(n_samples):
                    ux, uy, uz = _direction(face, -1.0 + p * step, -1.0 + q * step)
                    values[p, q] = radial(rows, i, ux, uy, uz)
            for ci in range(N_CELLS):
                for cj in range(N_CELLS):
                    block = values[ci * SUB : ci * SUB + SUB + 1, cj * SUB : cj * SUB + SUB + 1]
                    r_min = max(block.min() - margin, floor)
                    r_max = max(block.max() + margin, floor)
                    out[i, face, ci, cj, 0] = max(rows[i, INNER_RHO], r_min - inward)
                    out[i, face, ci, cj, 1] = min(rows[i, FAR_RHO], r_max + outward)
    return out
