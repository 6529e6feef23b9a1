"""Tumour params: the drawn values of every stage, pure data that round-trips through JSON.

Rendering a :class:`TumorParams` is deterministic: ``render(image, organ, spacing_mm,
TumorParams.from_dict(p.to_dict()))`` gives the same image and label as the original, bit for bit.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from tumorsynth.engine.serialization import build_dataclass, to_jsonable
from tumorsynth.engine.stages.capsule import CapsuleParams
from tumorsynth.engine.stages.intensity import IntensityParams
from tumorsynth.engine.stages.mass_effect import MassEffectParams
from tumorsynth.engine.stages.shape import ShapeParams
from tumorsynth.engine.stages.texture import TextureParams
from tumorsynth.errors import ConfigError

__all__ = ["PARAMS_VERSION", "LesionParams", "TumorParams"]

PARAMS_VERSION = 1


@dataclass(frozen=True)
class LesionParams:
    """One tumour.

    Attributes
    ----------
    center_mm : tuple of float
        Centre in mm from the centre of voxel (0, 0, 0), along the array axes (X, Y, Z).
    shape, texture, intensity, mass_effect, capsule
        The drawn values of each stage.
    exophytic : bool
        Whether the tumour grows out of the organ's surface: it then also changes, and labels, the
        voxels outside the organ that it covers (placement keeps them within the config's
        ``location.exophytic_margin_mm`` of the organ); otherwise it changes only organ voxels.
    """

    center_mm: tuple[float, float, float]
    shape: ShapeParams
    texture: TextureParams
    intensity: IntensityParams
    mass_effect: MassEffectParams = field(default_factory=MassEffectParams)
    capsule: CapsuleParams = field(default_factory=CapsuleParams)
    exophytic: bool = False


@dataclass(frozen=True)
class TumorParams:
    """Everything needed to render one synthesis, and nothing random.

    Attributes
    ----------
    volume_shape : tuple of int
        (X, Y, Z) shape of the volume the params were drawn for.
    spacing_mm : tuple of float
        Its voxel size, mm.
    organ_hu : float
        The organ's level, HU, measured when sampling (the reference for relative intensities):
        its median, or the quantile ``intensity.organ_quantile`` of the config.
    noise_hu, noise_corr : float
        The scan's noise in the organ, measured when sampling for tumours that replace the host's
        tissue (their tissue gets the same grain): its standard deviation, HU, and the correlation
        of neighbouring voxels; 0 otherwise.
    lesions : tuple of LesionParams
        The tumours (possibly none).
    seed : int or None
        The seed that drew them, if there was one (informational).
    draw : int
        Which draw of that seed's stream they are: 0, or more where the earlier draws found no room
        for their tumours (informational; see :func:`tumorsynth.sample_params`).
    config : str
        Name of the config that drew them (informational).
    version : int
        Schema version of this record.
    """

    volume_shape: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    organ_hu: float
    lesions: tuple[LesionParams, ...] = ()
    noise_hu: float = 0.0
    noise_corr: float = 0.0
    seed: int | None = None
    draw: int = 0
    config: str = ""
    version: int = PARAMS_VERSION

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (floats are kept exactly: JSON stores their shortest repr)."""
        return to_jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TumorParams:
        """Rebuild params from :meth:`to_dict` output (or its JSON)."""
        if isinstance(data, (str, bytes)):
            data = json.loads(data)
        version = data.get("version", PARAMS_VERSION) if isinstance(data, dict) else None
        if version != PARAMS_VERSION:
            raise ConfigError(f"params: version {version!r} is not supported ({PARAMS_VERSION})")
        return build_dataclass(cls, data, "params")

    def to_json(self) -> str:
        """Compact JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), separators=(",", ":"))
