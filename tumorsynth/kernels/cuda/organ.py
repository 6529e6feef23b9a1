"""CuPy queries of the host organ: the measuring scan, and the local checks of placement.

Each query returns host values (one small device-to-host read): these are the cheap per-try syncs of
placement, outside the render path.

.. seealso:: :mod:`tumorsynth.kernels.cpu.organ`, the numba twins (same answers).
"""

from __future__ import annotations

import math

import cupy
import numpy as np

from tumorsynth.kernels.cpu.organ import N_BINS
from tumorsynth.kernels.cuda._compile import blocks, function
from tumorsynth.kernels.cuda.hostpack import gauss_weights

__all__ = [
    "ball_inside_organ",
    "measure_organ_arrays",
    "screen_centres",
    "vessel_overlap",
]

THREADS = 256


@cupy.memoize(for_each_device=True)
def _sm_count() -> int:
    return int(cupy.cuda.Device().attributes["MultiProcessorCount"])


def measure_organ_arrays(image, organ):
    """One pass over the volume on the GPU; returns host values, as
    :func:`tumorsynth.kernels.cpu.measure_organ_arrays` (``lo``, ``hi``, ``count``, ``not_binary``,
    ``not_finite``, ``hist``)."""
    shape = organ.shape
    res = cupy.zeros(9 + N_BINS, cupy.uint64)
    res[3:6] = cupy.asarray(np.array(shape, np.uint64))
    n = int(organ.size)
    if n:
        kernel = function("organ", "ts_measure", image.dtype)
        grid = min(blocks(n, THREADS), 8 * _sm_count())
        kernel(
            (grid,),
            (THREADS,),
            (image, organ, np.int64(n), np.int32(shape[1]), np.int32(shape[2]), res),
        )
    host = res.get().astype(np.int64)
    return host[3:6], host[6:9], int(host[0]), int(host[1]), int(host[2]), host[9:]


def ball_inside_organ(organ, spacing, center_mm, radius_mm) -> bool:
    """Whether every voxel within ``radius_mm`` of ``center_mm`` is organ (outside the volume: no)."""
    n = organ.shape
    lo, size = [], []
    for a in range(3):
        first = math.ceil((center_mm[a] - radius_mm) / spacing[a])
        last = math.floor((center_mm[a] + radius_mm) / spacing[a])
        if first < 0 or last >= n[a]:
            return False
        lo.append(first)
        size.append(max(last - first + 1, 0))
    total = size[0] * size[1] * size[2]
    if total == 0:
        return True
    flag = cupy.zeros(1, cupy.int32)
    function("organ", "ts_ball")(
        (blocks(total, THREADS),),
        (THREADS,),
        (
            organ, np.int32(n[1]), np.int32(n[2]),
            *(np.int32(v) for v in lo), *(np.int32(v) for v in size),
            *(np.float64(s) for s in spacing[:3]), *(np.float64(c) for c in center_mm[:3]),
            np.float64(radius_mm * radius_mm), flag,
        ),
    )  # fmt: skip
    return not bool(flag.get()[0])


@cupy.memoize(for_each_device=True)
def _weights(sigma_vox: tuple[float, float, float]):
    parts = [gauss_weights(s) for s in sigma_vox]
    return cupy.asarray(np.concatenate([w for w, _ in parts])), tuple(r for _, r in parts)


def vessel_overlap(image, organ, spacing, row, lo, hi, threshold_hu, sigma_mm) -> bool:
    """Whether any voxel of the lesion ``row`` inside box [lo, hi) is vessel (see
    :func:`tumorsynth.kernels.cpu.vessel_overlap`); ``row``, ``lo`` and ``hi`` are host arrays."""
    lo = [int(v) for v in lo]
    size = [int(b) - a for b, a in zip(hi, lo, strict=True)]
    if min(size) <= 0:
        return False
    total = size[0] * size[1] * size[2]
    weights, radii = _weights(tuple(float(sigma_mm) / float(s) for s in spacing[:3]))
    flag = cupy.zeros(1, cupy.int32)
    function("organ", "ts_vessel", image.dtype)(
        (blocks(total, THREADS),),
        (THREADS,),
        (
            image, organ, *(np.int32(v) for v in image.shape),
            *(np.float64(s) for s in spacing[:3]), cupy.asarray(row, cupy.float64),
            *(np.int32(v) for v in lo), *(np.int32(v) for v in size),
            weights, *(np.int32(r) for r in radii), np.float64(threshold_hu), flag,
        ),
    )  # fmt: skip
    return bool(flag.get()[0])


def screen_centres(organ, spacing, voxels, centres, depth_mm, placed, radius_mm):
    """First screen of candidate tumour centres, as :func:`tumorsynth.kernels.cpu.screen_centres`:
    host (N,) int8 codes (0 not organ, 1 too shallow or too close to a placed tumour, 2 passes)."""
    voxels = np.ascontiguousarray(voxels, np.int64).reshape(-1, 3)
    n = len(voxels)
    if n == 0:
        return np.zeros(0, np.int8)
    placed = np.ascontiguousarray(placed, np.float64).reshape(-1, 4)
    table = np.concatenate(
        [voxels.view(np.float64).ravel(), np.ravel(centres).astype(np.float64), placed.ravel()]
    )
    dev = cupy.asarray(table)  # one upload: voxels (as bytes), centres, placed
    out = cupy.empty(n, cupy.int8)
    function("organ", "ts_screen")(
        (n,),
        (THREADS,),
        (
            organ, *(np.int32(v) for v in organ.shape), *(np.float64(s) for s in spacing[:3]),
            dev[: 3 * n].view(cupy.int64), dev[3 * n : 6 * n], np.float64(depth_mm),
            dev[6 * n :] if len(placed) else dev, np.int32(len(placed)), np.float64(radius_mm), out,
        ),
    )  # fmt: skip
    return out.get()
