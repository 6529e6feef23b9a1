"""Shared fixtures: phantoms (made once per session) and the real CT of ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import tumorsynth as ts

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("TUMORSYNTH_DATA", REPO.parent / "shared" / "data"))


def pytest_collection_modifyitems(config, items):
    """GPU tests run where CuPy sees a CUDA device and are skipped, with the reason, elsewhere."""
    try:
        import cupy

        has_gpu = cupy.cuda.runtime.getDeviceCount() > 0
        reason = ""
    except Exception as err:  # ImportError, or CUDA errors on machines without a driver
        has_gpu, reason = False, f"no CUDA GPU available to CuPy ({type(err).__name__})"
    if has_gpu:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


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


def data_file(relative: str) -> Path:
    """A file of ../shared/data, or a skip that says where it was looked for."""
    path = DATA / relative
    if not path.exists():
        pytest.skip(f"real CT not found at {path} (set TUMORSYNTH_DATA to the shared data folder)")
    return path


@pytest.fixture(scope="session")
def real_ct() -> ts.Case:
    """TotalSegmentator's DICOM example (512 x 512 x 20, 0.98 x 0.98 x 2 mm) with its liver mask."""
    from tumorsynth.io import read_volume

    ct = read_volume(data_file("totalsegmentator_example/example_ct_dicom.nii.gz"))
    mask = read_volume(data_file("totalsegmentator_example/example_ct_dicom_liver_mask.nii.gz"))
    return ts.as_case(
        ct.array.astype(np.float32),
        mask.array.astype(np.uint8),
        ct.spacing_mm,
        source="example_ct_dicom.nii.gz",
    )
