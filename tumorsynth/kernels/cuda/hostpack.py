"""Host side of the GPU kernels: their inputs laid out in one buffer (one upload).

Pure NumPy (no CuPy), so that DataLoader workers on machines without a GPU can pack ahead of the
training step. :func:`tumorsynth.engine.batch.pack_batch` fills it from params; here are the
buffer (:class:`HostPack`), the per-lesion texture metadata that ``_src/texture.cu`` reads to build
the texture lattices on the device, and the blur weights both backends share.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tumorsynth.errors import InputError
from tumorsynth.kernels.cpu.texture import CELLS_PER_SIGMA, RADIUS
from tumorsynth.kernels.hashing import hash_u32_np
from tumorsynth.kernels.layout import TILE

__all__ = [
    "HostPack",
    "assemble",
    "gauss_weights",
    "pack_textures",
    "texture_meta",
    "texture_tables",
    "texture_weights",
    "tile_dims",
]

# per-lesion texture metadata (float64; integers are exact), read by texture.cu
TM_H, TM_HA, TM_BASE, TM_SCALE, TM_DSTD, TM_MEAN = 0, 1, 2, 3, 4, 5
TM_SQRT_NORM, TM_VOL, TM_EXPECTED, TM_SEED_A, TM_SEED_C = 6, 7, 8, 9, 10
TM_LO, TM_S, TM_ALO, TM_AN = 11, 14, 17, 20
TM_N = 24
N_STAGES = 6  # texture passes: density X, Y, Z, salt X, Y, Z (the last writes the lattice)


def tile_dims(tile=None) -> tuple[int, int, int]:
    """Per-axis tile size (voxels) of ``tile`` (an int or 3 ints; None: ``kernels.layout.TILE``),
    rounded up to powers of two: the block of voxels one group of render threads covers."""
    sizes = np.broadcast_to(np.asarray(TILE if tile is None else tile, np.int64), (3,))
    if sizes.min() < 1 or sizes.prod() > 1 << 16:
        raise InputError(f"tile must be 1 to 65536 voxels in all, positive per axis, got {tile!r}")
    return tuple(1 << int(n - 1).bit_length() for n in sizes)  # type: ignore[return-value]


def _seq_sum(values) -> float:
    """Left-to-right sum (numba's ``np.sum`` order: NumPy sums 8 or more values pairwise)."""
    total = 0.0
    for v in values:
        total += float(v)
    return total


def gauss_weights(sigma_vox: float) -> tuple[np.ndarray, int]:
    """Normalised Gaussian weights truncated at 3 sigma, as ``kernels.cpu.organ._gauss``."""
    r = int(3.0 * sigma_vox + 0.5)
    w = np.empty(2 * r + 1)
    for k in range(-r, r + 1):
        if sigma_vox > 0:
            q = k / sigma_vox
            w[k + r] = math.exp(-0.5 * (q * q))
        else:
            w[k + r] = 1.0 if k == 0 else 0.0
    return w / _seq_sum(w), r


def texture_weights() -> tuple[np.ndarray, float]:
    """The texture blur's weights and ``sqrt(sum(w**2) ** 1.5)``, as ``kernels.cpu.texture``."""
    w = np.empty(2 * RADIUS + 1)
    for k in range(-RADIUS, RADIUS + 1):
        q = k / CELLS_PER_SIGMA
        w[k + RADIUS] = math.exp(-0.5 * (q * q))
    w = w / _seq_sum(w)
    return w, math.sqrt(_seq_sum(w * w) ** 1.5)


def texture_meta(tp, lo, shape, sqrt_norm: float) -> tuple[np.ndarray, np.ndarray]:
    """Texture metadata of one lesion and the element counts of its six passes."""
    r = RADIUS
    h = tp.grain_sigma_mm / CELLS_PER_SIGMA
    ha = tp.density_sigma_mm / CELLS_PER_SIGMA
    m = np.zeros(TM_N)
    a_lo = [math.floor((int(lo[a]) - r) * h / ha) for a in range(3)]
    a_n = [
        math.floor((int(lo[a]) + int(shape[a]) + r - 1) * h / ha) + 2 - a_lo[a] for a in range(3)
    ]
    vol = h * h * h
    m[[TM_H, TM_HA, TM_BASE, TM_SCALE, TM_DSTD, TM_MEAN]] = (
        h,
        ha,
        tp.base,
        tp.scale,
        tp.density_std,
        tp.mean,
    )
    m[TM_SQRT_NORM], m[TM_VOL] = sqrt_norm, vol
    m[TM_EXPECTED] = (tp.base + 0.5 * tp.scale) * vol
    m[TM_SEED_A] = int(hash_u32_np(tp.seed, 1, 0, 0))
    m[TM_SEED_C] = int(hash_u32_np(tp.seed, 2, 0, 0))
    m[TM_LO : TM_LO + 3] = lo
    m[TM_S : TM_S + 3] = shape
    m[TM_ALO : TM_ALO + 3] = a_lo
    m[TM_AN : TM_AN + 3] = a_n
    (a0, a1, a2), (s0, s1, s2) = a_n, [int(v) for v in shape]
    e = 2 * r
    sizes = np.array(
        [
            a0 * (a1 + e) * (a2 + e),
            a0 * a1 * (a2 + e),
            a0 * a1 * a2,
            s0 * (s1 + e) * (s2 + e),
            s0 * s1 * (s2 + e),
            s0 * s1 * s2,
        ],
        np.int64,
    )
    return m, sizes


@dataclass(frozen=True)
class HostPack:
    """Kernel inputs for a batch of volumes, in one host buffer (uploaded with one copy).

    Attributes
    ----------
    buffer : numpy.ndarray
        uint8 bytes of every array in ``fields`` (each 8-byte aligned).
    fields : dict
        name -> (byte offset, dtype string, shape).
    n_items, n_lesions, n_tiles : int
        Volumes, lesions of all volumes, and render tiles.
    tile : tuple of int
        Tile size along (X, Y, Z), voxels (powers of two; see :func:`tile_dims`).
    volume_shape : tuple of int
        (X, Y, Z) shared by every volume of the batch.
    stage_base : tuple of int
        Start of texture passes 0-4 in the float64 scratch buffer.
    scratch_size, tex_size : int
        float64 scratch and float32 lattice elements the texture passes need.
    stage_total : tuple of int
        Elements (threads) of each of the six texture passes.
    """

    buffer: np.ndarray
    fields: dict
    n_items: int
    n_lesions: int
    n_tiles: int
    tile: int
    volume_shape: tuple
    stage_base: tuple
    stage_total: tuple
    scratch_size: int
    tex_size: int

    def view(self, name: str) -> np.ndarray:
        """Host view of one packed array."""
        offset, dtype, shape = self.fields[name]
        count = int(np.prod(shape, dtype=np.int64))
        return (
            self.buffer[offset : offset + count * np.dtype(dtype).itemsize]
            .view(dtype)
            .reshape(shape)
        )


def assemble(arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, dict]:
    fields, offset = {}, 0
    for name, a in arrays.items():
        fields[name] = (offset, a.dtype.str, a.shape)
        offset += (a.nbytes + 7) // 8 * 8
    buffer = np.zeros(max(offset, 8), np.uint8)
    for name, a in arrays.items():
        start = fields[name][0]
        buffer[start : start + a.nbytes] = np.ascontiguousarray(a).reshape(-1).view(np.uint8)
    return buffer, fields


def texture_tables(metas: list[np.ndarray], sizes: list[np.ndarray]):
    n = len(metas)
    tm = np.array(metas, np.float64).reshape(n, TM_N)
    counts = np.array(sizes, np.int64).reshape(n, N_STAGES)
    prefix = np.zeros((N_STAGES, n + 1), np.int64)
    prefix[:, 1:] = np.cumsum(counts, axis=0).T
    totals = tuple(int(v) for v in prefix[:, -1])
    base = np.concatenate([[0], np.cumsum(totals[:5])]).astype(np.int64)
    return tm, prefix, totals, base


def pack_textures(items: Sequence[tuple]) -> HostPack:
    """Texture metadata only, for ``(TextureParams-like, lo, shape)`` triples (``texture_grid``)."""
    w, sqrt_norm = texture_weights()
    metas, sizes = [], []
    for tp, lo, shape in items:
        m, s = texture_meta(tp, lo, shape, sqrt_norm)
        metas.append(m)
        sizes.append(s)
    tm, prefix, totals, base = texture_tables(metas, sizes)
    buffer, fields = assemble({"tm": tm, "prefix": prefix, "stage_base": base[:5], "w": w})
    return HostPack(
        buffer,
        fields,
        0,
        len(metas),
        0,
        (1, 1, 1),
        (0, 0, 0),
        tuple(int(b) for b in base[:5]),
        totals,
        int(base[5]),
        totals[5],
    )
