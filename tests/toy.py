"""Helpers shared by the tests: a small synthetic host, and the real CT of ``../shared/data``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tumorsynth.engine.packing import pack_lesion
from tumorsynth.kernels.reference import lesion_fields

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("TUMORSYNTH_DATA", REPO.parent / "shared" / "data"))


def data_file(relative: str) -> Path:
    """A file of ../shared/data, or a skip that says where it was looked for."""
    path = DATA / relative
    if not path.exists():
        pytest.skip(f"real CT not found at {path} (set TUMORSYNTH_DATA to the shared data folder)")
    return path


def toy_volume(shape=(48, 44, 40), spacing=(1.0, 1.0, 1.0), seed=0):
    """(image float32, organ uint8) of the given shape, at the given spacing (mm): an ellipsoidal
    'organ' at 100 HU in -80 HU, with Gaussian noise."""
    rng = np.random.default_rng(seed)
    grid = np.meshgrid(
        *[np.arange(n) * s for n, s in zip(shape, spacing, strict=True)], indexing="ij"
    )
    centre = [n * s / 2 for n, s in zip(shape, spacing, strict=True)]
    r2 = sum(
        ((g - c) / (0.42 * n * s)) ** 2
        for g, c, n, s in zip(grid, centre, shape, spacing, strict=True)
    )
    organ = (r2 <= 1).astype(np.uint8)
    image = np.where(organ == 1, 100.0, -80.0) + rng.normal(0, 10, shape)
    return image.astype(np.float32), organ


# writes past this many bytes per file fail with EFBIG, as they do on a full disk
_LIMITED = (
    "import os, resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
    "n = int(sys.argv[1]); resource.setrlimit(resource.RLIMIT_FSIZE, (n, n)); "
    "os.execv(sys.argv[2], sys.argv[2:])"
)


def run_with_file_size_limit(args, limit_bytes: int, **kwargs) -> subprocess.CompletedProcess:
    """Run ``args`` (a program and its arguments) in a process whose writes fail past
    ``limit_bytes`` per file, as on a full disk: ``RLIMIT_FSIZE`` set and ``SIGXFSZ`` ignored, so
    that a write returns ``EFBIG`` instead of killing the process. Output is captured as text."""
    if sys.platform == "win32":
        pytest.skip("no RLIMIT_FSIZE on Windows")
    command = [sys.executable, "-c", _LIMITED, str(int(limit_bytes)), *map(str, args)]
    return subprocess.run(
        command, capture_output=True, encoding="utf-8", errors="replace", **kwargs
    )


def tumorsynth_command() -> list[str]:
    """The ``tumorsynth`` console script of this environment, as a command list."""
    return [sys.executable, "-m", "tumorsynth.cli"]


def check_invariants(case, result) -> None:
    """What every synthesis must keep: dtypes and shapes, labels 0/1/2 with the organ unchanged
    and tumours only inside it, nothing outside the organ changed, every change within some
    lesion's reach beyond its surface, and every lesion labelled somewhere."""
    organ = case.organ.astype(bool)
    label = result.label
    assert result.image.dtype == np.float32 and label.dtype == np.uint8
    assert result.image.shape == case.shape == label.shape
    assert set(np.unique(label)) <= {0, 1, 2}
    assert not np.any((label == 2) & ~organ), "tumour label outside the organ"
    np.testing.assert_array_equal(label > 0, organ)
    np.testing.assert_array_equal(result.image[~organ], case.image[~organ].astype(np.float32))
    # inside the organ, every change lies within a lesion's reach beyond its (unclipped) surface:
    # the edge blur (4 sigma), the capsule (1.5 thickness) or the mass effect
    changed = np.argwhere(result.image != case.image.astype(np.float32))
    assert bool(result.params.lesions) == bool(len(changed))
    spacing = np.asarray(case.spacing_mm)
    changed_mm, tumour_mm = changed * spacing, np.argwhere(label == 2) * spacing
    within = np.zeros(len(changed), bool)
    for lesion in result.params.lesions:
        row, _, _ = pack_lesion(lesion, result.params.organ_hu)  # shape fields: no noise needed
        reach = max(
            lesion.mass_effect.reach_mm,
            4 * lesion.intensity.edge_sigma_mm,
            1.5 * lesion.capsule.thickness_mm,
        )
        centre = np.asarray(lesion.center_mm)
        within |= lesion_fields(row, changed_mm - centre)["sd"] <= reach + 1e-6
        assert lesion_fields(row, tumour_mm - centre)["inside"].any(), "a lesion labelled nowhere"
    assert within.all(), f"{(~within).sum()} changed voxels beyond every lesion's reach"
