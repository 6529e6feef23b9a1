r"""Location: where in the organ a tumour goes.

A centre is drawn uniformly among the organ's voxels inside an axial band (a fraction of the organ's
extent along Z; the reference uses 30-70 %), jittered uniformly within its voxel, and accepted when

- a ball of radius ``max(min_depth_mm, depth_fraction * mean semi-axis)`` around it is all organ
  (the reference keeps centres 2 voxels inside the organ's outline in-slice);
- with ``avoid_vessels``, the tumour overlaps no vessel voxel (the vessel map of
  :func:`tumorsynth.kernels.reference.vessel_map`: organ voxels whose HU, smoothed with a
  Gaussian of ``vessel_sigma_mm``, exceeds the organ's median plus ``vessel_offset_hu``; the
  paper's collision check, which its released code leaves out). Tumours whose mean semi-axis
  exceeds ``vessel_max_radius_mm`` are exempt: a vascular liver has no vessel-free room for a
  5-8 cm mass, and such masses displace (mass effect) or encase vessels;
- with ``avoid_overlap``, its equivalent sphere (radius :math:`(abc)^{1/3}`) overlaps no earlier
  tumour's (lobes may still touch);
- the tumour holds the centre of at least one organ voxel, so that it is labelled somewhere (a
  tumour smaller than a voxel may hold none, and would change the image unlabelled).

Organ-specific options (:mod:`~tumorsynth.engine.stages.sites`): a lateral band that a share of the
centres is drawn from (the pancreatic head), and exophytic tumours (the kidney), which protrude
from the organ's surface within a bounded margin. Presets that leave them off draw exactly as
before.

Up to ``max_tries`` centres are proposed; a tumour that still does not fit is dropped (``if_no_room:
skip``; a :class:`PlacementError` is raised when not one of a call's tumours fits) or raises at once
(``raise``). Only the local neighbourhood of each proposal is read, so placement costs
grow with the tumours, not with the CT.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from tumorsynth.backend import Backend, get_backend
from tumorsynth.engine.case import Case
from tumorsynth.engine.packing import lesion_box, shape_row
from tumorsynth.engine.stages.shape import (
    MIN_RADIAL,
    ShapeGeometry,
    ShapeParams,
    sh_basis,
    shape_geometry,
)
from tumorsynth.engine.stages.sites import exophytic_depths_mm, grows_into, lateral_interval
from tumorsynth.errors import ConfigError, PlacementError

__all__ = [
    "LocationConfig",
    "Placement",
    "check_organ_size",
    "no_room_error",
    "place",
    "place_site",
]

BATCH, MAX_BATCHES = 64, 256  # candidate centres are drawn and screened 64 at a time
VESSEL_SAFETY_HU = 0.5  # placement tests a threshold this much lower, so rounding never lets a
# tumour touch a voxel that the exact vessel map marks


@dataclass(frozen=True)
class LocationConfig:
    """How tumour centres are placed.

    Attributes
    ----------
    axial_band : tuple of float
        Fractions of the organ's Z extent between which centres lie.
    min_depth_mm : float
        Smallest distance from a centre to the organ's outline, mm.
    depth_fraction : float
        Required depth as a fraction of the tumour's mean semi-axis (0: only ``min_depth_mm``).
    avoid_vessels : bool
        Reject positions where the tumour would overlap the vessel map.
    vessel_offset_hu : float
        Vessel threshold above the organ's median HU.
    vessel_sigma_mm : float
        Gaussian smoothing of the image before thresholding, mm.
    vessel_max_radius_mm : float or None
        Tumours with a larger mean semi-axis are not checked against vessels (None: all are).
    avoid_overlap : bool
        Keep tumours apart (their equivalent spheres do not intersect).
    max_tries : int
        Proposals per tumour before giving up.
    if_no_room : {"skip", "raise"}
        ``skip``: drop a tumour that cannot be placed (error only if none of a call's tumours fits);
        ``raise``: error at the first one.
    lateral_band : tuple of float or None
        Fractions of the organ's extent along the patient's right-to-left axis, from its right
        end, of a band that ``lateral_band_probability`` of the centres lie in (the others lie
        outside it); None: no band (see :mod:`~tumorsynth.engine.stages.sites`).
    lateral_band_probability : float
    exophytic_probability : float
        Probability that a tumour grows out of the organ's surface (0: never).
    exophytic_margin_mm : float
        An exophytic tumour changes nothing farther than this from the organ, mm.
    exophytic_depth_fraction : float
        An exophytic tumour's centre lies less than this fraction of its mean semi-axis from the
        organ's outline (at most its inscribed radius), so that part of it protrudes.
    exophytic_into_hu : tuple of float or None
        An exophytic tumour's part outside the organ lies, for the most part, in host voxels of
        this HU range (the fat around the kidney; see
        :func:`~tumorsynth.engine.stages.sites.grows_into`); None: anywhere.
    min_organ_ml : float
        A smaller organ is refused, in one line (a part of a gland cut by the field of view, or a
        mask at too coarse a spacing, would clip most of any tumour to a few voxels); 0: none.
    """

    axial_band: tuple[float, float] = (0.0, 1.0)
    min_depth_mm: float = 2.0
    depth_fraction: float = 0.6
    avoid_vessels: bool = True
    vessel_offset_hu: float = 40.0
    vessel_sigma_mm: float = 1.0
    vessel_max_radius_mm: float | None = 20.0
    avoid_overlap: bool = True
    max_tries: int = 100
    if_no_room: Literal["skip", "raise"] = "skip"
    lateral_band: tuple[float, float] | None = None
    lateral_band_probability: float = 1.0
    exophytic_probability: float = 0.0
    exophytic_margin_mm: float = 0.0
    exophytic_depth_fraction: float = 0.5
    exophytic_into_hu: tuple[float, float] | None = None
    min_organ_ml: float = 0.0

    def __post_init__(self) -> None:
        lo, hi = self.axial_band
        if not 0.0 <= lo < hi <= 1.0:
            raise ConfigError(f"location.axial_band must satisfy 0 <= lo < hi <= 1, got {lo, hi}")
        if self.if_no_room not in ("raise", "skip"):
            raise ConfigError("location.if_no_room must be 'raise' or 'skip'")
        if self.max_tries < 1 or self.min_depth_mm < 0 or self.depth_fraction < 0:
            raise ConfigError("location: max_tries >= 1, min_depth_mm >= 0, depth_fraction >= 0")
        band = self.lateral_band
        if band is not None and not 0.0 <= band[0] < band[1] <= 1.0:
            raise ConfigError(
                f"location.lateral_band must satisfy 0 <= lo < hi <= 1, got {self.lateral_band}"
            )
        for name in ("lateral_band_probability", "exophytic_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"location.{name} must be in [0, 1]")
        if self.exophytic_probability > 0 and not (
            self.exophytic_margin_mm > 0 and self.exophytic_depth_fraction > 0
        ):
            raise ConfigError(
                "location: exophytic tumours need exophytic_margin_mm > 0 and "
                "exophytic_depth_fraction > 0"
            )


@dataclass(frozen=True)
class Placement:
    """Where a tumour was placed: its centre (mm) and whether it grows out of the organ."""

    center_mm: tuple[float, float, float]
    exophytic: bool = False


def place(
    rng: np.random.Generator,
    case: Case,
    cfg: LocationConfig,
    shape: ShapeParams,
    placed: list[tuple[np.ndarray, float]],
    organ_hu: float,
    be: Backend | None = None,
    halo_mm: float = 0.0,
) -> tuple[float, float, float] | None:
    """Draw an accepted centre (mm) for a tumour of the given shape, or None to skip it: the centre
    of :func:`place_site` (which also tells whether the tumour is exophytic)."""
    site = place_site(rng, case, cfg, shape, placed, organ_hu, be, halo_mm)
    return None if site is None else site.center_mm


def place_site(
    rng: np.random.Generator,
    case: Case,
    cfg: LocationConfig,
    shape: ShapeParams,
    placed: list[tuple[np.ndarray, float]],
    organ_hu: float,
    be: Backend | None = None,
    halo_mm: float = 0.0,
) -> Placement | None:
    """Draw an accepted centre for a tumour of the given shape, or None to skip it.

    ``placed`` holds (centre, equivalent radius) of the tumours placed so far; the new one is
    appended. ``halo_mm``: how far beyond its surface the tumour may change the image (edge blur,
    capsule; see :func:`~tumorsynth.engine.stages.sites.halo_mm`), which bounds an exophytic
    tumour's margin. The organ queries run on ``be`` (by default, where the case's arrays are);
    each answers the host with a few bytes.
    """
    be = be or get_backend(like=case.image)
    geom = shape_geometry(shape)
    mean_r = float(np.mean(shape.semi_axes_mm))
    depth_mm = max(cfg.min_depth_mm, cfg.depth_fraction * mean_r)
    spacing = np.asarray(case.spacing_mm)
    # the draws below happen only where a preset asks for them: others keep their random stream
    exophytic = cfg.exophytic_probability > 0 and rng.random() < cfg.exophytic_probability
    protrude_mm = 0.0
    if exophytic:
        depth_mm, protrude_mm = exophytic_depths_mm(
            geom, mean_r, spacing, cfg.exophytic_margin_mm, halo_mm,
            cfg.exophytic_depth_fraction, cfg.min_depth_mm,
        )  # fmt: skip
        if depth_mm >= protrude_mm:  # too large to protrude within the margin
            return _no_room(case, shape, cfg)
    in_band = None
    if cfg.lateral_band is not None:
        in_band = bool(rng.random() < cfg.lateral_band_probability)
    box_lo, box_hi, band = _candidate_box(case, cfg, in_band)
    equivalent_mm = float(np.prod(shape.semi_axes_mm)) ** (1.0 / 3.0)
    threshold = organ_hu + cfg.vessel_offset_hu - VESSEL_SAFETY_HU
    check_vessels = cfg.avoid_vessels and (
        cfg.vessel_max_radius_mm is None or mean_r <= cfg.vessel_max_radius_mm
    )
    others = np.array([(*c, r) for c, r in placed] if cfg.avoid_overlap else [], np.float64)
    tries = 0
    for _ in range(MAX_BATCHES):
        # candidates are drawn and screened in batches (organ, clearance, depth: local reads)
        voxels = rng.integers(box_lo, box_hi, size=(BATCH, 3))
        centres = (voxels + rng.uniform(-0.5, 0.5, size=(BATCH, 3))) * spacing
        verdict = be.kernels.screen_centres(
            case.organ, spacing, voxels, centres, depth_mm, others.reshape(-1, 4), equivalent_mm
        )
        if band is not None:  # a centre outside the band, drawn for the band: not a candidate
            axis, a, b = band
            verdict[(voxels[:, axis] >= a) & (voxels[:, axis] < b)] = 0
        for n in np.flatnonzero(verdict):
            tries += 1
            if tries > cfg.max_tries:
                break
            if verdict[n] < 2:
                continue
            center = centres[n]
            if exophytic and be.kernels.ball_inside_organ(case.organ, spacing, center, protrude_mm):
                continue  # too deep: it would not protrude
            into = cfg.exophytic_into_hu
            if exophytic and into and not grows_into(case, be, center, geom, shape.deform, into):
                continue  # it would grow into another organ, not into the fat
            if check_vessels:
                row = shape_row(center, geom, shape.deform)
                box = lesion_box(center, geom.extent_mm(geom.r_hi), spacing, case.shape)
                args = (case.image, case.organ, spacing, row, box[:3], box[3:])
                if be.kernels.vessel_overlap(*args, threshold, cfg.vessel_sigma_mm):
                    continue
            if not labels_a_voxel(case, be, center, geom, shape.deform, depth_mm):
                continue
            placed.append((center, equivalent_mm))
            return Placement((float(center[0]), float(center[1]), float(center[2])), exophytic)
        if tries > cfg.max_tries:
            break
    return _no_room(case, shape, cfg)


def _no_room(case: Case, shape: ShapeParams, cfg: LocationConfig) -> None:
    """None (the tumour is dropped), or the error when the config says to raise."""
    if cfg.if_no_room == "skip":
        return None
    raise no_room_error(case, shape, cfg)


def _candidate_box(case: Case, cfg: LocationConfig, in_band: bool | None):
    """The voxel box ``[lo, hi)`` that candidate centres are drawn from (the organ's box within
    the axial band, and within the lateral band when ``in_band``), and the lateral band
    ``(axis, a, b)`` its candidates must avoid (when ``in_band`` is False; else None)."""
    stats = case.organ_stats
    lo, hi = np.array(stats.bbox_lo), np.array(stats.bbox_hi)
    extent = hi[2] - lo[2]
    z_lo = lo[2] + int(np.floor(cfg.axial_band[0] * extent))
    z_hi = max(lo[2] + int(np.ceil(cfg.axial_band[1] * extent)), z_lo + 1)
    box_lo, box_hi = np.array([lo[0], lo[1], z_lo]), np.array([hi[0], hi[1], z_hi])
    if in_band is None:
        return box_lo, box_hi, None
    axis, a, b = lateral_interval(case, cfg.lateral_band, lo, hi)
    if not in_band:
        return box_lo, box_hi, (axis, a, b)
    box_lo[axis], box_hi[axis] = max(box_lo[axis], a), max(min(box_hi[axis], b), a + 1)
    return box_lo, box_hi, None


def labels_a_voxel(
    case: Case, be: Backend, center_mm, geom: ShapeGeometry, deform, depth_mm: float
) -> bool:
    """Whether a tumour centred at ``center_mm`` holds the centre of at least one organ voxel (the
    voxels it labels: the render's inside test, ``rho <= R(u)``).

    The voxel nearest the centre lies within half a voxel diagonal of it; a tumour whose inner
    bound reaches that far, placed at least that deep, holds it: the usual case, decided without a
    look at the arrays. Smaller tumours are tested on the voxels of their box.
    """
    spacing = np.asarray(case.spacing_mm)
    reach_mm = 0.5 * float(np.linalg.norm(spacing))
    if geom.r_lo * geom.a_min_mm >= reach_mm and depth_mm >= reach_mm:
        return True
    box = lesion_box(center_mm, geom.extent_mm(geom.r_hi), spacing, case.shape)
    axes = [np.arange(box[a], box[a + 3]) for a in range(3)]
    voxels = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    organ = be.to_host(case.organ[box[0] : box[3], box[1] : box[4], box[2] : box[5]]).reshape(-1)
    q = (voxels * spacing - np.asarray(center_mm)) @ geom.to_unit.T
    rho = np.linalg.norm(q, axis=1)
    u = q / np.maximum(rho, 1e-12)[:, None]
    radial = geom.kappa * np.maximum(1.0 + sh_basis(u) @ np.asarray(deform), MIN_RADIAL)
    return bool(((rho <= radial) & (organ > 0)).any())


def check_organ_size(case: Case, cfg: LocationConfig, config_name: str = "") -> None:
    """Raise a one-line :class:`PlacementError` when the organ is smaller than
    ``cfg.min_organ_ml``."""
    volume_ml = case.organ_stats.n_voxels * float(np.prod(case.spacing_mm)) / 1000.0
    if volume_ml < cfg.min_organ_ml:
        of = f" the {config_name} config" if config_name else " this config"
        raise PlacementError(
            f"{case.source}: the organ ({volume_ml:.3g} ml) is too small for{of}, which needs "
            f"at least {cfg.min_organ_ml:g} ml (location.min_organ_ml): is the mask the whole "
            "organ, and the right label?"
        )


def no_room_error(
    case: Case, shape: ShapeParams, cfg: LocationConfig, draws: int = 1, config_name: str = ""
) -> PlacementError:
    """The error for a tumour that does not fit (see :func:`place`); ``draws``: how many draws of
    tumours were tried before giving up (see :func:`tumorsynth.sample_params`); ``config_name``:
    the config (preset) that drew them, named in the message."""
    mean_r = float(np.mean(shape.semi_axes_mm))
    depth_mm = max(cfg.min_depth_mm, cfg.depth_fraction * mean_r)
    tried = f"in {draws} draws, " if draws > 1 else ""
    stats = case.organ_stats
    volume_ml = stats.n_voxels * float(np.prod(case.spacing_mm)) / 1000.0
    of = f" of the {config_name} config" if config_name else ""
    return PlacementError(
        f"{case.source}: no room for a {shape.size_class} tumour (mean semi-axis {mean_r:.1f} mm, "
        f"centre at least {depth_mm:.1f} mm inside the organ) {tried}after {cfg.max_tries} tries "
        f"each: the organ ({volume_ml:.3g} ml) is too small or too vascular for this size "
        f"class{of} (lower location.depth_fraction, turn off location.avoid_vessels, or choose a "
        "smaller size_class)"
    )
