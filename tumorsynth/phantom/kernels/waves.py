"""Numba kernels of the built-in phantom (:mod:`tumorsynth.phantom`): sums of plane waves.

Plane waves give the phantom's shapes their low-frequency warps (mm) and its tissues their textures
(HU). :func:`wave_tables` tabulates the waves on a grid's axes; :func:`waves_xy` and :func:`waves_z`
rebuild ``sum(amplitude * sin(kx x + ky y + kz z + phase))`` from those tables by angle addition, so a
kernel pays one multiply-add per wave and voxel. Coordinates are millimetres; arrays are (x, y, z).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["wave_tables", "waves_xy", "waves_z"]


def wave_tables(waves: np.ndarray, xs, ys, zs) -> np.ndarray:
    """Tabulate plane waves on a grid's axes for the kernels.

    Parameters
    ----------
    waves : ndarray, shape (N, 5)
        Rows (kx, ky, kz in rad/mm, phase, amplitude).
    xs, ys, zs : ndarray
        Grid coordinates (mm).

    Returns
    -------
    ndarray of float64, shape (7, N, max(nx, ny, nz))
        sin and cos of ``kx x`` and ``ky y``, cos and sin of ``kz z + phase``, and the amplitude.
    """
    n = max(len(xs), len(ys), len(zs))
    out = np.zeros((7, len(waves), n))
    for a, c in enumerate((xs, ys)):
        arg = waves[:, a : a + 1] * np.asarray(c)[None, :]
        out[2 * a, :, : len(c)] = np.sin(arg)
        out[2 * a + 1, :, : len(c)] = np.cos(arg)
    arg = waves[:, 2:3] * np.asarray(zs)[None, :] + waves[:, 3:4]
    out[4, :, : len(zs)] = np.cos(arg)
    out[5, :, : len(zs)] = np.sin(arg)
    out[6] = waves[:, 4:5]
    return out


@njit(cache=True)
def waves_xy(tab, i, j, sab, cab):
    """sin and cos of (kx x_i + ky y_j) for every wave, by angle addition from the axis tables."""
    for n in range(tab.shape[1]):
        sx, cx, sy, cy = tab[0, n, i], tab[1, n, i], tab[2, n, j], tab[3, n, j]
        sab[n] = sx * cy + cx * sy
        cab[n] = cx * cy - sx * sy


@njit(cache=True)
def waves_z(tab, k, sab, cab):
    """Sum over waves of amplitude * sin(kx x + ky y + kz z + phase) given :func:`waves_xy`."""
    s = 0.0
    for n in range(sab.shape[0]):
        s += tab[6, n, k] * (sab[n] * tab[4, n, k] + cab[n] * tab[5, n, k])
    return s
