"""The fused render kernel: every stage of every lesion, one pass over the lesions' boxes.

Each output voxel is a pure function of the input image, the organ mask and the packed lesions that
reach it. The volume around the lesions is cut into disjoint tiles, each with the short list of lesions
that may reach it, and the tiles are processed in parallel: every voxel is written once.
"""

from __future__ import annotations

import math

import numpy as np
from numba import get_num_threads, njit, prange

from tumorsynth.kernels.cpu.bounds import CURVATURE, cell_of, radial_bounds
from tumorsynth.kernels.cpu.effects import (
    blend,
    capsule_profile,
    edge_weight,
    mass_factor,
    necrosis_weight,
)
from tumorsynth.kernels.cpu.shape import cbrt, radial, unit_coords
from tumorsynth.kernels.layout import (
    CAPS_HU,
    CAPS_T,
    CENTER,
    DELTA_HU,
    EDGE_SIGMA,
    FAR_RHO,
    INNER_RHO,
    MASS_K,
    MASS_REACH,
    NECRO_DELTA,
    NECRO_RHO,
    TEX_H,
    TEX_LO,
    TEX_N,
    TEX_OFFSET,
    TO_UNIT,
)


@njit(cache=True, inline="always")
def lesion_at(rows, i, dx, dy, dz):
    """Shape quantities of lesion ``i`` at an offset (dx, dy, dz) mm from its centre.

    Returns (rho, radial R or -1 when deep inside, signed distance mm, inside flag). A signed
    distance of +inf means the lesion has no effect here.
    """
    qx, qy, qz = unit_coords(rows, i, dx, dy, dz)
    rho = math.sqrt(qx * qx + qy * qy + qz * qz)
    if rho <= rows[i, INNER_RHO] or rho < 1e-9:
        return rho, -1.0, -math.inf, True
    if rho >= rows[i, FAR_RHO]:
        return rho, -1.0, math.inf, False
    big_r = radial(rows, i, qx / rho, qy / rho, qz / rho)
    sd = math.sqrt(dx * dx + dy * dy + dz * dz) * (1.0 - big_r / rho)
    return rho, big_r, sd, rho <= big_r


@njit(cache=True, inline="always")
def _row_span(rows, i, dx, dy, sz, z_lo, z_hi, rho_max):
    """Voxels [a, b) of the row at in-plane offset (dx, dy) mm from lesion ``i``'s centre where its
    unit-ball radius is below ``rho_max``, clipped to [z_lo, z_hi); empty when a >= b.

    Along a row the unit-ball coordinates are affine in z, so the radius squared is a quadratic and
    the span is the interval between its roots.
    """
    m = TO_UNIT
    q0x = rows[i, m] * dx + rows[i, m + 1] * dy
    q0y = rows[i, m + 3] * dx + rows[i, m + 4] * dy
    q0z = rows[i, m + 6] * dx + rows[i, m + 7] * dy
    ax, ay, az = rows[i, m + 2], rows[i, m + 5], rows[i, m + 8]
    qa = ax * ax + ay * ay + az * az
    qb = q0x * ax + q0y * ay + q0z * az
    qc = q0x * q0x + q0y * q0y + q0z * q0z - rho_max * rho_max
    disc = qb * qb - qa * qc
    if disc <= 0.0:
        return z_lo, z_lo
    root = math.sqrt(disc)
    cz = rows[i, CENTER + 2]
    a = math.ceil(((-qb - root) / qa + cz) / sz)
    b = math.floor(((-qb + root) / qa + cz) / sz) + 1
    return max(a, z_lo), min(b, z_hi)


