"""Numba kernels of the built-in phantom (:mod:`tumorsynth.phantom`): compositing.

A structure's SDF (mm, negative inside) is composited ("painted") into the HU volume and the label map
with a partial-volume ramp across its surface (:func:`paint`); the body wall (air, skin, subcutaneous
fat, wall muscle, visceral fat) fills the whole volume first (:func:`body_layers`). Coordinates are
millimetres; arrays are indexed (x, y, z).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from tumorsynth.phantom.kernels.waves import waves_xy, waves_z

__all__ = ["body_layers", "paint"]


@njit(cache=True)
def _step(d, i, j, k, axis, n):
    """Largest one-sided change of ``d`` over one voxel step along ``axis`` at (i, j, k)."""
    c = d[i, j, k]
    best = 0.0
    if axis == 0:
        if i > 0:
            best = abs(c - d[i - 1, j, k])
        if i < n - 1:
            best = max(best, abs(d[i + 1, j, k] - c))
    elif axis == 1:
        if j > 0:
            best = abs(c - d[i, j - 1, k])
        if j < n - 1:
            best = max(best, abs(d[i, j + 1, k] - c))
    else:
        if k > 0:
            best = abs(c - d[i, j, k - 1])
        if k < n - 1:
            best = max(best, abs(d[i, j, k + 1] - c))
    return best


@njit(cache=True, parallel=True)
def paint(image, labels, d, inset_mm, offset, spacing, hu, label, min_width_mm, texture):
    """Composite one structure (SDF ``d`` over a sub-box) into ``image`` and ``labels``.

    The structure is the region ``d + inset_mm < 0``. The fraction of a voxel inside it ramps
    linearly from 1 to 0 across the surface over the voxel's footprint along the surface normal
    (at least ``min_width_mm``): a partial-volume edge. Voxel centres inside take ``label``
    (``label < 0``: labels untouched).

    Parameters
    ----------
    image : ndarray of float32, shape (X, Y, Z)
        HU volume, updated in place.
    labels : ndarray of uint8, shape (X, Y, Z)
        Label map, updated in place.
    d : ndarray of float32, shape (nx, ny, nz)
        SDF (mm) of the structure on the sub-box starting at voxel ``offset``.
    inset_mm : float
        Offset added to ``d`` (positive: paint a layer that deep inside the structure).
    offset : ndarray of int64, shape (3,)
        Index of the sub-box's first voxel in the volume.
    spacing : ndarray of float64, shape (3,)
        Voxel size in mm.
    hu : float
        HU of the structure.
    label : int
        Label value, or -1.
    min_width_mm : float
        Minimum width of the partial-volume ramp (mm).
    texture : ndarray of float64, shape (7, N, max(nx, ny, nz))
        Plane waves added to ``hu`` (amplitudes in HU), tabulated by
        :func:`~tumorsynth.phantom.kernels.waves.wave_tables` (N may be 0).
    """
    nx, ny, nz = d.shape
    sx, sy, sz = spacing[0], spacing[1], spacing[2]
    cap = 0.5 * max(sx + sy + sz, min_width_mm * 1.8) + 1e-3
    nw = texture.shape[1]
    for i in prange(nx):
        sab = np.empty(nw)
        cab = np.empty(nw)
        for j in range(ny):
            if nw > 0:
                waves_xy(texture, i, j, sab, cab)
            for k in range(nz):
                dv = d[i, j, k] + inset_mm
                if dv >= cap:
                    continue
                a = 1.0
                if dv > -cap:
                    gx = _step(d, i, j, k, 0, nx)
                    gy = _step(d, i, j, k, 1, ny)
                    gz = _step(d, i, j, k, 2, nz)
                    w = gx + gy + gz
                    gn = math.sqrt((gx / sx) ** 2 + (gy / sy) ** 2 + (gz / sz) ** 2)
                    w = max(w, min_width_mm * gn)
                    if w > 1e-6:
                        a = min(max(0.5 - dv / w, 0.0), 1.0)
                    elif dv >= 0.0:
                        a = 0.0
                if a <= 0.0:
                    continue
                v = hu
                if nw > 0:
                    v += waves_z(texture, k, sab, cab)
                gi = offset[0] + i
                gj = offset[1] + j
                gk = offset[2] + k
                image[gi, gj, gk] += np.float32(a * (v - image[gi, gj, gk]))
                if dv < 0.0 and label >= 0:
                    labels[gi, gj, gk] = label


@njit(cache=True)
def _ramp(d, w):
    return min(max(0.5 - d / w, 0.0), 1.0)


@njit(cache=True, parallel=True)
def body_layers(image, labels, radius2d, bin2d, width2d, zs, tables, hu, lab):
    """Fill the whole volume with air, skin, subcutaneous fat, wall muscle and visceral fat.

    Parameters
    ----------
    image, labels : ndarray, shape (X, Y, Z)
        Output HU (float32) and label (uint8) volumes, overwritten.
    radius2d : ndarray of float64, shape (X, Y)
        Distance (mm) of each (x, y) column from the body axis.
    bin2d : ndarray of int64, shape (X, Y)
        Angular bin of each column in ``tables``.
    width2d : ndarray of float64, shape (X, Y)
        Partial-volume ramp width (mm) across the body contour at each column.
    zs : ndarray of float64
        Slice coordinates (mm), unused except for the shape check.
    tables : ndarray of float64, shape (5, Z, n_bins)
        Per slice and angle: body radius (mm), normal-distance factor, subcutaneous fat thickness
        (mm), wall-muscle thickness (mm), weight of the two thin fat planes between the lateral
        wall muscles (0-1).
    hu : ndarray of float64, shape (5,)
        HU of air, skin, subcutaneous fat, muscle, visceral fat.
    lab : ndarray of int64, shape (5,)
        Labels of the same five layers.
    """
    nx, ny, nz = image.shape
    skin_mm = 2.0
    for i in prange(nx):
        for j in range(ny):
            r = radius2d[i, j]
            b = bin2d[i, j]
            w = width2d[i, j]
            for k in range(nz):
                d = (r - tables[0, k, b]) * tables[1, k, b]
                if d > w:
                    image[i, j, k] = hu[0]
                    labels[i, j, k] = lab[0]
                    continue
                t_fat = tables[2, k, b]
                t_in = t_fat + tables[3, k, b]
                v = hu[0]
                v += _ramp(d, w) * (hu[1] - v)
                v += _ramp(d + skin_mm, w) * (hu[2] - v)
                v += _ramp(d + t_fat, w) * (hu[3] - v)
                planes = tables[4, k, b]
                if planes > 0.0 and d < -t_fat and d > -t_in:
                    for frac in (0.36, 0.68):
                        c = 1.0 - abs(d + t_fat + frac * tables[3, k, b]) / max(w, 1.0)
                        if c > 0.0:
                            v += 0.7 * planes * c * (hu[2] - v)
                v += _ramp(d + t_in, w) * (hu[4] - v)
                image[i, j, k] = v
                if d >= 0.0:
                    labels[i, j, k] = lab[0]
                elif d > -skin_mm:
                    labels[i, j, k] = lab[1]
                elif d > -t_fat:
                    labels[i, j, k] = lab[2]
                elif d > -t_in:
                    labels[i, j, k] = lab[3]
                else:
                    labels[i, j, k] = lab[4]
