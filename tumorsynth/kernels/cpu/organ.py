"""numba queries of the host organ: one measuring scan, and local checks used while placing tumours."""

from __future__ import annotations

import math

import numpy as np
from numba import get_num_threads, njit, prange

from tumorsynth.kernels.cpu.render import lesion_at
from tumorsynth.kernels.layout import CENTER

HU_MIN = -1024
N_BINS = 4096  # 1-HU bins from -1024 to 3071
N_SUB = 4  # histograms per thread, filled in turn


@njit(cache=True, parallel=True)
def _measure(image, organ, n_chunks):
    n0, _n1, n2 = organ.shape
    lo = np.empty((n0, 3), np.int64)
    hi = np.zeros((n0, 3), np.int64)
    counts = np.zeros((n0, 3), np.int64)
    hist = np.zeros((n_chunks, N_SUB, N_BINS + 1), np.int64)  # + 1: a bin for voxels not counted
    bins = np.empty((n_chunks, n2), np.int64)
    for c in prange(n_chunks):
        for x in range(c, n0, n_chunks):  # interleaved slabs: each thread gets its share of organ
            _measure_slab(image, organ, x, lo, hi, counts, hist[c], bins[c])
    box_lo = np.empty(3, np.int64)
    box_hi = np.empty(3, np.int64)
    for a in range(3):
        box_lo[a] = lo[:, a].min()
        box_hi[a] = hi[:, a].max()
    total = counts.sum(axis=0)
    return box_lo, box_hi, total[0], total[1], total[2], hist[:, :, :N_BINS].sum(axis=0).sum(axis=0)


# error_model="numpy": no zero-divisor checks, which would keep the loops below from vectorising
@njit(cache=True, error_model="numpy")
def _measure_slab(image, organ, x, lo, hi, counts, hist, bins):
    """Measure the rows of slab ``x``: organ bounds, counts and the HU histogram ``hist`` (summed
    over its ``N_SUB`` rows later), with ``bins`` as scratch for one row.

    Each pass over a row is a loop without branches from the row's first voxel, which the compiler
    vectorises: the bitwise OR that skips empty rows (most are), the first and last nonzero voxel,
    and each voxel's histogram bin. Only the histogram's increments are scalar; they go to
    ``N_SUB`` histograms in turn, so that runs of equal bins do not wait on each other.
    """
    n0, n1, n2 = organ.shape
    lx, ly, lz, hx, hy, hz = n0, n1, n2, 0, 0, 0
    n_organ = n_other = n_bad = 0
    for y in range(n1):
        row = organ[x, y]
        nonzero = 0
        for z in range(n2):
            nonzero |= row[z]
        if nonzero == 0:
            continue
        first, last = np.int32(n2), np.int32(-1)  # 32-bit: twice the lanes of 64-bit indices
        for z in range(n2):
            first = min(first, np.int32(z) if row[z] != 0 else np.int32(n2))
            last = max(last, np.int32(z) if row[z] != 0 else np.int32(-1))
        first, last = int(first), int(last)
        n = last + 1 - first
        mask, values = row[first : last + 1], image[x, y, first : last + 1]
        ones = bad = 0
        for k in range(n):
            value = float(values[k])
            one = mask[k] == 1
            finite = math.isfinite(value)
            ones += one
            bad += one & (not finite)
            value = min(max(value, HU_MIN - 1.0), HU_MIN + N_BINS + 1.0) if finite else 0.0
            b = int(value)
            b -= value < b  # floor
            b = min(max(b - HU_MIN, 0), N_BINS - 1)
            bins[k] = b if one and finite else N_BINS
        n_organ += ones
        n_bad += bad
        if ones < n:  # zeros inside the row, or values other than 0 and 1
            zeros = 0
            for k in range(n):
                zeros += mask[k] == 0
            n_other += n - ones - zeros
            if ones == 0:
                continue
            while row[first] != 1:
                first += 1
            while row[last] != 1:
                last -= 1
        for k in range(n):
            hist[k % N_SUB, bins[k]] += 1
        lz, hz = min(lz, first), max(hz, last + 1)
        lx, hx = min(lx, x), max(hx, x + 1)
        ly, hy = min(ly, y), max(hy, y + 1)
    lo[x, 0], lo[x, 1], lo[x, 2] = lx, ly, lz
    hi[x, 0], hi[x, 1], hi[x, 2] = hx, hy, hz
    counts[x, 0], counts[x, 1], counts[x, 2] = n_organ, n_other, n_bad