# error_model="numpy": IEEE division without Python's zero-divisor checks (no divisor here is zero;
# the checks cost the hot loops 5 %)
@njit(cache=True, error_model="numpy")
def _lesion_row(organ, spacing, rows, bounds, far, i, tex, x, y, a, b, z0, key, dhu, disp, state):
    """Add lesion ``i``'s effect on voxels z in [a, b) of row (x, y) to the row buffers.

    ``key``/``dhu``: strongest weight so far and its HU change (the voxel belongs to the lesion it is
    most inside); ``disp``: summed mass-effect displacement, mm; ``state``: bit 1 touched, bit 2
    tumour. The lesion's parameters are read once per row, not once per voxel; ``bounds``
    (:func:`~tumorsynth.kernels.cpu.bounds.radial_bounds`) sends voxels deep inside or out of reach
    in their direction past the shape's evaluation, and beyond unit-ball radius ``far`` (their
    largest) the lesion reaches nothing.
    """
    dx = x * spacing[0] - rows[i, CENTER]
    dy = y * spacing[1] - rows[i, CENTER + 1]
    cz, sz = rows[i, CENTER + 2], spacing[2]
    m = TO_UNIT
    q0x = rows[i, m] * dx + rows[i, m + 1] * dy
    q0y = rows[i, m + 3] * dx + rows[i, m + 4] * dy
    q0z = rows[i, m + 6] * dx + rows[i, m + 7] * dy
    ax, ay, az = rows[i, m + 2], rows[i, m + 5], rows[i, m + 8]
    inner = rows[i, INNER_RHO]
    sigma, delta = rows[i, EDGE_SIGMA], rows[i, DELTA_HU]
    core, core_delta = rows[i, NECRO_RHO], rows[i, NECRO_DELTA]
    k, reach = rows[i, MASS_K], rows[i, MASS_REACH]
    f_in = cbrt(1.0 - k) if k > 0.0 else 1.0
    thick, caps_hu = rows[i, CAPS_T], rows[i, CAPS_HU]
    h = rows[i, TEX_H]
    inv_h = 1.0 / h
    n1, n2 = int(rows[i, TEX_N + 1]), int(rows[i, TEX_N + 2])
    g0 = min(max(dx / h - rows[i, TEX_LO], 0.0), rows[i, TEX_N] - 1.000001)
    g1 = min(max(dy / h - rows[i, TEX_LO + 1], 0.0), n1 - 1.000001)
    t0, t1 = int(g0), int(g1)
    f0, f1 = g0 - t0, g1 - t1
    base_k = int(rows[i, TEX_OFFSET]) + (t0 * n1 + t1) * n2
    w00, w01, w10, w11 = (1 - f0) * (1 - f1), (1 - f0) * f1, f0 * (1 - f1), f0 * f1
    in_plane2 = dx * dx + dy * dy
    for z in range(a, b):
        if organ[x, y, z] == 0:
            continue
        dz = z * sz - cz
        qx, qy, qz = q0x + dz * ax, q0y + dz * ay, q0z + dz * az
        rho = math.sqrt(qx * qx + qy * qy + qz * qz)
        if rho >= far:
            continue
        deep = rho <= inner or rho < 1e-9
        if not deep:
            face, ci, cj = cell_of(qx, qy, qz)
            if rho >= bounds[i, face, ci, cj, 1]:
                continue
            deep = rho <= bounds[i, face, ci, cj, 0]
        if deep:
            inside, w, cap, f = True, 1.0, 0.0, f_in
        else:
            inv_rho = 1.0 / rho  # one division, reused: divisions dominate this loop otherwise
            big_r = radial(rows, i, qx * inv_rho, qy * inv_rho, qz * inv_rho)
            sd = math.sqrt(in_plane2 + dz * dz) * (1.0 - big_r * inv_rho)
            inside = rho <= big_r
            w = edge_weight(sd, sigma)
            cap = capsule_profile(sd, thick)
            f = mass_factor(rho, big_r, sd, inside, k, reach)
        j = z - z0
        if f != 1.0:
            disp[j, 0] += dx * (f - 1.0)
            disp[j, 1] += dy * (f - 1.0)
            disp[j, 2] += dz * (f - 1.0)
        state[j] |= 3 if inside else 1
        weight = max(w, cap)
        if weight > key[j]:
            key[j] = weight
            g2 = min(max(dz * inv_h - rows[i, TEX_LO + 2], 0.0), n2 - 1.000001)
            t2 = int(g2)
            f2 = g2 - t2
            kk = base_k + t2
            lo_v = w00 * tex[kk] + w01 * tex[kk + n2] + w10 * tex[kk + n1 * n2]
            lo_v += w11 * tex[kk + n1 * n2 + n2]
            hi_v = w00 * tex[kk + 1] + w01 * tex[kk + n2 + 1] + w10 * tex[kk + n1 * n2 + 1]
            hi_v += w11 * tex[kk + n1 * n2 + n2 + 1]
            texture = lo_v * (1.0 - f2) + hi_v * f2
            necrosis = necrosis_weight(rho, core)
            dhu[j] = blend(w, delta, texture, necrosis, core_delta, cap, caps_hu)


@njit(cache=True, inline="always")
def _clear(key, dhu, disp, state, j0, j1):
    """Reset entries [j0, j1) of the row buffers (only the part of a row that lesions reach)."""
    for j in range(j0, j1):
        key[j] = 0.0
        dhu[j] = 0.0
        disp[j, 0] = 0.0
        disp[j, 1] = 0.0
        disp[j, 2] = 0.0
        state[j] = 0


@njit(cache=True, inline="always")
def _sample(image, organ, x, y, z):
    """Trilinear sample of ``image`` at voxel coordinates, or NaN when the nearest voxel is outside
    the organ (tissue is never pulled in from outside)."""
    n0, n1, n2 = image.shape
    x = min(max(x, 0.0), n0 - 1.0)
    y = min(max(y, 0.0), n1 - 1.0)
    z = min(max(z, 0.0), n2 - 1.0)
    if organ[int(x + 0.5), int(y + 0.5), int(z + 0.5)] == 0:
        return math.nan
    i, j, k = min(int(x), n0 - 2), min(int(y), n1 - 2), min(int(z), n2 - 2)
    f, g, h = x - i, y - j, z - k
    c00 = image[i, j, k] * (1 - h) + image[i, j, k + 1] * h
    c01 = image[i, j + 1, k] * (1 - h) + image[i, j + 1, k + 1] * h
    c10 = image[i + 1, j, k] * (1 - h) + image[i + 1, j, k + 1] * h
    c11 = image[i + 1, j + 1, k] * (1 - h) + image[i + 1, j + 1, k + 1] * h
    return (c00 * (1 - g) + c01 * g) * (1 - f) + (c10 * (1 - g) + c11 * g) * f


