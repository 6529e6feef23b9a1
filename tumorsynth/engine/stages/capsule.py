r"""Capsule: a thin bright rim, as around a hepatocellular carcinoma.

A Gaussian profile of width ``thickness_mm`` just inside the tumour surface pulls the image toward the
organ's HU plus ``contrast_hu``: :math:`\Delta I \leftarrow \Delta I + c(p) (\text{contrast} - \Delta
I)`, :math:`c(p) = \exp(-\tfrac12 ((d(p) + t/2) / (t/2))^2)` with :math:`d` the signed distance to the
surface, cut to :math:`-2.5 t < d < 1.5 t` (four profile widths).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tumorsynth.errors import ConfigError

__all__ = ["CapsuleConfig", "CapsuleParams", "sample_capsule"]


@dataclass(frozen=True)
class CapsuleConfig:
    """Ranges of the capsule.

    Attributes
    ----------
    probability : float
        Probability that a tumour of mean radius at least ``min_radius_mm`` has a capsule.
    min_radius_mm : float
    thickness_mm : tuple of float
    contrast_hu : tuple of float
        HU of the rim relative to the organ's (positive: brighter than the organ).
    """

    probability: float = 1.0
    min_radius_mm: float = 8.0
    thickness_mm: tuple[float, float] = (1.0, 2.5)
    contrast_hu: tuple[float, float] = (10.0, 40.0)

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ConfigError("capsule.probability must be in [0, 1]")
        if min(self.thickness_mm) <= 0:
            raise ConfigError("capsule.thickness_mm must be positive")


@dataclass(frozen=True)
class CapsuleParams:
    """``thickness_mm`` (0: no capsule) and ``contrast_hu`` relative to the organ."""

    thickness_mm: float = 0.0
    contrast_hu: float = 0.0


def sample_capsule(
    rng: np.random.Generator, cfg: CapsuleConfig, mean_radius_mm: float
) -> CapsuleParams:
    """Draw the capsule of one tumour."""
    if mean_radius_mm < cfg.min_radius_mm or rng.random() >= cfg.probability:
        return CapsuleParams()
    return CapsuleParams(
        float(rng.uniform(*cfg.thickness_mm)), float(rng.uniform(*cfg.contrast_hu))
    )
