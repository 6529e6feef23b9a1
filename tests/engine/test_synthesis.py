"""Properties of synthesised tumours, on the phantom and on real CT."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage
from toy import check_invariants

import tumorsynth as ts
from tumorsynth.kernels.reference import vessel_map

SIZE_RANGE_MM = {"tiny": (6, 10), "small": (12, 20), "medium": (24, 40), "large": (48, 80)}


@pytest.mark.parametrize("preset", ["syntumor", "liver"])
def test_invariants_on_phantom(phantom_2mm, preset):
    for seed in range(3):
        result = ts.synthesize(phantom_2mm, config=preset, seed=seed)
        assert result.params.lesions, seed
        check_invariants(phantom_2mm, result)


@pytest.mark.parametrize("preset", ["syntumor", "liver"])
def test_invariants_on_real_ct(real_ct, preset):
    config = {"preset": preset, "size_class": "small"}
    result = ts.synthesize(real_ct, config=config, seed=4)
    assert result.params.lesions
    check_invariants(real_ct, result)


def test_invariants_at_anisotropic_spacing(phantom_aniso):
    result = ts.synthesize(phantom_aniso, config={"preset": "liver", "size_class": "mix"}, seed=2)
    assert len(result.params.lesions) >= 5
    check_invariants(phantom_aniso, result)


def _equivalent_diameters(case: ts.Case, result: ts.Synthesis) -> list[float]:
    """Equivalent diameter (mm) of each lesion's label, lesions taken one at a time."""
    out = []
    voxel_mm3 = float(np.prod(case.spacing_mm))
    for lesion in result.params.lesions:
        single = ts.TumorParams(
            result.params.volume_shape, result.params.spacing_mm, result.params.organ_hu, (lesion,)
        )
        label = ts.render(case, params=single).label
        volume = np.count_nonzero(label == 2) * voxel_mm3
        out.append(2.0 * (3.0 * volume / (4.0 * np.pi)) ** (1.0 / 3.0))
    return out


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.75, 0.75, 2.5)])
@pytest.mark.parametrize("size_class", ["tiny", "small", "medium", "large"])
def test_size_classes_in_reference_range(size_class, spacing):
    """Equivalent diameters fall in the reference table's range, at 1 mm and anisotropic spacing.

    The organ is a large block so that no tumour is clipped; the size is a property of the shape.
    """
    shape = tuple(round(260 / s) for s in spacing)
    image = np.full(shape, 100.0, np.float32)
    organ = np.ones(shape, np.uint8)
    config = {
        "preset": "liver",
        "size_class": size_class,
        "location": {"avoid_vessels": False, "avoid_overlap": False, "depth_fraction": 1.6},
    }
    lo, hi = SIZE_RANGE_MM[size_class]
    diameters = []
    for seed in range(3):
        result = ts.synthesize(image, organ, spacing, config=config, seed=seed)
        diameters += _equivalent_diameters(ts.as_case(image, organ, spacing), result)
    # a voxelised solid's volume differs from the continuous one by partial voxels at its surface;
    # allow that (half a voxel of the coarsest axis on the diameter) and nothing else
    tol = 0.5 * max(spacing) if size_class == "tiny" else 0.0
    assert lo - tol <= min(diameters) and max(diameters) <= hi + tol, (
        min(diameters),
        max(diameters),
    )
    assert lo + 0.15 * (hi - lo) < np.median(diameters) < hi - 0.15 * (hi - lo)


def test_size_classes_end_to_end_on_anisotropic_phantom(phantom_aniso):
    """On the phantom at 0.75 x 0.75 x 2.5 mm, unclipped tumours' sizes are in range."""
    for size_class in ("small", "medium"):
        result = ts.synthesize(phantom_aniso, config={"size_class": size_class}, seed=3)
        lo, hi = SIZE_RANGE_MM[size_class]
        diameters = _equivalent_diameters(phantom_aniso, result)
        assert diameters, size_class  # not a loop over nothing
        for d in diameters:
            assert lo - 1.0 <= d <= hi + 0.5


