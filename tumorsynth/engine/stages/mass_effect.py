r"""Mass effect: the tumour pushes the surrounding parenchyma and vessels outward.

In the tumour's normalised radius :math:`\rho` (1 on its surface), tissue is moved as if a fraction
:math:`k` (``strength``) of the tumour's volume had been added to the organ, the rest replacing
tissue: the tissue now at :math:`\rho \ge 1` came from :math:`(\rho^3 - k)^{1/3}` (volume
conservation), faded smoothly to no displacement ``reach_mm`` beyond the surface; inside the tumour,
the replaced tissue is shrunk by :math:`(1 - k)^{1/3}`. The map is continuous and monotonic (nothing
folds), displacement is strongest at the rim, and nothing moves outside the organ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tumorsynth.errors import ConfigError

__all__ = ["MassEffectConfig", "MassEffectParams", "sample_mass_effect"]


@dataclass(frozen=True)
class MassEffectConfig:
    """Ranges of the mass effect.

    Attributes
    ----------
    probability : float
        Probability that a tumour displaces its surroundings (0 disables the stage).
    strength : tuple of float
        Range of :math:`k`, the fraction of the tumour's volume that pushed tissue aside.
    reach_fraction : float
        Reach beyond the surface, as a fraction of the tumour's mean semi-axis...
    max_reach_mm : float
        ...but at most this many mm.
    """

    probability: float = 1.0
    strength: tuple[float, float] = (0.2, 0.5)
    reach_fraction: float = 0.6
    max_reach_mm: float = 15.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ConfigError("mass_effect.probability must be in [0, 1]")
        if not 0.0 <= self.strength[0] <= self.strength[1] < 0.9:
            raise ConfigError("mass_effect.strength must satisfy 0 <= lo <= hi < 0.9")


@dataclass(frozen=True)
class MassEffectParams:
    """``strength`` :math:`k` (0: no mass effect) and ``reach_mm`` beyond the surface."""

    strength: float = 0.0
    reach_mm: float = 0.0


def sample_mass_effect(
    rng: np.random.Generator, cfg: MassEffectConfig, mean_radius_mm: float
) -> MassEffectParams:
    """Draw the mass effect of one tumour."""
    if cfg.probability <= 0 or rng.random() >= cfg.probability:
        return MassEffectParams()
    reach = min(cfg.reach_fraction * mean_radius_mm, cfg.max_reach_mm)
    return MassEffectParams(float(rng.uniform(*cfg.strength)), float(reach))
