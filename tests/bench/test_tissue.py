"""The texture measurements of a tumour's core: the std ratio and the grain."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from tumorsynth.bench.tissue import MAX_LAG_VOX, grain_mm, std_ratio


def _smooth_noise(sigma_vox: float, shape=(48, 48, 48), seed=0) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(shape)
    return ndimage.gaussian_filter(noise, sigma_vox) if sigma_vox else noise


@pytest.mark.parametrize("sigma_vox", [1.0, 1.5, 2.0])
def test_grain_is_the_half_correlation_lag_of_smoothed_noise(sigma_vox):
    """White noise smoothed by a Gaussian of sigma s correlates exp(-h^2 / 4s^2) at lag h: 1/2 at
    h = 2 s sqrt(ln 2); the grain finds it (in mm, at 1.5 mm voxels)."""
    values = _smooth_noise(sigma_vox)
    core = np.zeros(values.shape, bool)
    core[8:-8, 8:-8, 8:-8] = True
    expected_mm = 2.0 * sigma_vox * np.sqrt(np.log(2.0)) * 1.5
    assert grain_mm(values, core, (1.5, 1.5, 1.5)) == pytest.approx(expected_mm, rel=0.12)


def test_grain_follows_the_voxel_size_of_each_axis():
    values = _smooth_noise(1.5)
    core = np.ones(values.shape, bool)
    iso = grain_mm(values, core, (1.0, 1.0, 1.0))
    assert grain_mm(values, core, (2.0, 2.0, 2.0)) == pytest.approx(2 * iso, rel=1e-9)
    # longer voxels along z: pairs along z lie further apart in mm, the grain grows a little
    assert iso < grain_mm(values, core, (1.0, 1.0, 3.0)) < 3 * iso


def test_grain_is_a_lower_bound_when_the_core_stays_alike():
    values = _smooth_noise(6.0)
    assert grain_mm(values, np.ones(values.shape, bool), (1.0, 1.0, 1.0)) == MAX_LAG_VOX


def test_grain_ignores_voxels_outside_the_core():
    """A bright vessel beside the core does not change its grain."""
    values = _smooth_noise(0.0)
    core = np.zeros(values.shape, bool)
    core[10:30, 10:30, 10:30] = True
    before = grain_mm(values, core, (1.0, 1.0, 1.0))
    values[31:35] = 400.0
    assert grain_mm(values, core, (1.0, 1.0, 1.0)) == before
    assert before == pytest.approx(0.5, abs=0.05)  # white: unalike one voxel apart


def test_std_ratio_is_robust_and_needs_enough_voxels():
    rng = np.random.default_rng(1)
    core, ring = rng.normal(40, 30, 5000), rng.normal(100, 10, 5000)
    assert std_ratio(core, ring) == pytest.approx(3.0, rel=0.05)
    ring[:100] = 300.0  # 2 % vessel voxels barely move a robust spread
    assert std_ratio(core, ring) == pytest.approx(3.0, rel=0.08)
    assert std_ratio(core[:10], ring) is None
    assert std_ratio(core, np.full(100, 50.0)) is None
    assert grain_mm(np.zeros((5, 5, 5)), np.ones((5, 5, 5), bool), (1, 1, 1)) is None