def test_default_tumours_are_darker_than_surrounding_organ(phantom_2mm, real_ct):
    for case in (phantom_2mm, real_ct):
        result = ts.synthesize(case, config={"size_class": "medium"}, seed=5)
        assert result.params.lesions
        tumour = result.label == 2
        ring = ndimage.binary_dilation(tumour, iterations=3) & ~ndimage.binary_dilation(tumour)
        ring &= case.organ.astype(bool)
        assert result.image[tumour].mean() < result.image[ring].mean() - 15.0


def test_vessel_avoidance(phantom_1mm):
    case = phantom_1mm
    cfg = ts.load_config("liver")
    threshold = case.organ_stats.median_hu + cfg.location.vessel_offset_hu
    vessels = vessel_map(
        case.image, case.organ, case.spacing_mm, threshold, cfg.location.vessel_sigma_mm
    )
    assert vessels.sum() > 1000, "the phantom should have a vessel tree"
    overlaps_without = 0
    for seed in range(4):
        result = ts.synthesize(case, config={"size_class": "medium"}, seed=seed)
        assert result.params.lesions
        assert not np.any((result.label == 2) & vessels)
        free = ts.synthesize(
            case, config={"size_class": "medium", "location": {"avoid_vessels": False}}, seed=seed
        )
        overlaps_without += int(np.any((free.label == 2) & vessels))
    assert overlaps_without > 0, "the check must matter: without it, tumours do hit vessels"


def _one_lesion(case, center_mm, radius_mm=12.0, mass=0.0, capsule=0.0, delta=-100.0):
    from tumorsynth.engine.stages.capsule import CapsuleParams
    from tumorsynth.engine.stages.intensity import IntensityParams
    from tumorsynth.engine.stages.mass_effect import MassEffectParams
    from tumorsynth.engine.stages.shape import ShapeParams
    from tumorsynth.engine.stages.texture import TextureParams

    lesion = ts.LesionParams(
        center_mm=center_mm,
        shape=ShapeParams("medium", (radius_mm,) * 3, (1.0, 0.0, 0.0, 0.0), (0.0,) * 15),
        texture=TextureParams(1, 6.0, 5.0, 0.05, 0.2, 0.09, 0.5),
        intensity=IntensityParams("hypo", delta, 1.0),
        mass_effect=MassEffectParams(mass, 10.0 if mass else 0.0),
        capsule=CapsuleParams(capsule, 40.0 if capsule else 0.0),
    )
    return ts.TumorParams(case.shape, case.spacing_mm, case.organ_stats.median_hu, (lesion,))


def test_mass_effect_pushes_vessels_outward():
    shape = (80, 80, 40)
    image = np.full(shape, 100.0, np.float32)
    image[:, 53:56, :] = 250.0  # a vessel running along X, 14 mm from the tumour centre
    organ = np.ones(shape, np.uint8)
    case = ts.as_case(image, organ, 1.0)
    centre = (40.0, 40.0, 20.0)

    def vessel_distance(img):
        column = img[40, 45:75, 20]  # through the centre, across the vessel
        weights = np.clip(column - 150.0, 0, None)
        return float((np.arange(45, 75) * weights).sum() / weights.sum()) - 40.0

    still = ts.render(case, params=_one_lesion(case, centre, mass=0.0)).image
    pushed = ts.render(case, params=_one_lesion(case, centre, mass=0.4)).image
    before, after = vessel_distance(still), vessel_distance(pushed)
    assert before == pytest.approx(14.0, abs=0.1)
    assert after > before + 0.5, (before, after)
    # the displacement fades: 10 mm beyond the surface nothing moves
    np.testing.assert_array_equal(pushed[40, 64:, 20], still[40, 64:, 20])


def test_capsule_rim_is_brighter_than_interior(phantom_2mm):
    case = phantom_2mm
    result = ts.synthesize(case, config={"size_class": "large"}, seed=1)
    checked = 0
    for lesion in result.params.lesions:
        if lesion.capsule.thickness_mm == 0:
            continue
        single = ts.TumorParams(case.shape, case.spacing_mm, result.params.organ_hu, (lesion,))
        out = ts.render(case, params=single)
        tumour = out.label == 2
        rim = tumour & ~ndimage.binary_erosion(tumour)
        interior = ndimage.binary_erosion(tumour, iterations=3)
        assert out.image[rim].mean() > out.image[interior].mean() + 10.0
        checked += 1
    assert checked > 0


