"""Shared fixtures: the backends, phantoms (made once per session) and the real CT of
../shared/data."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from toy import data_file

import tumorsynth as ts
from tumorsynth.backend import get_backend


@functools.cache
def gpu_missing() -> str:
    """Why GPU tests cannot run here ('' where CuPy sees a CUDA device)."""
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() > 0:
            return ""
        return "no CUDA GPU available to CuPy (0 devices)"
    except Exception as err:  # ImportError, or CUDA errors on machines without a driver
        return f"no CUDA GPU available to CuPy ({type(err).__name__})"


def pytest_collection_modifyitems(config, items):
    """GPU tests run where CuPy sees a CUDA device and are skipped, with the reason, elsewhere."""
    reason = gpu_missing()
    if not reason:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def be(request):
    """Each backend in turn: the numba CPU one, and CuPy's where a CUDA GPU is present."""
    return get_backend(request.param)


@pytest.fixture(scope="session")
def phantom_2mm() -> ts.Case:
    from tumorsynth.phantom import make_phantom

    return make_phantom(seed=0, spacing_mm=2.0)


@pytest.fixture(scope="session")
def phantom_1mm() -> ts.Case:
    from tumorsynth.phantom import make_phantom

    return make_phantom(seed=0, spacing_mm=1.0)


@pytest.fixture(scope="session")
def phantom_aniso() -> ts.Case:
    from tumorsynth.phantom import make_phantom

    return make_phantom(seed=1, spacing_mm=(0.75, 0.75, 2.5))


@pytest.fixture(scope="session")
def real_ct() -> ts.Case:
    """TotalSegmentator's DICOM example (512 x 512 x 20, 0.98 x 0.98 x 2 mm) with its liver mask."""
    from tumorsynth.io.volume import read_volume

    ct = read_volume(data_file("totalsegmentator_example/example_ct_dicom.nii.gz"))
    mask = read_volume(data_file("totalsegmentator_example/example_ct_dicom_liver_mask.nii.gz"))
    return ts.as_case(
        ct.array.astype(np.float32),
        mask.array.astype(np.uint8),
        ct.spacing_mm,
        source="example_ct_dicom.nii.gz",
    )
