"""numba generation of a tumour's texture lattice (see ``tumorsynth.engine.stages.texture``)."""

from __future__ import annotations

import math

import numpy as np
from numba import get_num_threads, njit, prange

from tumorsynth.kernels.hashing import hash_u32, mix_u32, seed_u32, unit_noise

CELLS_PER_SIGMA = 1.0
RADIUS = 3


@njit(cache=True)
def _weights():
    w = np.empty(2 * RADIUS + 1)
    for k in range(-RADIUS, RADIUS + 1):
        w[k + RADIUS] = math.exp(-0.5 * (k / CELLS_PER_SIGMA) ** 2)
    return w / w.sum()


@njit(cache=True)
def _blur_valid(a, w):
    """Separable correlation with ``w`` along each axis, keeping only fully covered nodes.

    Each sum adds its terms in tap order from 0.0 (as the CUDA kernel does); the loop over nodes is
    innermost, so it vectorises.
    """
    r = (w.size - 1) // 2
    n0, n1, n2 = a.shape
    m0, m1, m2 = n0 - 2 * r, n1 - 2 * r, n2 - 2 * r
    b = np.zeros((m0, n1, n2))
    for i in range(m0):
        for t in range(w.size):
            for j in range(n1):
                for k in range(n2):
                    b[i, j, k] += w[t] * a[i + t, j, k]
    c = np.zeros((m0, m1, n2))
    for i in range(m0):
        for j in range(m1):
            for t in range(w.size):
                for k in range(n2):
                    c[i, j, k] += w[t] * b[i, j + t, k]
    d = np.zeros((m0, m1, m2))
    for i in range(m0):
        for j in range(m1):
            for t in range(w.size):
                for k in range(m2):
                    d[i, j, k] += w[t] * c[i, j, k + t]
    return d


@njit(cache=True)
def _white(seed, lo0, lo1, lo2, n0, n1, n2):
    """Unit-variance white noise at lattice nodes ``lo + (i, j, k)``."""
    a = np.empty((n0, n1, n2))
    h0 = seed_u32(seed)
    for i in range(n0):
        h1 = mix_u32(h0, lo0 + i)
        for j in range(n1):
            h2 = mix_u32(h1, lo1 + j)
            for k in range(n2):
                a[i, j, k] = unit_noise(mix_u32(h2, lo2 + k))
    return a


@njit(cache=True, inline="always")
def _trilinear(a, g0, g1, g2):
    n0, n1, n2 = a.shape
    g0 = min(max(g0, 0.0), n0 - 1.000001)
    g1 = min(max(g1, 0.0), n1 - 1.000001)
    g2 = min(max(g2, 0.0), n2 - 1.000001)
    i, j, k = int(g0), int(g1), int(g2)
    f, g, h = g0 - i, g1 - j, g2 - k
    c00 = a[i, j, k] * (1 - h) + a[i, j, k + 1] * h
    c01 = a[i, j + 1, k] * (1 - h) + a[i, j + 1, k + 1] * h
    c10 = a[i + 1, j, k] * (1 - h) + a[i + 1, j, k + 1] * h
    c11 = a[i + 1, j + 1, k] * (1 - h) + a[i + 1, j + 1, k + 1] * h
    return (c00 * (1 - g) + c01 * g) * (1 - f) + (c10 * (1 - g) + c11 * g) * f


@njit(cache=True)
def texture_grid(seed, density_sigma_mm, grain_sigma_mm, base, scale, density_std, mean, lo, shape):
    """Texture values at lattice nodes ``lo + (0..shape-1)`` (spacing ``grain_sigma_mm`` mm,
    centred on the tumour), float32 of shape ``shape``."""
    w = _weights()
    norm = np.sum(w * w) ** 1.5  # variance of the blurred unit white noise
    h = grain_sigma_mm / CELLS_PER_SIGMA
    ha = density_sigma_mm / CELLS_PER_SIGMA
    seed_a = hash_u32(seed, 1, 0, 0)
    seed_c = hash_u32(seed, 2, 0, 0)
    r = RADIUS
    # density lattice: covers the extended salt lattice, plus the blur margin
    a_lo = np.empty(3, np.int64)
    a_n = np.empty(3, np.int64)
    for ax in range(3):
        a_lo[ax] = math.floor((lo[ax] - r) * h / ha)
        a_n[ax] = math.floor((lo[ax] + shape[ax] + r - 1) * h / ha) + 2 - a_lo[ax]
    za = _white(
        seed_a,
        a_lo[0] - r,
        a_lo[1] - r,
        a_lo[2] - r,
        a_n[0] + 2 * r,
        a_n[1] + 2 * r,
        a_n[2] + 2 * r,
    )
    za = _blur_valid(za, w) / math.sqrt(norm)
    # salt counts on the extended lattice
    vol = h * h * h
    e0, e1, e2 = shape[0] + 2 * r, shape[1] + 2 * r, shape[2] + 2 * r
    noise = _white(seed_c, lo[0] - r, lo[1] - r, lo[2] - r, e0, e1, e2)
    counts = np.empty((e0, e1, e2))
    for i in range(e0):
        g0 = (lo[0] - r + i) * h / ha - a_lo[0]
        for j in range(e1):
            g1 = (lo[1] - r + j) * h / ha - a_lo[1]
            for k in range(e2):
                g2 = (lo[2] - r + k) * h / ha - a_lo[2]
                d = min(max(0.5 + density_std * _trilinear(za, g0, g1, g2), 0.0), 1.0)
                p = base + scale * d
                lam = p * vol
                counts[i, j, k] = lam + math.sqrt(lam * (1.0 - p)) * noise[i, j, k]
    s = _blur_valid(counts, w)
    expected = (base + 0.5 * scale) * vol
    out = np.empty((shape[0], shape[1], shape[2]), np.float32)
    for i in range(shape[0]):
        for j in range(shape[1]):
            for k in range(shape[2]):
                out[i, j, k] = min(max(mean * s[i, j, k] / expected, 0.0), 1.0)
    return out


def texture_grids(seeds, values, lo, shape):
    """Several lesions' lattices at once (in parallel), flat and back to back.

    Parameters
    ----------
    seeds : (L,) int64
        Texture seeds.
    values : (L, 6) float64
        ``density_sigma_mm, grain_sigma_mm, base, scale, density_std, mean`` per lesion.
    lo, shape : (L, 3) int64
        Each lattice's first node and node counts (see :func:`texture_grid`).

    Returns
    -------
    tex : (N,) float32
        Lesion ``i``'s lattice, C order, at ``tex[offsets[i]:offsets[i + 1]]``.
    offsets : (L + 1,) int64
    """
    sizes = np.prod(np.asarray(shape, np.int64).reshape(-1, 3), axis=1)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    tex = np.empty(max(int(offsets[-1]), 1), np.float32)
    order = np.argsort(-sizes, kind="stable")  # largest first, dealt out to the threads in turn
    workers = max(min(get_num_threads(), sizes.size), 1)
    _fill_grids(
        np.asarray(seeds, np.int64), np.asarray(values, np.float64), np.asarray(lo, np.int64),
        np.asarray(shape, np.int64), offsets, order, workers, tex,
    )  # fmt: skip
    return tex, offsets


@njit(cache=True, parallel=True)
def _fill_grids(seeds, values, lo, shape, offsets, order, workers, tex):
    for w in prange(workers):
        for k in range(w, order.size, workers):
            i = order[k]
            v = values[i]
            grid = texture_grid(seeds[i], v[0], v[1], v[2], v[3], v[4], v[5], lo[i], shape[i])
            tex[offsets[i] : offsets[i + 1]] = grid.ravel()
