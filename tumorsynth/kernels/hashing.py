r"""Counter-based randomness: a stateless hash of (seed, i, j, k).

Per-voxel and per-lattice-node noise is a pure function of a 32-bit seed and integer coordinates, so
any voxel can be computed alone, in any order, on any device, with the same result. The mixer is
Chris Wellons' ``lowbias32`` integer hash; all arithmetic is on unsigned 32-bit values held in
``uint64`` so that NumPy, numba and CUDA agree bit for bit.

.. math:: h(s, i, j, k) = m(k \oplus m(j \oplus m(i \oplus m(s))))

Uniforms are the top 24 bits of a hash, scaled to :math:`[0, 1)`. Lattice noise that is smoothed
afterwards uses centred uniforms of unit variance (the smoothing makes it Gaussian); normals, where
needed, use Box-Muller on two hashes.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "derive_seed",
    "hash_u32",
    "hash_u32_np",
    "mix_u32",
    "mix_u32_np",
    "normal_np",
    "seed_u32",
    "uniform_np",
    "unit_noise",
    "unit_noise_np",
]

_M32 = np.uint64(0xFFFFFFFF)
_C1 = np.uint64(0x7FEB352D)
_C2 = np.uint64(0x846CA68B)
_GOLDEN = np.uint64(0x9E3779B9)
_S16 = np.uint64(16)
_S15 = np.uint64(15)
_S8 = np.uint64(8)
_INV24 = 1.0 / 16777216.0


@njit(cache=True, inline="always")
def _mix(x):
    x = x & _M32
    x ^= x >> _S16
    x = (x * _C1) & _M32
    x ^= x >> _S15
    x = (x * _C2) & _M32
    x ^= x >> _S16
    return x


@njit(cache=True, inline="always")
def hash_u32(seed, i, j, k):
    """32-bit hash of a seed and three integer coordinates (numba; coordinates may be negative)."""
    h = _mix(np.uint64(seed) & _M32)
    h = _mix(h ^ (np.uint64(i & 0xFFFFFFFF)))
    h = _mix(h ^ (np.uint64(j & 0xFFFFFFFF)))
    return _mix(h ^ (np.uint64(k & 0xFFFFFFFF)))


@njit(cache=True, inline="always")
def mix_u32(h, v):
    """One step of the hash chain: ``hash_u32(s, i, j, k) == mix_u32(mix_u32(mix_u32(
    mix_u32(s, ...)...`` - lets loops hoist the outer coordinates' steps."""
    return _mix(h ^ (np.uint64(v & 0xFFFFFFFF)))


@njit(cache=True, inline="always")
def seed_u32(seed):
    """First step of the hash chain."""
    return _mix(np.uint64(seed) & _M32)


@njit(cache=True, inline="always")
def unit_noise(h):
    """Zero-mean, unit-variance noise from a hash: a centred uniform scaled by sqrt(12)."""
    return (float(h >> _S8) * _INV24 - 0.5) * 3.4641016151377544


@njit(cache=True, inline="always")
def normal_at(seed, i, j, k):
    """Standard normal sample at lattice node (i, j, k) (numba, Box-Muller on two hashes)."""
    h1 = hash_u32(seed, i, j, k)
    h2 = _mix(h1 ^ _GOLDEN)
    u1 = (float(h1 >> _S8) + 1.0) * _INV24
    u2 = float(h2 >> _S8) * _INV24
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def _mix_np(x: np.ndarray) -> np.ndarray:
    x = x & _M32
    x ^= x >> _S16
    x = (x * _C1) & _M32
    x ^= x >> _S15
    x = (x * _C2) & _M32
    x ^= x >> _S16
    return x


def mix_u32_np(h, v) -> np.ndarray:
    """NumPy twin of :func:`mix_u32`."""
    return _mix_np(np.asarray(h, np.uint64) ^ _u32(v))


def _u32(a) -> np.ndarray:
    return np.asarray(a, dtype=np.int64).astype(np.uint64) & _M32


def hash_u32_np(seed, i, j, k) -> np.ndarray:
    """NumPy twin of :func:`hash_u32`, broadcasting over array coordinates."""
    h = _mix_np(_u32(seed))
    h = _mix_np(h ^ _u32(i))
    h = _mix_np(h ^ _u32(j))
    return _mix_np(h ^ _u32(k))


def unit_noise_np(seed, i, j, k) -> np.ndarray:
    """NumPy twin of ``unit_noise(hash_u32(seed, i, j, k))``."""
    return (uniform_np(seed, i, j, k) - 0.5) * 3.4641016151377544


def uniform_np(seed, i, j, k) -> np.ndarray:
    """Uniform samples in [0, 1) at integer coordinates (NumPy)."""
    return (hash_u32_np(seed, i, j, k) >> _S8).astype(np.float64) * _INV24


def normal_np(seed, i, j, k) -> np.ndarray:
    """Standard normal samples at integer coordinates (NumPy twin of ``normal_at``)."""
    h1 = hash_u32_np(seed, i, j, k)
    h2 = _mix_np(h1 ^ _GOLDEN)
    u1 = ((h1 >> _S8).astype(np.float64) + 1.0) * _INV24
    u2 = (h2 >> _S8).astype(np.float64) * _INV24
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def derive_seed(seed: int, stream: int) -> int:
    """An independent 32-bit seed for sub-stream ``stream`` of ``seed`` (host side)."""
    return int(hash_u32_np(seed, stream, 0x5EED, 0))
