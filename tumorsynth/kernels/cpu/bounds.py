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

- R is sampled on a grid of ``N_CELLS * SUB + 1`` points per face side (step h in the face's
  coordinates (a, b)). Between four neighbouring samples R differs from their bilinear interpolation
  by at most ``h**2 / 8 * (max|R_aa| + max|R_bb|)``, and the interpolation lies between the samples'
  extremes; the second derivatives are at most ``sum_k |c_k| H_k`` (:data:`CURVATURE`, the largest
  second derivative of each basis function along a face's coordinate lines). This margin shrinks
  with h squared: a tenth of a first-order (Lipschitz) one at this grid;
- a voxel at unit-ball radius ``rho`` in direction u lies ``s(u) * (rho - R(u))`` mm from the
  surface along its ray, where ``s(u) = |M^-1 u|`` (mm per unit of rho; ``M`` takes mm to the unit
  ball). ``s**2`` is a quadratic form whose gradient on the sphere is at most ``a_max**2 - a_min**2``,
  so its sampled minimum, less a first-order margin, bounds it over a cell (and ``a_min``, the
  smallest semi-axis, bounds it everywhere). Then ``rho <= R_min - inward / s_min`` is deep inside
  and ``rho >= R_max + outward / s_min`` out of reach, as for the global bounds
  (``tumorsynth.engine.packing.pack_lesion``), which use ``a_min``.
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
    TO_UNIT,
)

__all__ = ["CURVATURE", "N_CELLS", "SUB", "cell_of", "radial_bounds"]

N_CELLS = 12  # cells per side of a cube-map face
SUB = 2  # samples per cell side

# max over the six faces of |d2f/da2| and |d2f/db2| for the 15 terms of ``shape.radial`` (x, y, z,
# xy, yz, xz, 3z^2 - 1, x^2 - y^2, y(3x^2 - y^2), xyz, y(5z^2 - 1), z(5z^2 - 3), x(5z^2 - 1),
# z(x^2 - y^2), x(x^2 - 3y^2)) as functions of the face coordinates (a, b) in [-1, 1]^2: finite
# differences on a 1201 x 1201 grid per face gave (1, 1, 1, 1.457, 1.457, 1.457, 6, 4, 9, 0.628, 11,
# 12, 11, 2, 9), rounded up by 5 % (``tests/test_kernels.py`` checks them at random points)
CURVATURE = np.array(
    [1.05, 1.05, 1.05, 1.53, 1.53, 1.53, 6.3, 4.2, 9.45, 0.66, 11.55, 12.6, 11.55, 2.1, 9.45]
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
def radial_bounds(rows, curvature):
    """(L, 6, N_CELLS, N_CELLS, 2) unit-ball radii per lesion and direction cell: deep inside at
    or below ``[..., 0]``, out of reach at or beyond ``[..., 1]`` (see the module notes)."""
    n_samples = N_CELLS * SUB + 1
    step = 2.0 / (n_samples - 1)
    out = np.empty((rows.shape[0], 6, N_CELLS, N_CELLS, 2))
    for i in prange(rows.shape[0]):
        bend = 0.0
        for k in range(15):
            bend += abs(rows[i, DEFORM + k]) * curvature[k]
        margin = step * step / 8.0 * 2.0 * bend + 1e-9
        floor = rows[i, KAPPA] * MIN_RADIAL
        sigma, thick = rows[i, EDGE_SIGMA], rows[i, CAPS_T]
        inward_mm = max(EDGE_REACH * sigma, CAPS_IN * thick)
        outward_mm = max(EDGE_REACH * sigma, CAPS_OUT * thick)
        if rows[i, MASS_K] > 0.0:
            outward_mm = max(outward_mm, rows[i, MASS_REACH])
        to_mm = np.linalg.inv(rows[i, TO_UNIT : TO_UNIT + 9].copy().reshape((3, 3)))
        gram = np.linalg.eigvalsh(to_mm.T @ to_mm)  # the semi-axes squared
        scale_margin = (gram[2] - gram[0]) * step * 0.7072  # half a sample square's diagonal
        a_min2 = rows[i, A_MIN] ** 2
        values = np.empty((n_samples, n_samples))
        scale2 = np.empty((n_samples, n_samples))
        for face in range(6):
            for p in range(n_samples):
                for q in range(n_samples):
                    ux, uy, uz = _direction(face, -1.0 + p * step, -1.0 + q * step)
                    values[p, q] = radial(rows, i, ux, uy, uz)
                    vx = to_mm[0, 0] * ux + to_mm[0, 1] * uy + to_mm[0, 2] * uz
                    vy = to_mm[1, 0] * ux + to_mm[1, 1] * uy + to_mm[1, 2] * uz
                    vz = to_mm[2, 0] * ux + to_mm[2, 1] * uy + to_mm[2, 2] * uz
                    scale2[p, q] = vx * vx + vy * vy + vz * vz
            for ci in range(N_CELLS):
                for cj in range(N_CELLS):
                    cell = (
                        slice(ci * SUB, ci * SUB + SUB + 1),
                        slice(cj * SUB, cj * SUB + SUB + 1),
                    )
                    block = values[cell]
                    r_min = max(block.min() - margin, floor)
                    r_max = max(block.max() + margin, floor)
                    s_min = math.sqrt(max(scale2[cell].min() - scale_margin, a_min2)) * (1 - 1e-9)
                    out[i, face, ci, cj, 0] = max(rows[i, INNER_RHO], r_min - inward_mm / s_min)
                    out[i, face, ci, cj, 1] = min(rows[i, FAR_RHO], r_max + outward_mm / s_min)
    return out
