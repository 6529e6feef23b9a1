"""Numba kernels of the built-in phantom (:mod:`tumorsynth.phantom`): signed distance fields.

Every structure of the phantom is an approximate signed distance field (SDF, in mm, negative inside)
evaluated on the voxel centres of its own bounding box. The kernels here evaluate the SDF primitives
(smooth unions of ellipsoids, tapered tubes, rounded elliptic cylinders) and the boundaries of the body
wall layers. Coordinates are millimetres; arrays are indexed (x, y, z).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from tumorsynth.phantom.kernels.waves import waves_xy, waves_z

__all__ = ["ELLIPSOID_FIELDS", "blob_sdf", "cylinder_sdf", "layer_sdf", "tube_sdf"]


# Layout of one ellipsoid row: centre (3), world -> local rotation (9, row major), 1 / semi-axes (3).
ELLIPSOID_FIELDS = 15


@njit(cache=True)
def _ellipsoid(px, py, pz, e):
    dx = px - e[0]
    dy = py - e[1]
    dz = pz - e[2]
    qx = (e[3] * dx + e[4] * dy + e[5] * dz) * e[12]
    qy = (e[6] * dx + e[7] * dy + e[8] * dz) * e[13]
    qz = (e[9] * dx + e[10] * dy + e[11] * dz) * e[14]
    k0 = math.sqrt(qx * qx + qy * qy + qz * qz)
    k1 = math.sqrt((qx * e[12]) ** 2 + (qy * e[13]) ** 2 + (qz * e[14]) ** 2)
    if k1 < 1e-9:
        return -1.0 / max(e[12], e[13], e[14])
    return k0 * (k0 - 1.0) / k1


@njit(cache=True)
def _smin(a, b, k):
    if k <= 0.0:
        return min(a, b)
    h = max(k - abs(a - b), 0.0) / k
    return min(a, b) - h * h * k * 0.25


@njit(cache=True)
def _blob_at(waves, i, j, k, px, py, pz, ells, k_smooth_mm, sab, cab):
    d = _ellipsoid(px, py, pz, ells[0])
    for m in range(1, ells.shape[0]):
        d = _smin(d, _ellipsoid(px, py, pz, ells[m]), k_smooth_mm)
    if sab.shape[0] > 0:
        waves_xy(waves, i, j, sab, cab)
        d += waves_z(waves, k, sab, cab)
    return d


@njit(cache=True)
def _nodes(n, step):
    """Coarse node indices 0, step, 2 step, ... and n - 1."""
    m = (n - 1) // step + 1
    extra = 1 if (n - 1) % step else 0
    out = np.empty(m + extra, np.int64)
    for a in range(m):
        out[a] = a * step
    if extra:
        out[m] = n - 1
    return out


@njit(cache=True, parallel=True)
def blob_sdf(out, xs, ys, zs, ells, k_smooth_mm, waves, band_lo, band_hi, lipschitz):
    """SDF of a smooth union of rotated ellipsoids plus a low-frequency warp.

    The SDF is evaluated exactly only in the blocks of 4 x 4 x 4 voxels that may hold values in
    [band_lo, band_hi] (judged from a coarse grid and a Lipschitz bound); elsewhere it is
    interpolated trilinearly from the coarse grid (right sign, approximate magnitude).

    Parameters
    ----------
    out : ndarray of float32, shape (nx, ny, nz)
        Receives the SDF in mm.
    xs, ys, zs : ndarray of float64
        Voxel-centre coordinates (mm) along each axis.
    ells : ndarray of float64, shape (K, 15)
        Ellipsoid rows (centre, world-to-local rotation, inverse semi-axes in 1/mm).
    k_smooth_mm : float
        Smooth-union radius in mm (0: plain union).
    waves : ndarray of float64, shape (7, N, max(nx, ny, nz))
        Warp plane waves tabulated per axis by
        :func:`~tumorsynth.phantom.kernels.waves.wave_tables` (amplitudes in mm).
    band_lo, band_hi : float
        Range of SDF values (mm) that must be exact.
    lipschitz : float
        Bound on the SDF's gradient magnitude.
    """
    nx, ny, nz = out.shape
    nw = waves.shape[1]
    cx, cy, cz = _nodes(nx, 4), _nodes(ny, 4), _nodes(nz, 4)
    coarse = np.empty((cx.size, cy.size, cz.size))
    for a in prange(cx.size):
        sab = np.empty(nw)
        cab = np.empty(nw)
        for b in range(cy.size):
            for c in range(cz.size):
                i, j, k = cx[a], cy[b], cz[c]
                coarse[a, b, c] = _blob_at(
                    waves, i, j, k, xs[i], ys[j], zs[k], ells, k_smooth_mm, sab, cab
                )
    blocks = max(cx.size - 1, 1)
    for a in prange(blocks):
        sab = np.empty(nw)
        cab = np.empty(nw)
        a1 = min(a + 1, cx.size - 1)
        i_end = cx[a1] if a1 < cx.size - 1 else nx
        for b in range(max(cy.size - 1, 1)):
            b1 = min(b + 1, cy.size - 1)
            j_end = cy[b1] if b1 < cy.size - 1 else ny
            for c in range(max(cz.size - 1, 1)):
                c1 = min(c + 1, cz.size - 1)
                k_end = cz[c1] if c1 < cz.size - 1 else nz
                corners = coarse[a : a1 + 1, b : b1 + 1, c : c1 + 1]
                lo, hi = corners.min(), corners.max()
                ex = xs[cx[a1]] - xs[cx[a]]
                ey = ys[cy[b1]] - ys[cy[b]]
                ez = zs[cz[c1]] - zs[cz[c]]
                slack = 0.5 * lipschitz * math.sqrt(ex * ex + ey * ey + ez * ez)
                exact = lo - slack <= band_hi and hi + slack >= band_lo
                for i in range(cx[a], i_end):
                    u = (i - cx[a]) / max(cx[a1] - cx[a], 1)
                    for j in range(cy[b], j_end):
                        if exact:
                            if nw > 0:
                                waves_xy(waves, i, j, sab, cab)
                            for k in range(cz[c], k_end):
                                d = _ellipsoid(xs[i], ys[j], zs[k], ells[0])
                                for m in range(1, ells.shape[0]):
                                    d = _smin(
                                        d, _ellipsoid(xs[i], ys[j], zs[k], ells[m]), k_smooth_mm
                                    )
                                if nw > 0:
                                    d += waves_z(waves, k, sab, cab)
                                out[i, j, k] = d
                            continue
                        v = (j - cy[b]) / max(cy[b1] - cy[b], 1)
                        bottom = (coarse[a, b, c] * (1 - u) + coarse[a1, b, c] * u) * (1 - v) + (
                            coarse[a, b1, c] * (1 - u) + coarse[a1, b1, c] * u
                        ) * v
                        top = (coarse[a, b, c1] * (1 - u) + coarse[a1, b, c1] * u) * (1 - v) + (
                            coarse[a, b1, c1] * (1 - u) + coarse[a1, b1, c1] * u
                        ) * v
                        for k in range(cz[c], k_end):
                            w = (k - cz[c]) / max(cz[c1] - cz[c], 1)
                            out[i, j, k] = bottom * (1 - w) + top * w


@njit(cache=True, parallel=True)
def cylinder_sdf(out, xs, ys, zs, cyls):
    """SDF of a union of rounded elliptic cylinders with their axis along z.

    ``cyls`` rows are (cx, cy, cz, semi-axis x, semi-axis y, half height, edge rounding), all mm.
    """
    nx, ny, nz = out.shape
    for i in prange(nx):
        for j in range(ny):
            for k in range(nz):
                best = 1e9
                for m in range(cyls.shape[0]):
                    c = cyls[m]
                    if abs(zs[k] - c[2]) - c[5] > best:
                        continue  # a lower bound of this cylinder's distance already loses
                    ax = c[3] - c[6]
                    ay = c[4] - c[6]
                    qx = (xs[i] - c[0]) / ax
                    qy = (ys[j] - c[1]) / ay
                    k0 = math.sqrt(qx * qx + qy * qy)
                    k1 = math.sqrt((qx / ax) ** 2 + (qy / ay) ** 2)
                    d2 = k0 * (k0 - 1.0) / k1 if k1 > 1e-9 else -min(ax, ay)
                    dz = abs(zs[k] - c[2]) - (c[5] - c[6])
                    outside = math.sqrt(max(d2, 0.0) ** 2 + max(dz, 0.0) ** 2)
                    d = outside + min(max(d2, dz), 0.0) - c[6]
                    best = min(best, d)
                out[i, j, k] = best


@njit(cache=True, parallel=True)
def tube_sdf(out, x0, y0, z0, sx, sy, sz, segs, margin_mm):
    """SDF (min over segments) of tapered tubes, each evaluated in its own bounding box.

    Parameters
    ----------
    out : ndarray of float32, shape (nx, ny, nz)
        Pre-filled with a large positive value; updated in place with the minimum distance.
    x0, y0, z0 : float
        Coordinate (mm) of the centre of voxel (0, 0, 0) of ``out``.
    sx, sy, sz : float
        Voxel spacing (mm).
    segs : ndarray of float64, shape (M, 8)
        Segments (x0, y0, z0, x1, y1, z1, r0, r1) in mm; the radius varies linearly along each.
    margin_mm : float
        Distance outside each tube still evaluated (the rest of ``out`` is left untouched).
    """
    nx, ny, nz = out.shape
    m_count = segs.shape[0]
    box = np.zeros((m_count, 6), np.int64)
    org = (x0, y0, z0)
    sp = (sx, sy, sz)
    n = (nx, ny, nz)
    for m in range(m_count):
        reach = max(segs[m, 6], segs[m, 7]) + margin_mm
        for a in range(3):
            lo_mm = min(segs[m, a], segs[m, a + 3]) - reach
            hi_mm = max(segs[m, a], segs[m, a + 3]) + reach
            box[m, a] = max(math.ceil((lo_mm - org[a]) / sp[a]), 0)
            box[m, a + 3] = min(math.floor((hi_mm - org[a]) / sp[a]) + 1, n[a])
    for i in prange(nx):
        for m in range(m_count):
            if i < box[m, 0] or i >= box[m, 3] or box[m, 1] >= box[m, 4] or box[m, 2] >= box[m, 5]:
                continue
            ax, ay, az = segs[m, 0], segs[m, 1], segs[m, 2]
            ux, uy, uz = segs[m, 3] - ax, segs[m, 4] - ay, segs[m, 5] - az
            r0, r1 = segs[m, 6], segs[m, 7]
            l2 = ux * ux + uy * uy + uz * uz
            px = x0 + i * sx - ax
            for j in range(box[m, 1], box[m, 4]):
                py = y0 + j * sy - ay
                for k in range(box[m, 2], box[m, 5]):
                    pz = z0 + k * sz - az
                    t = 0.0
                    if l2 > 0.0:
                        t = min(max((px * ux + py * uy + pz * uz) / l2, 0.0), 1.0)
                    dx = px - t * ux
                    dy = py - t * uy
                    dz = pz - t * uz
                    d = math.sqrt(dx * dx + dy * dy + dz * dz) - (r0 + t * (r1 - r0))
                    if d < out[i, j, k]:
                        out[i, j, k] = d


@njit(cache=True, parallel=True)
def layer_sdf(out, radius2d, bin2d, tables, depth):
    """SDF (mm) of a body-wall boundary: 0 the skin, 1 the inside of the fat, 2 the cavity.

    ``radius2d``, ``bin2d`` and ``tables`` are as in
    :func:`~tumorsynth.phantom.kernels.paint.body_layers`, for this sub-box.
    """
    nx, ny, nz = out.shape
    for i in prange(nx):
        for j in range(ny):
            r = radius2d[i, j]
            b = bin2d[i, j]
            for k in range(nz):
                d = (r - tables[0, k, b]) * tables[1, k, b]
                if depth >= 1:
                    d += tables[2, k, b]
                if depth >= 2:
                    d += tables[3, k, b]
                out[i, j, k] = d
