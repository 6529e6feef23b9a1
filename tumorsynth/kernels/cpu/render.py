"""The fused render kernel: every stage of every lesion, one pass over the lesions' boxes.

Each output voxel is a pure function of the input image, the organ mask and the packed lesions that
reach it. The volume around the lesions is cut into disjoint tiles, each with the short list of lesions
that may reach it, and the tiles are processed in parallel: every voxel is written once.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from tumorsynth.kernels.cpu.shape import cbrt, radial, unit_coords
from tumorsynth.kernels.cpu.texture import _trilinear
from tumorsynth.kernels.layout import (
    CAPS_HU,
    CAPS_IN,
    CAPS_OUT,
    CAPS_T,
    CENTER,
    DELTA_HU,
    EDGE_REACH,
    EDGE_SIGMA,
    FAR_RHO,
    INNER_RHO,
    MASS_K,
    MASS_REACH,
    NECRO_DELTA,
    NECRO_RHO,
    NECRO_SOFT,
    TEX_H,
    TEX_LO,
    TEX_N,
    TEX_OFFSET,
)

SQRT2 = math.sqrt(2.0)


@njit(cache=True, inline="always")
def _texture(row, tex, dx, dy, dz):
    h = row[TEX_H]
    n0, n1, n2 = int(row[TEX_N]), int(row[TEX_N + 1]), int(row[TEX_N + 2])
    off = int(row[TEX_OFFSET])
    grid = tex[off : off + n0 * n1 * n2].reshape((n0, n1, n2))
    return _trilinear(
        grid, dx / h - row[TEX_LO], dy / h - row[TEX_LO + 1], dz / h - row[TEX_LO + 2]
    )


@njit(cache=True, inline="always")
def lesion_at(row, dx, dy, dz):
    """Shape quantities of one lesion at an offset (dx, dy, dz) mm from its centre.

    Returns (rho, radial R or -1 when deep inside, signed distance mm, inside flag). ``rho`` beyond
    ``FAR_RHO`` means the lesion has no effect here.
    """
    qx, qy, qz = unit_coords(row, dx, dy, dz)
    rho = math.sqrt(qx * qx + qy * qy + qz * qz)
    if rho <= row[INNER_RHO] or rho < 1e-9:
        return rho, -1.0, -math.inf, True
    if rho >= row[FAR_RHO]:
        return rho, -1.0, math.inf, False
    big_r = radial(row, qx / rho, qy / rho, qz / rho)
    sd = math.sqrt(dx * dx + dy * dy + dz * dz) * (1.0 - big_r / rho)
    return rho, big_r, sd, rho <= big_r


@njit(cache=True, inline="always")
def _mass_factor(row, rho, big_r, sd, inside):
    """Radial factor f: the tissue now at offset d came from offset f * d."""
    k = row[MASS_K]
    if k <= 0.0:
        return 1.0
    if inside:
        return cbrt(1.0 - k)
    reach = row[MASS_REACH]
    if sd >= reach:
        return 1.0
    rn = rho / big_r
    u = rn - cbrt(rn * rn * rn - k)
    t = 1.0 - (sd / reach) ** 2
    return (rn - u * t * t) / rn


@njit(cache=True, inline="always")
def _appearance(row, tex, dx, dy, dz, rho, w, cap):
    """HU change of one lesion at a voxel, given its edge weight and capsule profile."""
    d = w * row[DELTA_HU] * _texture(row, tex, dx, dy, dz)
    core = row[NECRO_RHO]
    if core > 0.0:
        n = 0.5 * math.erfc((rho - core) / (NECRO_SOFT * SQRT2))
        d += n * w * (row[NECRO_DELTA] - d)
    if cap > 0.0:
        d += cap * (row[CAPS_HU] - d)
    return d


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


@njit(cache=True, inline="always")
def _voxel(image, organ, spacing, rows, lesions, tex, x, y, z):
    """Composite of the lesions ``lesions`` at voxel (x, y, z): (new HU, is tumour)."""
    px, py, pz = x * spacing[0], y * spacing[1], z * spacing[2]
    ux = uy = uz = 0.0
    best_key = 0.0
    best_d = 0.0
    tumour = False
    for lesion in lesions:
        row = rows[lesion]
        dx, dy, dz = px - row[CENTER], py - row[CENTER + 1], pz - row[CENTER + 2]
        rho, big_r, sd, inside = lesion_at(row, dx, dy, dz)
        if sd == math.inf:
            continue
        f = _mass_factor(row, rho, big_r, sd, inside)
        ux += dx * (f - 1.0)
        uy += dy * (f - 1.0)
        uz += dz * (f - 1.0)
        tumour = tumour or inside
        sigma = row[EDGE_SIGMA]
        if sd <= -EDGE_REACH * sigma:
            w = 1.0
        elif sd >= EDGE_REACH * sigma:
            w = 0.0
        else:
            w = 0.5 * math.erfc(sd / (sigma * SQRT2))
        cap = 0.0
        t = row[CAPS_T]
        if t > 0.0 and -CAPS_IN * t < sd < CAPS_OUT * t:
            cap = math.exp(-0.5 * ((sd + 0.5 * t) / (0.5 * t)) ** 2)
        key = max(w, cap)
        if key > best_key:
            best_key = key
            best_d = _appearance(row, tex, dx, dy, dz, rho, w, cap)
    base = image[x, y, z]
    if ux != 0.0 or uy != 0.0 or uz != 0.0:
        moved = _sample(image, organ, x + ux / spacing[0], y + uy / spacing[1], z + uz / spacing[2])
        if not math.isnan(moved):
            base = moved
    return base + best_d, tumour


@njit(cache=True, parallel=True)
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
    """
    for t in prange(tiles.shape[0]):
        lesions = tile_lesions[tile_ptr[t] : tile_ptr[t + 1]]
        for x in range(tiles[t, 0], tiles[t, 3]):
            for y in range(tiles[t, 1], tiles[t, 4]):
                for z in range(tiles[t, 2], tiles[t, 5]):
                    if organ[x, y, z] == 0:
                        continue
                    value, tumour = _voxel(image, organ, spacing, rows, lesions, tex, x, y, z)
                    out[x, y, z] = value
                    if tumour:
                        label[x, y, z] = 2


@njit(cache=True, parallel=True)
def copy_outputs(image, organ):
    """Fresh float32 copy of the image and uint8 copy of the mask (parallel first touch)."""
    out = np.empty(image.shape, np.float32)
    label = np.empty(organ.shape, np.uint8)
    for x in prange(image.shape[0]):
        for y in range(image.shape[1]):
            for z in range(image.shape[2]):
                out[x, y, z] = image[x, y, z]
                label[x, y, z] = organ[x, y, z]
    return out, label
