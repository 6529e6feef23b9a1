"""Tumour tissue that replaces the host's (``intensity.replace``, on in the ``liver`` preset): no host
vessel shows through a tumour, and the tumour keeps the scan's noise grain."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import ndimage
from toy import check_invariants

import tumorsynth as ts
from tumorsynth.engine.organ import measure_noise
from tumorsynth.kernels.reference import vessel_map

LARGE = {"preset": "liver", "size_class": "large"}


@pytest.fixture(scope="module")
def phantom3():
    from tumorsynth.phantom import make_phantom

    return make_phantom(seed=3, spacing_mm=1.5)


def _additive(params: ts.TumorParams) -> ts.TumorParams:
    """The same tumours with their contrast added to the host (the reference's model)."""
    lesions = tuple(
        dataclasses.replace(lesion, intensity=dataclasses.replace(lesion.intensity, replace=False))
        for lesion in params.lesions
    )
    return dataclasses.replace(params, lesions=lesions)


def _core(case: ts.Case, result: ts.Synthesis) -> np.ndarray:
    """Tumour voxels at least 3 edge sigmas (and 3 voxels) inside, away from any capsule."""
    reach_mm = max(3 * lesion.intensity.edge_sigma_mm + 2.5 * lesion.capsule.thickness_mm
                   for lesion in result.params.lesions)  # fmt: skip
    steps = int(np.ceil(reach_mm / min(case.spacing_mm))) + 3
    return ndimage.binary_erosion(result.label == 2, iterations=steps)


def test_host_vessels_do_not_show_through_a_replacing_tumour(phantom3):
    case = phantom3
    result = ts.synthesize(case, config=LARGE, seed=2)
    assert all(lesion.intensity.replace for lesion in result.params.lesions)
    check_invariants(case, result)  # nothing outside the organ changes, labels hold
    core = _core(case, result)
    threshold = result.params.organ_hu + 40.0  # the vessel map that placement avoids
    vessels = vessel_map(case.image, case.organ, case.spacing_mm, threshold) & core
    assert vessels.sum() > 50, "the test needs host vessels inside the tumours' cores"
    added = ts.render(case, params=_additive(result.params))
    noise_hu = result.params.noise_hu

    def vessel_excess(image):  # vessel voxels against the rest of the core, HU
        return float(image[vessels].mean() - image[core & ~vessels].mean())

    assert vessel_excess(added.image) > 2 * noise_hu  # the additive model shows them (~45 HU)
    assert abs(vessel_excess(result.image)) < 0.25 * noise_hu  # replaced: gone
    # no core voxel brighter than the tumour's own level beyond what the scan's noise allows: the
    # level is the organ's plus a contrast times a texture in [0, 1] (negative: hypodense)
    deltas = [lesion.intensity.delta_hu for lesion in result.params.lesions]
    level = result.params.organ_hu + max(0.0, *deltas)
    assert result.image[core].max() < level + 6.0 * noise_hu


def test_a_replacing_tumour_keeps_the_scans_noise_grain(phantom3):
    """The grain inside the core (standard deviation and neighbour correlation, as
    ``measure_noise`` reads them) matches the organ's around it: within 25 % and 0.15."""
    case = phantom3
    result = ts.synthesize(case, config=LARGE, seed=2)
    core = _core(case, result)
    lo = np.argwhere(core).min(0)
    hi = np.argwhere(core).max(0) + 1
    inside = measure_noise(result.image, core.astype(np.uint8), lo, hi, np.asarray)
    around = case.noise
    assert inside[0] == pytest.approx(around[0], rel=0.25)
    assert inside[1] == pytest.approx(around[1], abs=0.15)
    assert around[0] == pytest.approx(result.params.noise_hu)


def test_the_reference_preset_still_adds_its_contrast(phantom3):
    params = ts.sample_params(phantom3, config={"preset": "syntumor", "size_class": "large"}, rng=1)
    assert params.lesions and not any(lesion.intensity.replace for lesion in params.lesions)
    assert params.noise_hu == 0.0 and params.noise_corr == 0.0
