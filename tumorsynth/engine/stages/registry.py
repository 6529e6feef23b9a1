"""The stages as data: for each stage its config and params types, its sampler, and the config
overrides that switch its optional effects on, so that tests and tools can treat every stage alike
(e.g. render each stage alone over a minimal tumour).

The minimal tumour (:data:`MINIMAL`) is what every tumour has: an axis-aligned deformed ellipsoid,
placed deep enough in the organ without vessel or overlap checks, darkened through its texture; no
necrosis, mass effect or capsule. :meth:`Stage.alone` is that, with one stage's effects on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tumorsynth.engine.stages.capsule import CapsuleConfig, CapsuleParams, sample_capsule
from tumorsynth.engine.stages.intensity import IntensityConfig, IntensityParams, sample_intensity
from tumorsynth.engine.stages.location import LocationConfig, place
from tumorsynth.engine.stages.mass_effect import (
    MassEffectConfig,
    MassEffectParams,
    sample_mass_effect,
)
from tumorsynth.engine.stages.shape import ShapeConfig, ShapeParams, sample_shape
from tumorsynth.engine.stages.texture import TextureConfig, TextureParams, sample_texture

__all__ = ["MINIMAL", "STAGES", "Stage"]

MINIMAL: dict[str, dict[str, Any]] = {
    "location": {"avoid_vessels": False, "avoid_overlap": False},
    "shape": {"rotate": False},
    "intensity": {"density": {"hypo": 1.0}, "necrosis_probability": 0.0},
    "mass_effect": {"probability": 0.0},
    "capsule": {"probability": 0.0},
}
"""Config overrides (``SynthConfig`` field -> stage fields) that leave only the minimal tumour."""


@dataclass(frozen=True)
class Stage:
    """One stage of a tumour.

    Attributes
    ----------
    name : str
        Its field in :class:`~tumorsynth.SynthConfig` and, but for ``location`` (whose draw is
        ``LesionParams.center_mm``), in :class:`~tumorsynth.LesionParams`.
    config_type, params_type : type
        Its ``*Config`` and frozen ``*Params`` (None for ``location``).
    sample : callable
        Its ``sample_*`` function (``place`` for ``location``).
    effects : dict
        Overrides of its config that switch all of its optional effects on.
    """

    name: str
    config_type: type
    params_type: type | None
    sample: Callable[..., Any]
    effects: Mapping[str, Any] = field(default_factory=dict)

    def alone(self) -> dict[str, dict[str, Any]]:
        """Config overrides for the minimal tumour with this stage's effects on."""
        return {**MINIMAL, self.name: {**MINIMAL.get(self.name, {}), **self.effects}}


STAGES: tuple[Stage, ...] = (
    Stage("location", LocationConfig, None, place, {"avoid_vessels": True, "avoid_overlap": True}),
    Stage("shape", ShapeConfig, ShapeParams, sample_shape, {"rotate": True}),
    Stage("texture", TextureConfig, TextureParams, sample_texture),
    Stage(
        "intensity",
        IntensityConfig,
        IntensityParams,
        sample_intensity,
        {"necrosis_probability": 1.0, "necrosis_min_radius_mm": 0.0},
    ),
    Stage(
        "mass_effect", MassEffectConfig, MassEffectParams, sample_mass_effect, {"probability": 1.0}
    ),
    Stage(
        "capsule",
        CapsuleConfig,
        CapsuleParams,
        sample_capsule,
        {"probability": 1.0, "min_radius_mm": 0.0},
    ),
)
"""Every stage, in the order a tumour is drawn."""
