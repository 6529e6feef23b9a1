"""Numba kernels of the built-in abdominal phantom (:mod:`tumorsynth.phantom`).

Every structure of the phantom is an approximate signed distance field (SDF, in mm, negative inside)
evaluated on the voxel centres of its own bounding box, then composited ("painted") into the volume
with a partial-volume ramp. The kernels here evaluate the SDF primitives (smooth unions of ellipsoids,
tapered tubes, rounded elliptic cylinders), the body wall layers, the compositing, and the correlated
CT noise. Coordinates are millimetres; arrays are indexed (x, y, z).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = [
    "blob_sdf",
    "body_layers",
    "cylinder_sdf",
    "layer_sdf",
    "noise_finish",
    "noise_planes",
    "paint",
    "tube_sdf",
    "wave_tables",
]


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
def _waves_xy(tab, i, j, sab, cab):
    """sin and cos of (kx x_i + ky y_j) for every wave, by angle addition from the axis tables."""
    for n in range(tab.shape[1]):
        sx, cx, sy, cy = tab[0, n, i], tab[1, n, i], tab[2, n, j], tab[3, n, j]
        sab[n] = sx * cy + cx * sy
        cab[n] = cx * cy - sx * sy


@njit(cache=True)
def _waves_z(tab, k, sab, cab):
    """Sum over waves of amplitude * sin(kx x + ky y + kz z + phase) given :func:`_waves_xy`."""
    s = 0.0
    for n in range(sab.shape[0]):
        s += tab[6, n, k] * (sab[n] * tab[4, n, k] + cab[n] * tab[5, n, k])
    return s


@njit(cache=True)
def _blob_at(waves, i, j, k, px, py, pz, ells, k_smooth_mm, sab, cab):
    d = _ellipsoid(px, py, pz, ells[0])
    for m in range(1, ells.shape[0]):
        d = _smin(d, _ellipsoid(px, py, pz, ells[m]), k_smooth_mm)
    if sab.shape[0] > 0:
        _waves_xy(waves, i, j, sab, cab)
        d += _waves_z(waves, k, sab, cab)
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
        Warp plane waves tabulated per axis by :func:`wave_tables` (amplitudes in mm).
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
                lo = min(
                    coarse[a, b, c],
                    coarse[a1, b, c],
                    coarse[a, b1, c],
                    coarse[a1, b1, c],
                    coarse[a, b, c1],
                    coarse[a1, b, c1],
                    coarse[a, b1, c1],
                    coarse[a1, b1, c1],
                )
                hi = max(
                    coarse[a, b, c],
                    coarse[a1, b, c],
                    coarse[a, b1, c],
                    coarse[a1, b1, c],
                    coarse[a, b, c1],
                    coarse[a1, b, c1],
                    coarse[a, b1, c1],
                    coarse[a1, b1, c1],
                )
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
                                _waves_xy(waves, i, j, sab, cab)
                            for k in range(cz[c], k_end):
                                d = _ellipsoid(xs[i], ys[j], zs[k], ells[0])
                                for m in range(1, ells.shape[0]):
                                    d = _smin(
                                        d, _ellipsoid(xs[i], ys[j], zs[k], ells[m]), k_smooth_mm
                                    )
                                if nw > 0:
                                    d += _waves_z(waves, k, sab, cab)
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
        Plane waves added to ``hu`` (amplitudes in HU), tabulated by :func:`wave_tables` (N may
        be 0).
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
                _waves_xy(texture, i, j, sab, cab)
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
                    v += _waves_z(texture, k, sab, cab)
                gi = offset[0] + i
                gj = offset[1] + j
                gk = offset[2] + k
                image[gi, gj, gk] += np.float32(a * (v - image[gi, gj, gk]))
                if dv < 0.0 and label >= 0:
                    labels[gi, gj, gk] = label


@njit(cache=True, parallel=True)
def layer_sdf(out, radius2d, bin2d, tables, depth):
    """SDF (mm) of a body-wall boundary: 0 the skin, 1 the inside of the fat, 2 the cavity.

    ``radius2d``, ``bin2d`` and ``tables`` are as in :func:`body_layers`, for this sub-box.
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
