r"""Sites: which part of the organ a tumour's centre is drawn from, and how deep it must lie.

Two organ-specific refinements of :mod:`~tumorsynth.engine.stages.location`:

- **Lateral band** (``location.lateral_band``): a band of the organ's extent along the patient's
  right-to-left axis, as fractions from its right end; with probability
  ``lateral_band_probability`` a centre lies in the band, otherwise outside it. The pancreas preset
  uses it for the head (the right end of the gland): two thirds of ductal adenocarcinomas arise
  there. The right-left axis is read from the case's direction (LPS, as SimpleITK gives it); a case
  without one is taken as RAS, as the phantom and MONAI's ``Orientationd("RAS")`` lay arrays out:
  X increases toward the patient's right.
- **Exophytic growth** (``location.exophytic_probability``, ``exophytic_margin_mm``): a renal cell
  carcinoma often grows out of the kidney's surface into the fat. An exophytic tumour's centre lies
  in the organ, close enough to the surface that its inscribed ball (radius
  ``exophytic_depth_fraction`` of the mean semi-axis) is not all organ, so part of it protrudes;
  the render then also changes and labels the voxels outside the organ that it covers. The centre
  also lies deep enough that everything the tumour changes stays within ``exophytic_margin_mm`` of
  the organ: a ball of radius :math:`d` around the centre being all organ, a point :math:`p` the
  tumour changes lies within :math:`|p - c| - d + \delta` of an organ voxel's centre
  (:math:`\delta` the voxel diagonal, for the ball's test at voxel centres), and
  :math:`|p - c| \le a_{max} R_{hi} + h` (the largest semi-axis times the bound of the radial
  function, plus the halo :math:`h` of the edge blur and capsule). So
  :math:`d = a_{max} R_{hi} + h + \delta - m` bounds the margin by :math:`m`.
  With ``exophytic_into_hu`` set, the part outside the organ must also lie, for the most part
  (:data:`INTO_SHARE` of a fixed lattice of points filling the tumour), in host voxels within that
  HU range: the perirenal fat the kidney preset grows into, not the liver, spleen, bowel or muscle
  beside the kidney.
"""

from __future__ import annotations

import numpy as np

from tumorsynth.engine.case import Case
from tumorsynth.engine.stages.capsule import CapsuleConfig
from tumorsynth.engine.stages.intensity import IntensityConfig
from tumorsynth.engine.stages.shape import MIN_RADIAL, ShapeGeometry, sh_basis
from tumorsynth.kernels.layout import CAPS_OUT, EDGE_REACH

__all__ = [
    "INTO_SHARE",
    "exophytic_depths_mm",
    "grows_into",
    "halo_mm",
    "lateral_axis",
    "lateral_interval",
]

INTO_SHARE = 0.8
"""Share of an exophytic tumour's points outside the organ that must lie in ``exophytic_into_hu``."""

_LATTICE = 9  # points per axis of the lattice that fills a tumour (at most 9^3, within the ball)


def halo_mm(intensity: IntensityConfig, capsule: CapsuleConfig) -> float:
    """How far beyond its surface a tumour drawn from these configs can change the image, mm (the
    edge blur's and the capsule's reach at their largest; the mass effect moves no tissue outside
    the organ)."""
    reach = EDGE_REACH * max(intensity.edge_sigma_mm)
    if capsule.probability > 0:
        reach = max(reach, CAPS_OUT * max(capsule.thickness_mm))
    return float(reach)


def lateral_axis(case: Case) -> tuple[int, bool]:
    """The array axis closest to the patient's right-left axis, and whether increasing indices go
    toward the patient's left (read from ``case.direction``; RAS when it has none)."""
    if case.direction is None:
        return 0, False  # RAS: X increases toward the patient's right
    left = np.asarray(case.direction, float).reshape(3, 3)[0]  # LPS x component of each axis
    axis = int(np.argmax(np.abs(left)))
    return axis, bool(left[axis] > 0)


def lateral_interval(
    case: Case, band: tuple[float, float], lo: np.ndarray, hi: np.ndarray
) -> tuple[int, int, int]:
    """``(axis, a, b)``: the voxels ``[a, b)`` along the right-left axis that lie in ``band``
    (fractions of the organ's bounding box ``[lo, hi)`` from its right end)."""
    axis, toward_left = lateral_axis(case)
    extent = int(hi[axis] - lo[axis])
    first = int(np.floor(band[0] * extent))
    last = max(int(np.ceil(band[1] * extent)), first + 1)
    if toward_left:  # the right end is the low end
        return axis, int(lo[axis]) + first, int(lo[axis]) + last
    return axis, int(hi[axis]) - last, int(hi[axis]) - first


def exophytic_depths_mm(
    geom: ShapeGeometry,
    mean_radius_mm: float,
    spacing_mm,
    margin_mm: float,
    halo: float,
    depth_fraction: float,
    min_depth_mm: float,
) -> tuple[float, float]:
    """``(inside_mm, protrude_mm)`` of an exophytic tumour: the ball of radius ``inside_mm`` around
    its centre must be all organ (everything it changes then lies within ``margin_mm`` of the
    organ: see the module), and the ball of radius ``protrude_mm`` must not be (part of the tumour
    lies outside); no position fits when ``inside_mm >= protrude_mm``."""
    diagonal = float(np.linalg.norm(np.asarray(spacing_mm, float)))
    reach = geom.a_max_mm * geom.r_hi + halo
    inside = max(min_depth_mm, reach + diagonal - margin_mm)
    inscribed = geom.a_min_mm * geom.r_lo  # the tumour holds this ball around its centre
    protrude = min(depth_fraction * mean_radius_mm, inscribed)
    return float(inside), float(protrude)


def _ball_lattice() -> np.ndarray:
    """A fixed lattice of points in the unit ball (unit-ball coordinates), (N, 3)."""
    axis = (np.arange(_LATTICE) + 0.5) / _LATTICE * 2.0 - 1.0
    q = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    return q[np.linalg.norm(q, axis=1) <= 1.0]


def grows_into(case: Case, be, center_mm, geom: ShapeGeometry, deform, hu_range) -> bool:
    """Whether at least :data:`INTO_SHARE` of the tumour's lattice points outside the organ (none:
    True) lie in host voxels whose HU is within ``hu_range`` (reads a few hundred voxels)."""
    q = _ball_lattice() * geom.r_hi
    rho = np.linalg.norm(q, axis=1)
    u = q / np.maximum(rho, 1e-12)[:, None]
    radial = geom.kappa * np.maximum(1.0 + sh_basis(u) @ np.asarray(deform), MIN_RADIAL)
    q = q[rho <= radial]  # inside the tumour
    points = np.asarray(center_mm) + q @ np.linalg.inv(geom.to_unit).T
    index = np.rint(points / np.asarray(case.spacing_mm)).astype(np.int64)
    index = index[np.all((index >= 0) & (index < np.asarray(case.shape)), axis=1)]
    if index.size == 0:
        return True
    at = (index[:, 0], index[:, 1], index[:, 2])
    outside = be.to_host(case.organ[at]) == 0
    if not outside.any():
        return True
    hu = be.to_host(case.image[at])[outside]
    inside_range = (hu >= hu_range[0]) & (hu <= hu_range[1])
    return bool(inside_range.mean() >= INTO_SHARE)
