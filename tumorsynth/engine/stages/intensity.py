r"""Intensity: how the tumour changes the organ's HU, and its blurred edge.

Inside the organ the image changes by

.. math:: \Delta I(p) = w(p) \, \delta \, T(p), \qquad w(p) = \Phi(-d(p) / \sigma_e),

with :math:`\delta` the signed amplitude in HU (negative: hypodense), :math:`T` the texture (mean
:math:`u_0 \approx 0.5`), :math:`d` the signed distance to the tumour surface in mm and
:math:`\sigma_e` the edge blur (:math:`w` is taken as exactly 1 or 0 beyond :math:`3 \sigma_e`, where
:math:`\Phi` is within 0.0014 of them). This is the reference's "darken by U(65, 145) HU x texture under a
blurred mask", in mm. The liver's own noise and vessels stay under the tumour.

With ``scale_with_organ_hu`` set, the amplitude is scaled by the organ's measured median HU over that
reference value, so tumours keep their relative contrast in a non-contrast scan (liver ~55 HU) as in
a portal venous one (~100 HU). An optional necrotic core pulls the centre toward fluid HU.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tumorsynth.errors import ConfigError

__all__ = ["DENSITY_KINDS", "IntensityConfig", "IntensityParams", "sample_intensity"]

DENSITY_KINDS = ("hypo", "iso", "hyper")


def _default_delta() -> dict[str, tuple[float, float]]:
    return {"hypo": (-145.0, -65.0), "iso": (-20.0, 20.0), "hyper": (40.0, 100.0)}


@dataclass(frozen=True)
class IntensityConfig:
    r"""Ranges of the intensity parameters.

    Attributes
    ----------
    density : dict of str to float
        Probability of each kind: ``hypo`` (darker than the organ), ``iso``, ``hyper``.
    delta_hu : dict of str to (float, float)
        Signed amplitude range :math:`\delta` per kind, HU (multiplied by the texture, ~0.5).
    scale_with_organ_hu : float or None
        Reference organ HU at which ``delta_hu`` applies; the amplitude is scaled by
        ``organ_hu / scale_with_organ_hu`` (clipped to [0.25, 2]). None: absolute HU (reference).
    edge_sigma_mm : tuple of float
        Range of the edge blur :math:`\sigma_e`, mm (reference U(1, 2) voxels at 1 mm).
    necrosis_probability : float
        Probability that a tumour of mean radius at least ``necrosis_min_radius_mm`` has a core.
    necrosis_min_radius_mm : float
    necrosis_core : tuple of float
        Core radius as a fraction of the tumour's.
    necrosis_hu : tuple of float
        HU the core tends to (fluid).
    replace : bool
        Inside the tumour its own tissue (the organ's level plus the contrast and texture, with
        the scan's noise grain) replaces the host's, blended by the edge weight, so that no host
        structure (vessels, the organ's own texture) shows through. False: the contrast is added
        to the host, as the reference code does.
    organ_quantile : float
        The quantile of the organ's HU taken as its level, the reference of every relative
        intensity (``TumorParams.organ_hu``): 0.5, the median, by default. A mask that holds
        other tissue than the parenchyma (the kidney's sinus fat and pelvis, the fat between the
        pancreas's lobules, partial volume at coarse spacing) pulls its median below the
        parenchyma's enhancement; a higher quantile reads the parenchyma's.
    """

    density: dict[str, float] = field(default_factory=lambda: {"hypo": 1.0})
    delta_hu: dict[str, tuple[float, float]] = field(default_factory=_default_delta)
    scale_with_organ_hu: float | None = None
    edge_sigma_mm: tuple[float, float] = (1.0, 2.0)
    necrosis_probability: float = 0.0
    necrosis_min_radius_mm: float = 10.0
    necrosis_core: tuple[float, float] = (0.3, 0.6)
    necrosis_hu: tuple[float, float] = (5.0, 25.0)
    replace: bool = False
    organ_quantile: float = 0.5

    def __post_init__(self) -> None:
        bad = set(self.density) - set(DENSITY_KINDS)
        if bad:
            raise ConfigError(
                f"intensity.density: unknown kinds {sorted(bad)}; use {DENSITY_KINDS}"
            )
        missing = {k for k, p in self.density.items() if p > 0} - set(self.delta_hu)
        if missing:
            raise ConfigError(f"intensity.delta_hu has no range for {sorted(missing)}")
        if sum(self.density.values()) <= 0 or min(self.density.values()) < 0:
            raise ConfigError("intensity.density: probabilities must be >= 0 with a positive sum")
        if min(self.edge_sigma_mm) <= 0:
            raise ConfigError("intensity.edge_sigma_mm must be positive")
        if not 0.0 <= self.necrosis_probability <= 1.0:
            raise ConfigError("intensity.necrosis_probability must be in [0, 1]")
        if not 0.0 < self.organ_quantile < 1.0:
            raise ConfigError("intensity.organ_quantile must be in (0, 1)")


@dataclass(frozen=True)
class IntensityParams:
    r"""The drawn intensity of one tumour.

    Attributes
    ----------
    kind : str
        ``hypo``, ``iso`` or ``hyper``.
    delta_hu : float
        Signed amplitude :math:`\delta`, HU (already scaled to the organ).
    edge_sigma_mm : float
    necrosis_core : float
        Core radius as a fraction of the tumour's; 0 for no necrosis.
    necrosis_hu : float
        HU of the necrotic core.
    replace : bool
        Whether the tumour's tissue replaces the host's (see :class:`IntensityConfig`).
    """

    kind: str
    delta_hu: float
    edge_sigma_mm: float
    necrosis_core: float = 0.0
    necrosis_hu: float = 0.0
    replace: bool = False


def sample_intensity(
    rng: np.random.Generator, cfg: IntensityConfig, organ_hu: float, mean_radius_mm: float
) -> IntensityParams:
    """Draw the intensity of one tumour in an organ whose median is ``organ_hu``."""
    kinds = list(cfg.density)
    prob = np.array([cfg.density[k] for k in kinds], dtype=float)
    kind = kinds[int(rng.choice(len(kinds), p=prob / prob.sum()))]
    delta = float(rng.uniform(*cfg.delta_hu[kind]))
    if cfg.scale_with_organ_hu:
        delta *= float(np.clip(organ_hu / cfg.scale_with_organ_hu, 0.25, 2.0))
    edge = float(rng.uniform(*cfg.edge_sigma_mm))
    core, core_hu = 0.0, 0.0
    if mean_radius_mm >= cfg.necrosis_min_radius_mm and rng.random() < cfg.necrosis_probability:
        core = float(rng.uniform(*cfg.necrosis_core))
        core_hu = float(rng.uniform(*cfg.necrosis_hu))
    return IntensityParams(kind, delta, edge, core, core_hu, cfg.replace)
