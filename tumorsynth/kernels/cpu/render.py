"""The fused render kernel: every stage of every lesion, one pass over the lesions' boxes.

Each output voxel is a pure function of the input image, the organ mask and the packed lesions that
reach it. The volume around the lesions is cut into disjoint tiles, each with the short list of lesions
that may reach it, and the tiles are processed in parallel: every voxel is written once.
"""

from __future__ import annotations

import math

import numpy as np
from numba import get_num_threads, njit, prange

from tumorsynth.kernels.cpu.bounds import CURVATURE, radial_bounds
from tumorsynth.kernels.cpu.shape import radial, unit_coords
from tumorsynth.kernels.cpu.slab import N_ROW, N_VAL, apply, collect, shell_terms
from tumorsynth.kernels.layout import CENTER, FAR_RHO, INNER_RHO, MASS_K, TEX_N, TO_UNIT


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


@njit(cache=True, inline="always")
def _clear(state, j0, j1):
    """Mark entries [j0, j1) of the slab buffers untouched (only the part of a row that lesions
    reach; :func:`~.slab.apply` zeroes the other buffers' entry when it first touches one)."""
    for j in range(j0, j1):
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
    A tile is rendered one slab (the rows of one x) at a time. Each row is cut, analytically, into
    the span each lesion reaches (along a row the unit-ball radius squared is a quadratic in z);
    each lesion then adds its effect on its spans to the slab's buffers (:mod:`.slab`), which are
    composited and written once. Per-direction bounds of each lesion's radius
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
    ny = max(tiles[:, 4] - tiles[:, 1]) if tiles.shape[0] else 0
    nz = max(tiles[:, 5] - tiles[:, 2]) if tiles.shape[0] else 0
    n_tex = int(rows[:, TEX_N + 2].max()) if rows.shape[0] else 0
    for w in prange(workers):
        buffers = _slab_buffers(ny, nz, n_tex)
        for t in range(w, tiles.shape[0], workers):
            _render_tile(
                image, organ, out, label, spacing, rows, bounds, reach, tiles, tile_ptr,
                tile_lesions, tex, t, buffers,
            )  # fmt: skip


@njit(cache=True)
def _slab_buffers(ny, nz, n_tex):
    """A thread's buffers for slabs of up to ``ny`` rows of ``nz`` voxels, for lesions of up to
    ``n_tex`` texture nodes along z (see :mod:`.slab`)."""
    n = ny * nz
    return (
        np.empty(n),  # key
        np.empty(n),  # dhu
        np.empty(n),  # hold
        np.empty((n, 3)),  # disp
        np.empty(n, np.uint8),  # state
        np.empty((2, 2, n), np.int64),  # idx
        np.empty((2, N_VAL, n)),  # val
        np.empty((N_ROW, ny)),  # row_f
        np.empty((ny, n_tex)),  # row_tex
        np.empty((4, ny), np.int64),  # spans (a, b) of a lesion, the rows' extents (lo, hi)
    )


@njit(cache=True, error_model="numpy")
def _render_tile(
    image, organ, out, label, spacing, rows, bounds, reach, tiles, tile_ptr, tile_lesions, tex, t,
    buffers,
):  # fmt: skip
    """Render tile ``t`` (see :func:`render_lesions`), one slab of rows (one x) at a time."""
    key, dhu, hold, disp, state, idx, val, row_f, row_tex, spans = buffers
    first, last = tile_ptr[t], tile_ptr[t + 1]
    y0, y1, z0, z1 = tiles[t, 1], tiles[t, 4], tiles[t, 2], tiles[t, 5]
    ny, nz = y1 - y0, z1 - z0
    span_a, span_b, lo, hi = spans[0, :ny], spans[1, :ny], spans[2, :ny], spans[3, :ny]
    moves = False  # whether any of the tile's lesions displaces tissue (else disp stays 0)
    for q in range(first, last):
        moves = moves or rows[tile_lesions[q], MASS_K] > 0.0
    for x in range(tiles[t, 0], tiles[t, 3]):
        lo[:] = z1
        hi[:] = z0
        for q in range(first, last):
            i = tile_lesions[q]
            dx = x * spacing[0] - rows[i, CENTER]
            any_row = False
            for r in range(ny):
                dy = (y0 + r) * spacing[1] - rows[i, CENTER + 1]
                a, b = _row_span(rows, i, dx, dy, spacing[2], z0, z1, reach[i])
                span_a[r], span_b[r] = a, b
                if a >= b:
                    continue
                any_row = True
                if lo[r] >= hi[r]:
                    lo[r], hi[r] = a, a
                _clear(state, r * nz + min(lo[r], a) - z0, r * nz + lo[r] - z0)
                _clear(state, r * nz + hi[r] - z0, r * nz + max(hi[r], b) - z0)
                lo[r], hi[r] = min(lo[r], a), max(hi[r], b)
            if not any_row:
                continue
            n_deep, n_shell = collect(
                organ, spacing, rows, bounds, reach[i], i, tex, x, y0, span_a, span_b, z0, nz, idx,
                val, row_f, row_tex,
            )  # fmt: skip
            shell_terms(rows, i, val[1], n_shell)
            apply(
                rows, i, idx, val, n_deep, n_shell, row_f, row_tex, key, dhu, hold, disp, state,
                moves, (x, y0, z0, nz),
            )  # fmt: skip
        for r in range(ny):
            y = y0 + r
            for z in range(lo[r], hi[r]):
                j = r * nz + z - z0
                if state[j] == 0:
                    continue
                base = image[x, y, z]
                if (
                    moves
                    and (disp[j, 0] != 0.0 or disp[j, 1] != 0.0 or disp[j, 2] != 0.0)
                    and organ[x, y, z] != 0  # tissue moves only in the organ
                ):
                    moved = _sample(
                        image,
                        organ,
                        x + disp[j, 0] / spacing[0],
                        y + disp[j, 1] / spacing[1],
                        z + disp[j, 2] / spacing[2],
                    )
                    if not math.isnan(moved):
                        base = moved
                if hold[j] == 0.0:
                    out[x, y, z] = base + dhu[j]
                else:  # a replacing lesion: its tissue takes the host's place
                    out[x, y, z] = base + (dhu[j] - hold[j] * base)
                if state[j] & 2:
                    label[x, y, z] = 2