def test_same_seed_same_output_and_replay(phantom_2mm):
    a = ts.synthesize(phantom_2mm, config="liver", seed=11)
    b = ts.synthesize(phantom_2mm, config="liver", seed=11)
    c = ts.synthesize(phantom_2mm, config="liver", seed=12)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.label, b.label)
    assert a.params == b.params and a.params != c.params
    text = json.dumps(a.params.to_dict())
    replayed = ts.render(phantom_2mm, params=ts.TumorParams.from_dict(json.loads(text)))
    assert replayed.params == a.params
    np.testing.assert_array_equal(replayed.image, a.image)
    np.testing.assert_array_equal(replayed.label, a.label)


def test_seed_is_recorded_when_none_given(phantom_2mm):
    result = ts.synthesize(phantom_2mm, config="syntumor")
    assert isinstance(result.params.seed, int)
    again = ts.synthesize(phantom_2mm, config="syntumor", seed=result.params.seed)
    np.testing.assert_array_equal(again.image, result.image)


def test_syntumor_reproduces_reference_statistics(phantom_1mm):
    """Median tumour volume per class and median HU drop, against the reference code measured on a
    320 x 320 x 240, 1-mm abdomen (research notes, section 2)."""
    reference_voxels = {"tiny": 1.4e3, "small": 11e3, "medium": 48e3, "large": 251e3}
    case = phantom_1mm
    for size_class, ref in reference_voxels.items():
        volumes, drops = [], []
        for seed in range(8):
            config = {"preset": "syntumor", "size_class": size_class}
            result = ts.synthesize(case, config=config, seed=seed)
            tumour = result.label == 2
            volumes.append(tumour.sum())
            drops.append(float(np.mean(case.image[tumour] - result.image[tumour])))
        assert 0.6 * ref < np.median(volumes) < 1.6 * ref, (size_class, np.median(volumes))
        assert 20.0 < np.median(drops) < 70.0, (size_class, np.median(drops))


def test_a_tumour_smaller_than_a_voxel_is_made_only_where_it_labels_a_voxel(phantom_2mm):
    """A 1 mm tumour at 2 mm spacing may hold no voxel centre: it must then not be made (it would
    darken the image unlabelled); those made are labelled, each of them."""
    tiny = {"radius_mm": 0.8, "count": [3, 10], "deform_mm": [0.05, 0.1]}
    config = {"preset": "syntumor", "size_class": "tiny", "shape": {"classes": {"tiny": tiny}}}
    made = 0
    for seed in range(4):
        result = ts.synthesize(phantom_2mm, config=config, seed=seed)
        check_invariants(phantom_2mm, result)  # every lesion labelled somewhere
        made += len(result.params.lesions)
    assert made >= 8


def test_a_draw_without_room_is_drawn_again_from_the_same_seed(phantom_1mm):
    """Seed 4918 of the default config draws a medium tumour that finds no room between the
    phantom's vessels (a PlacementError before); the next draw of its stream fits, and the seed
    alone gives it again."""
    params = ts.sample_params(phantom_1mm, config="liver", rng=4918)
    assert params.draw == 1 and params.lesions
    assert ts.sample_params(phantom_1mm, config="liver", rng=4918) == params
    assert ts.sample_params(phantom_1mm, config="liver", rng=4917).draw == 0


def test_a_host_where_nothing_fits_is_an_error_after_every_draw():
    image = np.full((20, 20, 6), 100.0, np.float32)
    image += np.random.default_rng(0).normal(0, 10, image.shape).astype(np.float32)
    organ = np.zeros(image.shape, np.uint8)
    organ[5:15, 5:15, 1:5] = 1  # 4 mm thick: no medium tumour, 10 mm deep, fits
    with pytest.raises(ts.PlacementError, match=r"no room for a medium tumour .* in 8 draws"):
        ts.sample_params(image, organ, 1.0, config={"size_class": "medium"}, rng=0)
