r"""The mean :math:`\mu` and standard deviation :math:`\sigma` of each attribute, from which the
shells are cut.

By default they describe what the synthesis config draws, per tumour:

- **shape, size, texture, intensity** are derived from the config's distributions by a
  fixed-seed Monte Carlo of the stage laws (:func:`derive_stats`, 200 000 tumours, host free;
  5 000 for the shape, whose elongation takes a quadrature each): size classes weighted by their
  probability and mean tumour count per call, semi-axes :math:`U(0.75 r, 1.25 r)` and the radial
  deformation of each class, grain :math:`\sigma_b`, amplitude :math:`\delta` times texture mean
  :math:`u_0` at the reference enhancement (a config that scales contrast with the organ's HU is
  taken at ``scale_with_organ_hu``, where the factor is 1). For the ``liver`` and ``syntumor``
  presets: shape 1.42 ± 0.19, size 10.5 ± 8.4 mm, texture 5.5 ± 0.87 mm, intensity
  -55.1 ± 12.2 HU.
- **location** depends on the host organ, not only on the config: :data:`LOCATION_STATS` holds
  the depth of a medium tumour's centre as each preset places it in the benchmark's phantom hosts
  (seeds 2000-2003 at 1 mm, 800 draws: liver 17.6 ± 7.25 mm, syntumor 14.6 ± 9.26 mm). A config
  that is not a preset uses the ``liver`` value, with a note. On other hosts (CT),
  :func:`~tumorsynth.bench.run_robustness` measures it on them instead
  (:func:`measure_location_stats`, source ``measured``).

Any of them can be overridden in the benchmark config (``stats: {size: {mu: 12, sigma: 6}}``),
for instance with what ``tumorsynth fit-stats`` measured on labelled CT.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tumorsynth.bench.attributes import (
    ATTRIBUTES,
    UNITS,
    depth_at,
    organ_depth_mm,
    unit_covariances,
)
from tumorsynth.engine.config import SynthConfig, load_config
from tumorsynth.engine.stages.shape import N_HARMONICS
from tumorsynth.errors import ConfigError, PlacementError

__all__ = [
    "LOCATION_STATS",
    "AttributeStats",
    "derive_stats",
    "measure_location_stats",
    "resolve_stats",
]

log = logging.getLogger("tumorsynth.bench")

_DRAWS, _SHAPE_DRAWS, _SEED = 200_000, 5_000, 0


@dataclass(frozen=True)
class AttributeStats:
    r"""Mean and standard deviation of one attribute, in its unit.

    Attributes
    ----------
    mu, sigma : float
        :math:`\mu` and :math:`\sigma` (:math:`\sigma > 0`).
    n : int or None
        Number of tumours they were measured on (informational).
    unit : str
        Informational.
    source : str
        Where they come from (informational): ``derived``, ``preset``, ``measured`` (on the
        benchmark's hosts), ``fitted``, ``config``.
    """

    mu: float
    sigma: float
    n: int | None = None
    unit: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        if not (np.isfinite(self.mu) and np.isfinite(self.sigma) and self.sigma > 0):
            raise ConfigError(
                f"stats: mu must be finite and sigma positive, got mu={self.mu}, sigma={self.sigma}"
            )


#: Depth (mm) of the centre of one medium tumour below the organ surface, as each preset places it
#: in the phantom hosts 2000-2003 at 1 mm (mean and sample standard deviation of 800 draws).
LOCATION_STATS = {
    "liver": AttributeStats(17.6, 7.25, 786, "mm", "preset"),
    "syntumor": AttributeStats(14.6, 9.26, 800, "mm", "preset"),
}


def _class_weights(cfg: SynthConfig) -> dict[str, float]:
    """Share of each size class among the tumours the config draws (probability of each call's
    size class times the mean count it gives)."""
    weights = dict.fromkeys(cfg.shape.classes, 0.0)
    total = sum(cfg.size_class.values())
    for name, p in cfg.size_class.items():
        counts = cfg.shape.mix_counts if name == "mix" else {name: cfg.shape.classes[name].count}
        for cls, (lo, hi) in counts.items():
            weights[cls] += p / total * (lo + hi) / 2.0
    norm = sum(weights.values())
    if norm <= 0:
        raise ConfigError("the synthesis config draws no tumour (all counts are 0)")
    return {name: w / norm for name, w in weights.items() if w > 0}


def _derived(cfg: SynthConfig) -> dict[str, AttributeStats]:
    """Shape, size, texture and intensity as ``cfg`` draws them (see the module's notes)."""
    rng = np.random.default_rng(_SEED)
    weights = _class_weights(cfg)
    names = list(weights)
    cls = rng.choice(len(names), size=_DRAWS, p=np.array([weights[n] for n in names]))
    base = np.array([cfg.shape.classes[n].radius_mm for n in names])[cls]
    lo, hi = cfg.shape.axis_scale
    axes = rng.uniform(lo, hi, size=(_DRAWS, 3)) * base[:, None]
    kinds = [k for k, p in cfg.intensity.density.items() if p > 0]
    prob = np.array([cfg.intensity.density[k] for k in kinds])
    kind = rng.choice(len(kinds), size=_DRAWS, p=prob / prob.sum())
    ranges = np.array([cfg.intensity.delta_hu[k] for k in kinds])[kind]
    delta = rng.uniform(ranges[:, 0], ranges[:, 1])
    contrast = delta * rng.uniform(*cfg.texture.mean, size=_DRAWS)
    # the shape's elongation needs a quadrature per tumour: the first _SHAPE_DRAWS draws
    m = _SHAPE_DRAWS
    deform_mm = rng.uniform(*np.array([cfg.shape.classes[n].deform_mm for n in names])[cls[:m]].T)
    direction = rng.standard_normal((m, N_HARMONICS))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    beta = direction * (deform_mm / axes[:m].mean(axis=1))[:, None]
    scaled = axes[:m, :, None] * unit_covariances(beta) * axes[:m, None, :]
    eig = np.linalg.eigvalsh(scaled)
    values = {
        "shape": np.sqrt(eig[:, -1] / eig[:, 0]),
        "size": np.cbrt(axes.prod(axis=1)),
        "texture": rng.uniform(*cfg.texture.grain_sigma_mm, size=_DRAWS),
        "intensity": contrast,
    }
    out = {}
    for name, v in values.items():
        sigma = float(np.std(v, ddof=1))
        if sigma <= 0:  # a fixed value in the config: shells of one value are meaningless
            sigma = max(abs(float(np.mean(v))) * 0.1, 1e-3)
            log.info("note: %s is fixed by the config; sigma set to %.3g", name, sigma)
        out[name] = AttributeStats(float(np.mean(v)), sigma, len(v), UNITS[name], "derived")
    return out


def _preset_location(cfg: SynthConfig) -> AttributeStats:
    """The location of :data:`LOCATION_STATS` for ``cfg`` (the liver's for a non-preset, noted)."""
    if cfg.name in LOCATION_STATS:
        return LOCATION_STATS[cfg.name]
    log.info(
        "note: config %r is not a preset; the location's mu and sigma are the liver preset's "
        "(set stats.location, or measure them with tumorsynth.bench.measure_location_stats)",
        cfg.name,
    )
    return LOCATION_STATS["liver"]


def derive_stats(config: Any = "liver") -> dict[str, AttributeStats]:
    """Mean and standard deviation of shape, size, texture and intensity per tumour, as a synthesis
    config draws them, and of the location from :data:`LOCATION_STATS`.

    Parameters
    ----------
    config : str, path, dict or SynthConfig
        The synthesis config (see :func:`tumorsynth.load_config`).

    Returns
    -------
    dict of str to AttributeStats
        One entry per attribute of :data:`~tumorsynth.bench.attributes.ATTRIBUTES`.

    Examples
    --------
    >>> s = derive_stats("liver")["size"]
    >>> round(s.mu, 1), round(s.sigma, 1)
    (10.5, 8.4)
    """
    return resolve_stats(config)


def resolve_stats(
    config: Any, overrides: Mapping[str, AttributeStats] | None = None
) -> dict[str, AttributeStats]:
    """:func:`derive_stats` of ``config`` with ``overrides`` (e.g. fitted or measured values) on
    top; the preset location is looked up (and a non-preset noted) only when not overridden."""
    cfg = load_config(config)
    overrides = dict(overrides or {})
    for name in overrides:
        if name not in ATTRIBUTES:
            raise ConfigError(f"stats: unknown attribute {name!r}; the attributes are {ATTRIBUTES}")
    stats = _derived(cfg)
    if "location" not in overrides:
        stats["location"] = _preset_location(cfg)
    stats.update(overrides)
    return {name: stats[name] for name in ATTRIBUTES}


def measure_location_stats(hosts: Sequence[Any], config: Any, draws: int = 200) -> AttributeStats:
    """Depth of the centre of the benchmark's in-distribution tumour, as ``config`` places it in
    ``hosts``, ``draws`` per host (seeds 0, 1, ...).

    Parameters
    ----------
    hosts : sequence of Case or Host
        :class:`~tumorsynth.Case` objects or the benchmark's
        :class:`~tumorsynth.bench.cases.Host` crops (whose depth map is reused).
    config : str, path, dict or SynthConfig
        The single-tumour synthesis config of the benchmark (see
        :func:`tumorsynth.bench.cases.single_tumour_config`); draws that find no room are left out.
    draws : int
        Draws per host.

    Returns
    -------
    AttributeStats
        Source ``measured``, ``n`` the number of tumours placed.

    Raises
    ------
    PlacementError
        Fewer than two tumours could be placed.
    """
    from tumorsynth.engine.case import as_case
    from tumorsynth.engine.pipeline import sample_params

    config = load_config(config)
    depths = []
    for host in hosts:
        case = as_case(getattr(host, "case", host))
        depth = getattr(host, "depth_mm", None)
        if depth is None:
            depth = organ_depth_mm(np.asarray(case.organ), case.spacing_mm)
        for seed in range(draws):
            try:
                params = sample_params(case, config=config, rng=seed)
            except PlacementError:
                continue
            depths += [depth_at(depth, le.center_mm, case.spacing_mm) for le in params.lesions]
    if len(depths) < 2:
        raise PlacementError("too few tumours could be placed to measure the location's spread")
    values = np.asarray(depths)
    return AttributeStats(
        float(values.mean()), float(values.std(ddof=1)), len(values), "mm", "measured"
    )