def render_lesions(image, organ, out, label, spacing, rows, tiles, tile_ptr, tile_lesions, tex):
    """Render packed lesions into ``out`` (float32) and ``label`` (uint8), in place.

    Parameters
    ----------
    image, organ : (X, Y, Z) arrays
        The input CT (HU, any real dtype) and the 0/1 organ mask; read only.
    out, label : (X, Y, Z) arrays
        Copies of the image (float32) and of the organ mask (uint8) to write into.
    spacing : (3,) float64
        Voxel size, mm.
    rows : (L, N_FIELDS) float64
        Packed lesions (``tumorsynth.kernels.layout``).
    tiles : (T, 6) int64
        Disjoint voxel boxes (``lo`` inclusive, ``hi`` exclusive) covering every lesion's reach.
    tile_ptr, tile_lesions : int64
        The lesions that may reach tile ``t`` are ``tile_lesions[tile_ptr[t]:tile_ptr[t + 1]]``.
    tex : (N,) float32
        All lesions' texture lattices, flat.

    Notes
    -----
    Each row of a tile is cut, analytically, into the span each lesion reaches (along a row the
    unit-ball radius squared is a quadratic in z); each lesion then adds its effect to small row
    buffers, which are composited and written once. Per-direction bounds of each lesion's radius
    (:func:`~tumorsynth.kernels.cpu.bounds.radial_bounds`) skip the shape's evaluation away from its
    surface; they change no value.
    """
    bounds = radial_bounds(rows, CURVATURE)
    reach = bounds[..., 1].max(axis=(1, 2, 3))  # at most FAR_RHO, often well below
    workers = max(min(get_num_threads(), tiles.shape[0]), 1)
    _render_tiles(
        image, organ, out, label, spacing, rows, bounds, reach, tiles, tile_ptr, tile_lesions, tex,
        workers,
    )  # fmt: skip


@njit(cache=True, parallel=True, error_model="numpy")
def _render_tiles(
    image, organ, out, label, spacing, rows, bounds, reach, tiles, tile_ptr, tile_lesions, tex,
    workers,
):  # fmt: skip
    """:func:`render_lesions` with the per-direction ``bounds``, their largest unit-ball radius
    ``reach`` per lesion, and the tiles dealt out to ``workers`` threads in turn.

    In turn rather than in contiguous blocks (numba's static schedule): neighbouring tiles cost
    alike, so each thread gets its share of every lesion (blocks left one thread with up to 1.3x
    the other's work).
    """
    for w in prange(workers):
        for t in range(w, tiles.shape[0], workers):
            _render_tile(
                image, organ, out, label, spacing, rows, bounds, reach, tiles, tile_ptr,
                tile_lesions, tex, t,
            )  # fmt: skip


@njit(cache=True, error_model="numpy")
def _render_tile(
    image, organ, out, label, spacing, rows, bounds, reach, tiles, tile_ptr, tile_lesions, tex, t
):
    """Render tile ``t`` (see :func:`render_lesions`)."""
    first, last = tile_ptr[t], tile_ptr[t + 1]
    z0, z1 = tiles[t, 2], tiles[t, 5]
    nz = z1 - z0
    key = np.empty(nz)
    dhu = np.empty(nz)
    disp = np.empty((nz, 3))
    state = np.empty(nz, np.uint8)
    for x in range(tiles[t, 0], tiles[t, 3]):
        for y in range(tiles[t, 1], tiles[t, 4]):
            lo, hi = z1, z0
            for q in range(first, last):
                i = tile_lesions[q]
                dx = x * spacing[0] - rows[i, CENTER]
                dy = y * spacing[1] - rows[i, CENTER + 1]
                a, b = _row_span(rows, i, dx, dy, spacing[2], z0, z1, reach[i])
                if a >= b:
                    continue
                if lo >= hi:
                    lo, hi = a, a
                _clear(key, dhu, disp, state, min(lo, a) - z0, lo - z0)
                _clear(key, dhu, disp, state, hi - z0, max(hi, b) - z0)
                lo, hi = min(lo, a), max(hi, b)
                _lesion_row(
                    organ,
                    spacing,
                    rows,
                    bounds,
                    reach[i],
                    i,
                    tex,
                    x,
                    y,
                    a,
                    b,
                    z0,
                    key,
                    dhu,
                    disp,
                    state,
                )
            for z in range(lo, hi):
                j = z - z0
                if state[j] == 0:
                    continue
                base = image[x, y, z]
                if disp[j, 0] != 0.0 or disp[j, 1] != 0.0 or disp[j, 2] != 0.0:
                    moved = _sample(
                        image,
                        organ,
                        x + disp[j, 0] / spacing[0],
                        y + disp[j, 1] / spacing[1],
                        z + disp[j, 2] / spacing[2],
                    )
                    if not math.isnan(moved):
                        base = moved
                out[x, y, z] = base + dhu[j]
                if state[j] & 2:
                    label[x, y, z] = 2
