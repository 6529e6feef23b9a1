"""Every stage alike, from the registry: each stage switched on alone over the minimal tumour."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tumorsynth as ts
from tumorsynth.engine.stages.registry import STAGES
from tumorsynth.kernels.reference import vessel_map

IDENTITY = (1.0, 0.0, 0.0, 0.0)


def _on(stage: str, lesion: ts.LesionParams) -> bool:
    """Whether ``stage``'s optional effect shows in a drawn lesion."""
    return {
        "shape": lesion.shape.rotation != IDENTITY,
        "intensity": lesion.intensity.necrosis_core > 0,
        "mass_effect": lesion.mass_effect.strength > 0,
        "capsule": lesion.capsule.thickness_mm > 0,
    }.get(stage, False)


def test_the_registry_names_every_stage_of_a_config_and_of_a_lesion():
    names = [s.name for s in STAGES]
    assert names == ["location", "shape", "texture", "intensity", "mass_effect", "capsule"]
    config = ts.load_config("liver")
    for stage in STAGES:
        assert isinstance(getattr(config, stage.name), stage.config_type)
        if stage.params_type is not None:
            assert ts.LesionParams.__dataclass_fields__[stage.name].type in (
                stage.params_type.__name__,
                stage.params_type,
            )


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.name)
def test_each_stage_alone(stage, phantom_2mm):
    case = phantom_2mm
    config = {"preset": "liver", "size_class": "small", **stage.alone()}
    first = ts.synthesize(case, config=config, seed=11)
    lesions = first.params.lesions
    assert lesions
    # same seed, same output; params survive JSON and render the same again
    again = ts.synthesize(case, config=config, seed=11)
    np.testing.assert_array_equal(again.image, first.image)
    np.testing.assert_array_equal(again.label, first.label)
    params = ts.TumorParams.from_dict(json.loads(json.dumps(first.params.to_dict())))
    assert params == first.params
    replay = ts.render(case, params=params)
    np.testing.assert_array_equal(replay.image, first.image)
    np.testing.assert_array_equal(replay.label, first.label)
    # nothing outside the organ changes; tumour labels stay inside it
    outside = case.organ == 0
    np.testing.assert_array_equal(first.image[outside], case.image[outside])
    assert not ((first.label == 2) & outside).any()
    # this stage's effect is on in every lesion, every other stage's optional effect off
    for other in ("shape", "intensity", "mass_effect", "capsule"):
        assert all(_on(other, lesion) == (other == stage.name) for lesion in lesions), other
    if stage.name == "location":
        threshold = first.params.organ_hu + ts.load_config("liver").location.vessel_offset_hu
        vessels = vessel_map(case.image, case.organ, case.spacing_mm, threshold)
        assert not (vessels & (first.label == 2)).any()  # small tumours avoid the vessels