def measure_organ_arrays(image, organ):
    """One pass over the mask, and over the image inside the organ. ``image`` and ``organ`` must be
    C-contiguous.

    Returns
    -------
    lo, hi : (3,) int64
        Bounding box of the organ (hi exclusive); lo > hi when the organ is empty.
    count : int
        Organ voxels.
    not_binary : int
        Voxels whose mask value is neither 0 nor 1.
    not_finite : int
        Organ voxels whose HU is NaN or infinite.
    hist : (4096,) int64
        Histogram of the organ's HU in 1-HU bins from -1024 (clipped).
    """
    return _measure(image, organ, min(4 * get_num_threads(), organ.shape[0]))


@njit(cache=True)
def ball_inside_organ(organ, spacing, center_mm, radius_mm):
    """Whether every voxel within ``radius_mm`` of ``center_mm`` is organ (outside the volume: no)."""
    n = organ.shape
    lo = np.empty(3, np.int64)
    hi = np.empty(3, np.int64)
    for a in range(3):
        lo[a] = math.ceil((center_mm[a] - radius_mm) / spacing[a])
        hi[a] = math.floor((center_mm[a] + radius_mm) / spacing[a])
        if lo[a] < 0 or hi[a] >= n[a]:
            return False
    r2 = radius_mm * radius_mm
    for x in range(lo[0], hi[0] + 1):
        dx2 = (x * spacing[0] - center_mm[0]) ** 2
        for y in range(lo[1], hi[1] + 1):
            dy2 = (y * spacing[1] - center_mm[1]) ** 2
            for z in range(lo[2], hi[2] + 1):
                if dx2 + dy2 + (z * spacing[2] - center_mm[2]) ** 2 <= r2 and organ[x, y, z] == 0:
                    return False
    return True


@njit(cache=True)
def _gauss(sigma_vox):
    r = int(3.0 * sigma_vox + 0.5)
    w = np.empty(2 * r + 1)
    for k in range(-r, r + 1):
        w[k + r] = (
            math.exp(-0.5 * (k / sigma_vox) ** 2) if sigma_vox > 0 else (1.0 if k == 0 else 0.0)
        )
    return w / w.sum(), r


@njit(cache=True, inline="always")
def _inside(rows, spacing, x, y, z):
    """Whether voxel (x, y, z) lies inside the (single) lesion ``rows[0]``."""
    d = lesion_at(
        rows,
        0,
        x * spacing[0] - rows[0, CENTER],
        y * spacing[1] - rows[0, CENTER + 1],
        z * spacing[2] - rows[0, CENTER + 2],
    )
    return d[3]


