"""Numba kernels of the built-in phantom (:mod:`tumorsynth.phantom`): correlated CT noise.

White noise is hashed from each voxel's index and a key (deterministic, independent of the thread
count), smoothed by a separable Gaussian (:func:`noise_planes` along y and z, :func:`noise_finish` along
x), scaled, added to the image, rounded and clipped. Arrays are indexed (x, y, z).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["noise_finish", "noise_planes"]


@njit(cache=True)
def _white(key, idx):
    """Approximately standard-normal white noise: a sum of four 16-bit uniforms of a hashed index."""
    z = np.uint64(idx) + key
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    m = np.uint64(0xFFFF)
    s = (z & m) + ((z >> np.uint64(16)) & m) + ((z >> np.uint64(32)) & m) + (z >> np.uint64(48))
    # four uniforms on [0, 65535]: mean 131070, standard deviation 65536 / sqrt(3)
    return (float(s) - 131070.0) * (1.7320508075688772 / 65536.0)


@njit(cache=True, parallel=True)
def noise_planes(buf, key, wy, wz):
    """White noise smoothed along y and z, plane by plane (deterministic from ``key``).

    Parameters
    ----------
    buf : ndarray of float32, shape (X, Y, Z)
        Receives the noise.
    key : uint64
        Noise key (drawn from the phantom's seeded generator).
    wy, wz : ndarray of float64
        Odd-length normalised smoothing kernels along y and z.
    """
    nx, ny, nz = buf.shape
    ry = wy.shape[0] // 2
    rz = wz.shape[0] // 2
    for i in prange(nx):
        white = np.empty((ny, nz + 2 * rz), np.float64)
        tmp = np.empty((ny + 2 * ry, nz), np.float64)
        for j in range(ny):
            for k in range(nz + 2 * rz):
                kk = min(max(k - rz, 0), nz - 1)
                white[j, k] = _white(key, (i * ny + j) * nz + kk)
        for j in range(ny + 2 * ry):
            jj = min(max(j - ry, 0), ny - 1)
            for k in range(nz):
                s = 0.0
                for t in range(2 * rz + 1):
                    s += wz[t] * white[jj, k + t]
                tmp[j, k] = s
        for j in range(ny):
            for k in range(nz):
                s = 0.0
                for t in range(2 * ry + 1):
                    s += wy[t] * tmp[j + t, k]
                buf[i, j, k] = s


@njit(cache=True, parallel=True)
def noise_finish(image, buf, wx, scale, lo_hu, hi_hu):
    """Add ``scale`` times ``buf`` smoothed along x to ``image``, round to integers and clip."""
    nx, ny, nz = image.shape
    rx = wx.shape[0] // 2
    for i in prange(nx):
        for j in range(ny):
            for k in range(nz):
                s = 0.0
                for t in range(2 * rx + 1):
                    ii = min(max(i + t - rx, 0), nx - 1)
                    s += wx[t] * buf[ii, j, k]
                v = round(image[i, j, k] + scale * s)
                image[i, j, k] = min(max(v, lo_hu), hi_hu)
