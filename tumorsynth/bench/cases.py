r"""Hosts and test cases of the robustness benchmark: one tumour with chosen attribute values.

A test case is drawn in three steps:

1. **Base draw.** ``sample_params`` with the synthesis config reduced to one tumour of one size
   class (:func:`single_tumour_config`; one ``medium`` tumour by default, of equivalent radius
   about 16 mm, within :math:`\mu \pm \sigma` of the ``liver`` preset's sizes), seeded by the
   case's index: every attribute is in distribution.
2. **Set the attribute(s)** on the drawn :class:`~tumorsynth.LesionParams` (``dataclasses.replace``),
   keeping everything else (:mod:`~tumorsynth.bench.attributes` says how). A new size or
   elongation is placed again by the config's own rules, and its size-dependent draws (mass effect,
   capsule) are drawn again for it; if the config finds no room for it, it is placed with only the
   minimum depth (no vessel check, no depth in proportion to the radius). A location is a centre
   on a voxel at the chosen depth, away from vessels when the config avoids them (the first
   candidate if none is vessel free); the tumour is then clipped by the organ like any other.
3. **Render** it into the host (deterministic).

A base draw that finds no room, or a tumour too small to cover a voxel centre, is drawn again from
the next seed of the case (up to :data:`MAX_ATTEMPTS`); the seed used is recorded.

Hosts are cropped to the organ's bounding box plus a margin (``crop_margin_mm``, 20 mm by default)
before anything else: models see, and metrics count, that region only (false positives far from
the organ are not counted). The built-in phantom hosts use seeds 2000, 2001, ... which are neither
training hosts (0, 1, ...) nor validation hosts (1000, ...) of ``tumorsynth train``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tumorsynth.backend import get_backend
from tumorsynth.bench.attributes import (
    lesion_value,
    organ_depth_mm,
    shape_radius_mm,
    with_contrast,
    with_elongation,
    with_grain,
    with_radius,
)
from tumorsynth.bench.shells import CaseSpec
from tumorsynth.engine.case import Case, as_case
from tumorsynth.engine.config import SynthConfig, load_config
from tumorsynth.engine.packing import lesion_box, shape_row
from tumorsynth.engine.params import LesionParams, TumorParams
from tumorsynth.engine.pipeline import render, sample_params
from tumorsynth.engine.stages.capsule import sample_capsule
from tumorsynth.engine.stages.location import VESSEL_SAFETY_HU, LocationConfig, place_site
from tumorsynth.engine.stages.mass_effect import sample_mass_effect
from tumorsynth.engine.stages.shape import ShapeParams, shape_geometry
from tumorsynth.engine.stages.sites import halo_mm
from tumorsynth.errors import ConfigError, PlacementError

__all__ = [
    "MAX_ATTEMPTS",
    "PHANTOM_SEED",
    "Host",
    "TestCase",
    "crop_to_organ",
    "load_bench_hosts",
    "make_host",
    "single_tumour_config",
    "synthesize_case",
]

#: Seeds tried per test case before its placement is an error.
MAX_ATTEMPTS = 10
#: First seed of the benchmark's phantom hosts.
PHANTOM_SEED = 2000


@dataclass(frozen=True, eq=False)
class Host:
    """A healthy host, cropped around its organ.

    Attributes
    ----------
    name : str
        ``phantom2000``, or the CT's name.
    case : Case
        The crop (CT in HU, organ mask, spacing).
    depth_mm : numpy.ndarray
        (X, Y, Z) depth of each voxel below the organ's surface, mm
        (:func:`~tumorsynth.bench.attributes.organ_depth_mm`).
    box : tuple of slice
        Where the crop lies in the host volume, voxels.
    """

    name: str
    case: Case
    depth_mm: np.ndarray
    box: tuple[slice, ...]

    @property
    def is_phantom(self) -> bool:
        """Whether the host is a built-in phantom (:func:`tumorsynth.phantom.make_phantom` names
        its source ``phantom(seed=N)``)."""
        return str(self.case.source or "").startswith("phantom(seed=")


@dataclass(frozen=True, eq=False)
class TestCase:
    """A rendered test case.

    Attributes
    ----------
    spec : CaseSpec
    host : str
    seed : int
        Seed of the base draw that was used.
    values : dict of str to float
        The attribute values as rendered (a location is the depth of the chosen voxel).
    image : numpy.ndarray
        (X, Y, Z) float32 CT in HU with the tumour.
    label : numpy.ndarray
        (X, Y, Z) uint8: 0 background, 1 organ, 2 tumour.
    spacing_mm : tuple of float
    params : TumorParams
        What was rendered (replay with :func:`tumorsynth.render` on the host's crop).
    """

    spec: CaseSpec
    host: str
    seed: int
    values: dict[str, float]
    image: np.ndarray
    label: np.ndarray
    spacing_mm: tuple[float, float, float]
    params: TumorParams


def single_tumour_config(config: Any = "liver", size_class: str = "medium") -> SynthConfig:
    """The synthesis config reduced to exactly one tumour of ``size_class`` per call."""
    cfg = load_config(config)
    if size_class not in cfg.shape.classes:
        raise ConfigError(
            f"size_class {size_class!r} is not a class of the synthesis config "
            f"({', '.join(cfg.shape.classes)})"
        )
    one = dataclasses.replace(cfg.shape.classes[size_class], count=(1, 1))
    shape = dataclasses.replace(cfg.shape, classes={**cfg.shape.classes, size_class: one})
    return dataclasses.replace(cfg, size_class={size_class: 1.0}, shape=shape)


def crop_to_organ(case: Case, margin_mm: float | None) -> tuple[Case, tuple[slice, ...]]:
    """The case cropped to its organ's bounding box grown by ``margin_mm`` (None: not cropped)."""
    if margin_mm is None:
        return case, tuple(slice(0, n) for n in case.shape)
    stats = case.organ_stats
    grow = np.ceil(float(margin_mm) / np.asarray(case.spacing_mm)).astype(int)
    lo = np.maximum(np.asarray(stats.bbox_lo) - grow, 0)
    hi = np.minimum(np.asarray(stats.bbox_hi) + grow, case.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    image = np.ascontiguousarray(np.asarray(case.image, dtype=np.float32)[box])
    organ = np.ascontiguousarray(np.asarray(case.organ)[box])
    return as_case(image, organ, case.spacing_mm, source=case.source), box


def make_host(name: str, case: Case, margin_mm: float | None) -> Host:
    """A :class:`Host` from a case: cropped, with its depth map."""
    crop, box = crop_to_organ(case, margin_mm)
    return Host(name, crop, organ_depth_mm(np.asarray(crop.organ), crop.spacing_mm), box)


def _seed(seed: int, index: int, attempt: int) -> int:
    return int(np.random.SeedSequence([seed, index, attempt]).generate_state(1)[0])


def _replace_shape(
    host: Host, cfg: SynthConfig, lesion: LesionParams, shape: ShapeParams, rng, organ_hu: float
) -> LesionParams:
    """The lesion with a new shape: placed again, its mass effect and capsule drawn again."""
    halo = halo_mm(cfg.intensity, cfg.capsule)
    site = place_site(rng, host.case, cfg.location, shape, [], organ_hu, halo_mm=halo)
    if site is None:
        relaxed = dataclasses.replace(
            cfg.location, depth_fraction=0.0, avoid_vessels=False, if_no_room="skip"
        )
        site = place_site(rng, host.case, relaxed, shape, [], organ_hu, halo_mm=halo)
    if site is None:
        raise PlacementError(
            f"{host.name}: no room for a tumour of equivalent radius "
            f"{shape_radius_mm(shape):.1f} mm"
        )
    mean_r = float(np.mean(shape.semi_axes_mm))
    return dataclasses.replace(
        lesion,
        center_mm=site.center_mm,
        exophytic=site.exophytic,
        shape=shape,
        mass_effect=sample_mass_effect(rng, cfg.mass_effect, mean_r),
        capsule=sample_capsule(rng, cfg.capsule, mean_r),
    )


def _vessel_free(host: Host, cfg: LocationConfig, shape: ShapeParams, centre, organ_hu) -> bool:
    mean_r = float(np.mean(shape.semi_axes_mm))
    if not cfg.avoid_vessels or (
        cfg.vessel_max_radius_mm is not None and mean_r > cfg.vessel_max_radius_mm
    ):
        return True
    case, spacing = host.case, np.asarray(host.case.spacing_mm)
    geom = shape_geometry(shape)
    row = shape_row(centre, geom, shape.deform)
    box = lesion_box(centre, geom.extent_mm(geom.r_hi), spacing, case.shape)
    threshold = organ_hu + cfg.vessel_offset_hu - VESSEL_SAFETY_HU
    kernels = get_backend("cpu").kernels
    args = (case.image, case.organ, spacing, row, box[:3], box[3:])
    return not kernels.vessel_overlap(*args, threshold, cfg.vessel_sigma_mm)


def _place_at_depth(
    host: Host, cfg: LocationConfig, lesion: LesionParams, depth_mm: float, rng, organ_hu: float
) -> LesionParams:
    """The lesion centred on a voxel whose depth is closest to ``depth_mm`` (within half a voxel
    when the organ has such voxels), in the config's axial band; an exophytic tumour moved there
    is clipped by the organ like the others (its margin was bounded for its own centre)."""
    stats = host.case.organ_stats
    z_lo, z_hi = stats.bbox_lo[2], stats.bbox_hi[2]
    extent = z_hi - z_lo
    band = slice(z_lo + int(np.floor(cfg.axial_band[0] * extent)),
                 max(z_lo + int(np.ceil(cfg.axial_band[1] * extent)), z_lo + 1))  # fmt: skip
    depth = host.depth_mm[:, :, band]
    inside = depth > 0
    if not inside.any():
        raise PlacementError(f"{host.name}: no organ voxel in the axial band {cfg.axial_band}")
    depths = depth[inside]
    nearest = float(depths[np.argmin(np.abs(depths - depth_mm))])
    half = 0.5 * max(host.case.spacing_mm)
    centre_depth = depth_mm if abs(nearest - depth_mm) <= half else nearest
    voxels = np.argwhere(inside & (np.abs(depth - centre_depth) <= half))
    voxels[:, 2] += band.start
    order = rng.permutation(len(voxels))[: cfg.max_tries]
    spacing = np.asarray(host.case.spacing_mm)
    chosen = voxels[order[0]]
    for n in order:
        centre = voxels[n] * spacing
        if _vessel_free(host, cfg, lesion.shape, centre, organ_hu):
            chosen = voxels[n]
            break
    centre = tuple(float(c) for c in chosen * spacing)
    return dataclasses.replace(lesion, center_mm=centre, exophytic=False)


def _apply(host: Host, cfg: SynthConfig, params: TumorParams, spec: CaseSpec, rng) -> TumorParams:
    """Set the spec's attribute values on the one drawn lesion (shape and size first, the location
    last, so that it is chosen for the final shape)."""
    (lesion,) = params.lesions
    values = {d.attribute: d.value for d in spec.draws}
    shape = lesion.shape
    if "size" in values:
        shape = with_radius(shape, values["size"])
    if "shape" in values:
        shape = with_elongation(shape, values["shape"])
    median_hu = host.case.organ_stats.median_hu  # the vessel map's reference, as sampling's
    if shape is not lesion.shape:
        lesion = _replace_shape(host, cfg, lesion, shape, rng, median_hu)
    if "texture" in values:
        lesion = with_grain(lesion, values["texture"])
    if "intensity" in values:
        lesion = with_contrast(lesion, values["intensity"])
    if "location" in values:
        lesion = _place_at_depth(host, cfg.location, lesion, values["location"], rng, median_hu)
    return dataclasses.replace(params, lesions=(lesion,))


def synthesize_case(host: Host, config: SynthConfig, spec: CaseSpec, seed: int) -> TestCase:
    """Draw, set and render one test case (see the module's notes).

    Parameters
    ----------
    host : Host
    config : SynthConfig
        The single-tumour synthesis config (:func:`single_tumour_config`).
    spec : CaseSpec
        The attribute values and the index of the base draw.
    seed : int
        The run's seed.

    Raises
    ------
    PlacementError
        No seed of the case gave a tumour that fits and covers a voxel (naming the host).
    """
    last: Exception | None = None
    for attempt in range(MAX_ATTEMPTS):
        case_seed = _seed(seed, spec.index, attempt)
        try:
            params = sample_params(host.case, config=config, rng=case_seed)
            params = _apply(host, config, params, spec, np.random.default_rng([case_seed, 1]))
        except PlacementError as err:
            last = err
            continue
        result = render(host.case, params=params)
        if not (result.label == 2).any():
            last = PlacementError(f"{host.name}: the tumour covers no voxel centre")
            continue
        (lesion,) = params.lesions
        values = {
            d.attribute: lesion_value(d.attribute, lesion, host.depth_mm, host.case.spacing_mm)
            for d in spec.draws
        }
        return TestCase(
            spec, host.name, case_seed, values, result.image, result.label,
            host.case.spacing_mm, params,
        )  # fmt: skip
    where = ", ".join(f"{d.attribute} {d.value:.4g}" for d in spec.draws)
    raise PlacementError(
        f"{host.name}: no test tumour with {where} after {MAX_ATTEMPTS} seeds ({last})"
    )


def load_bench_hosts(
    sources: Sequence[Any] | None,
    *,
    margin_mm: float | None,
    phantom_seeds: Sequence[int] = (PHANTOM_SEED,),
    phantom_spacing_mm: float = 1.0,
    phantom_organ: str = "liver",
) -> list[Host]:
    """The benchmark's hosts: phantoms (``sources`` None; ``phantom_organ`` hosts the tumours) or
    :class:`~tumorsynth.dataset.sources.Source` objects (CT files with organ masks), read and
    cropped."""
    from tumorsynth.dataset.sources import Source, load_source

    if sources is None:
        spacing = (float(phantom_spacing_mm),) * 3
        sources = [
            Source(f"phantom{s}", phantom_seed=int(s), spacing_mm=spacing, organ=phantom_organ)
            for s in phantom_seeds
        ]
    return [make_host(s.name, load_source(s).case, margin_mm) for s in sources]
