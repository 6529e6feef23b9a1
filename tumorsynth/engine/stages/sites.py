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
"""

from __future__ import annotations

import numpy as np

from tumorsynth.engine.case import Case
from tumorsynth.engine.stages.capsule import CapsuleConfig
from tumorsynth.engine.stages.intensity import IntensityConfig
from tumorsynth.engine.stages.shape import ShapeGeometry
from tumorsynth.kernels.layout import CAPS_OUT, EDGE_REACH

__all__ = ["exophytic_depths_mm", "halo_mm", "lateral_axis", "lateral_interval"]


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
