"""Host-side wrapper of the organ scan: turns its counts into :class:`OrganStats` or a clear error."""

from __future__ import annotations

import numpy as np

from tumorsynth.backend import to_numpy
from tumorsynth.case import OrganStats
from tumorsynth.errors import InputError
from tumorsynth.kernels.cpu.organ import HU_MIN, measure_organ_arrays


def measure_organ(image, organ, source: str, scan=measure_organ_arrays) -> OrganStats:
    """Bounding box, size and median HU of the organ; raises :class:`InputError` on a mask that is
    not 0/1, an empty organ, or NaN / infinite HU inside the organ.

    ``scan`` is the backend's ``measure_organ_arrays`` (numba by default; the CUDA module passes
    its own, and the arrays may then live on the GPU).
    """
    lo, hi, count, not_binary, not_finite, hist = scan(image, organ)
    if not_binary:
        values = np.unique(to_numpy(organ[organ > 1]))[:8].tolist()
        raise InputError(
            f"{source}: the organ mask is not binary ({not_binary} voxels with values {values}); "
            "pass a 0/1 mask, or select the organ's label first"
        )
    if count == 0:
        raise InputError(f"{source}: the organ mask is empty (no voxel equals 1)")
    if not_finite:
        raise InputError(
            f"{source}: the image has {not_finite} NaN or infinite voxels in the organ"
        )
    median_bin = int(np.searchsorted(np.cumsum(hist), (count + 1) / 2))
    return OrganStats(
        tuple(int(v) for v in lo), tuple(int(v) for v in hi), int(count), float(median_bin + HU_MIN)
    )