@njit(cache=True, error_model="numpy")
def vessel_overlap(image, organ, spacing, row, lo, hi, threshold_hu, sigma_mm):
    """Whether any voxel of the lesion ``row`` inside box [lo, hi) is vessel.

    A vessel voxel is an organ voxel whose Gaussian-smoothed HU (``sigma_mm``, truncated at 3 sigma,
    nearest-value borders: ``scipy.ndimage.gaussian_filter``) exceeds ``threshold_hu``; this is the
    map of ``tumorsynth.kernels.reference.vessel_map`` evaluated only where the lesion lies.

    The box is smoothed one x-slab at a time, separably (along x, then z, then y; each sum in the
    order of the CUDA kernel's, so both backends answer alike), and only a voxel above the
    threshold is asked whether it is organ and inside the lesion. The slabs are visited coarse to
    fine (every 16th, the middle one among them, then those halfway between, ...), so a candidate
    that touches a vessel is usually turned down within a few slabs.
    """
    if hi[0] <= lo[0] or hi[1] <= lo[1] or hi[2] <= lo[2]:
        return False
    n = image.shape
    w0, r0 = _gauss(sigma_mm / spacing[0])
    w1, r1 = _gauss(sigma_mm / spacing[1])
    w2, r2 = _gauss(sigma_mm / spacing[2])
    rows = row.reshape((1, row.size))
    y0, y1 = max(lo[1] - r1, 0), min(hi[1] + r1, n[1])
    z0, z1 = max(lo[2] - r2, 0), min(hi[2] + r2, n[2])
    by, bz, cz = y1 - y0, z1 - z0, hi[2] - lo[2]
    a = np.empty((by, bz))  # this slab, smoothed along x
    c = np.empty((by, cz))  # and along z
    d = np.empty(cz)  # one row of it, and along y
    mid = (lo[0] + hi[0]) // 2  # the slabs visited first include the middle one
    stride = 16
    while stride >= 1:
        for x in range(lo[0] + (mid - lo[0]) % stride, hi[0], stride):
            if stride < 16 and (x - mid) % (2 * stride) == 0:
                continue  # visited at the coarser stride
            a[:, :] = 0.0
            for t in range(-r0, r0 + 1):  # the sums' terms in order, the voxels' loop innermost
                plane = image[min(max(x + t, 0), n[0] - 1)]
                for j in range(by):
                    for k in range(bz):
                        a[j, k] += w0[t + r0] * plane[y0 + j, z0 + k]
            c[:, :] = 0.0
            for s in range(-r2, r2 + 1):
                for j in range(by):
                    for k in range(cz):
                        c[j, k] += w2[s + r2] * a[j, min(max(lo[2] + k + s, 0), n[2] - 1) - z0]
            for y in range(lo[1], hi[1]):
                d[:] = 0.0
                for t in range(-r1, r1 + 1):
                    j = min(max(y + t, 0), n[1] - 1) - y0
                    for k in range(cz):
                        d[k] += w1[t + r1] * c[j, k]
                for k in range(cz):
                    z = lo[2] + k
                    if (
                        d[k] > threshold_hu
                        and organ[x, y, z] != 0
                        and _inside(rows, spacing, x, y, z)
                    ):
                        return True
        stride //= 2
    return False


@njit(cache=True)
def screen_centres(organ, spacing, voxels, centres, depth_mm, placed, radius_mm):
    """First screen of candidate tumour centres, all local reads.

    Parameters
    ----------
    organ : (X, Y, Z) uint8
    spacing : (3,) float64
    voxels : (N, 3) int64
        Candidate voxels.
    centres : (N, 3) float64
        Their jittered centres, mm.
    depth_mm : float
        Required depth inside the organ (ball of this radius all organ; 0: none).
    placed : (K, 4) float64
        Centres (mm) and radii (mm) of the tumours to keep clear of (K may be 0).
    radius_mm : float
        The candidate tumour's radius for that clearance.

    Returns
    -------
    (N,) int8
        0: not an organ voxel; 1: in the organ but too shallow or too close to a placed tumour;
        2: passes.
    """
    out = np.zeros(voxels.shape[0], np.int8)
    for n in range(voxels.shape[0]):
        if organ[voxels[n, 0], voxels[n, 1], voxels[n, 2]] == 0:
            continue
        out[n] = 1
        clear = True
        for k in range(placed.shape[0]):
            d2 = 0.0
            for a in range(3):
                d2 += (centres[n, a] - placed[k, a]) ** 2
            if d2 < (radius_mm + placed[k, 3]) ** 2:
                clear = False
                break
        if not clear:
            continue
        if depth_mm > 0.0 and not ball_inside_organ(organ, spacing, centres[n], depth_mm):
            continue
        out[n] = 2
    return out
