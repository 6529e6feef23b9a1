"""The liver of the built-in phantom: its lobes, sized to a plausible volume, and the gallbladder."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import map_coordinates

from tumorsynth.phantom.body import BodyLayer
from tumorsynth.phantom.grid import Grid
from tumorsynth.phantom.recipe import Coat, Step, coat, jitter
from tumorsynth.phantom.shapes import Blob, Cached, Csg, Shape, ellipsoid, plane_waves
from tumorsynth.phantom.thorax import Dome

__all__ = ["PLAN_MM", "Liver", "gallbladder_step", "liver", "liver_coat"]

#: Spacing (mm) of the grid on which the liver is sized and its vessel trees are planned.
PLAN_MM = 3.0

# Lobes of the liver: centre (x, y, z below the right dome's top), semi-axes, angles (degrees).
_LIVER_PARTS = (
    ((72, -2, -70), (52, 68, 62), (0, 8, 0)),  # right lobe
    ((52, -4, -30), (66, 72, 40), (0, 0, 0)),  # dome under the right hemidiaphragm
    ((82, 6, -106), (38, 46, 36), (0, -10, 0)),  # inferior tip of the right lobe
    ((-5, 30, -40), (62, 38, 26), (0, 12, -20)),  # left lobe
    ((25, 28, -58), (40, 40, 32), (0, 0, 0)),  # medial (quadrate) segment
    ((8, -15, -55), (16, 18, 28), (0, 0, 0)),  # caudate lobe
)


@dataclass
class Liver:
    """One patient's liver and gallbladder.

    Attributes
    ----------
    shape : Cached
        The liver's SDF (mm), cached on the rendered volume while it is painted.
    gallbladder : Blob
        The gallbladder (carved out of the liver).
    plan : Grid
        The planning grid (``PLAN_MM`` spacing) over the liver's box.
    d_plan : ndarray of float32
        The liver's SDF (mm) on ``plan``.
    lo_mm, hi_mm : ndarray, shape (3,)
        Box (mm) of the liver's voxels on ``plan``, padded by one planning voxel.
    volume_ml : float
        Volume of the liver on ``plan`` (mL).
    ref, scale : ndarray and float
        The liver was scaled by ``scale`` about ``ref`` (mm) to reach its volume.
    """

    shape: Cached
    gallbladder: Blob
    plan: Grid
    d_plan: np.ndarray
    lo_mm: np.ndarray
    hi_mm: np.ndarray
    volume_ml: float
    ref: np.ndarray
    scale: float

    def sdf_points(self, p) -> np.ndarray:
        """The liver's SDF (mm) at points ``p`` (n, 3) mm, interpolated on the planning grid."""
        q = ((np.atleast_2d(p) - self.plan.origin) / PLAN_MM).T
        return map_coordinates(self.d_plan, q, order=1, mode="nearest")

    def place(self, p) -> np.ndarray:
        """Where the point ``p`` (mm) of the unscaled liver lies in this (scaled) one."""
        return self.ref + self.scale * (p - self.ref)


def liver(
    rng: np.random.Generator,
    zr: float,
    cavity: BodyLayer,
    dome: Dome,
    carves: list[tuple[Shape, float]],
) -> Liver:
    """The liver under the right dome (top at ``zr``, mm), sized to 1.3-1.8 L on the planning grid.

    The lobes are a warped smooth union of ellipsoids, clipped to the body cavity and the diaphragm;
    the gallbladder and ``carves`` (the neighbouring organs, each with a dilation in mm) are carved
    out. The whole is rescaled until its volume is in range (at most 8 tries).
    """
    parts = [(jitter(rng, c, 4) + np.array([0, 0, zr]), np.array(a) * rng.uniform(0.93, 1.07, 3),
              np.array(g) + rng.normal(0, 4, 3)) for c, a, g in _LIVER_PARTS]  # fmt: skip
    warp = plane_waves(rng, 6, (60, 140), 3.0)
    ref, scale = np.array([50, 0, zr - 60]), rng.uniform(0.94, 1.06)
    gb_rel = jitter(rng, (38, 32, zr - 108))
    gb_semi = np.array([15, 17, 36]) * rng.uniform(0.85, 1.1)
    gb_ang = (50 + rng.normal(0, 8), 0, 15 + rng.normal(0, 8))
    for _ in range(8):
        lobes = Blob([ellipsoid(ref + scale * (c - ref), scale * a, g) for c, a, g in parts],
                     18 * scale, warp, band_mm=(-np.inf, np.inf))  # fmt: skip
        gb = Blob([ellipsoid(ref + scale * (gb_rel - ref), gb_semi, gb_ang)])
        shape = Csg(lobes, clips=[(cavity, 1.0), (dome, 0.5)], carves=[(gb, 0.8), *carves])
        plan = Grid.box(shape.lo, shape.hi, PLAN_MM)
        d_plan = shape.sdf(plan)
        volume_ml = float((d_plan < 0).sum()) * 27e-3
        if 1280 <= volume_ml <= 1800:
            break
        scale *= (1500 / volume_ml) ** (1 / 3)
    inner = np.argwhere(d_plan < 0)
    lo, hi = plan.origin + inner.min(0) * 3 - 3, plan.origin + inner.max(0) * 3 + 3
    lobes.band_mm = (-1.0, 4.0)  # from now on only the surface matters (and carves up to 4 mm)
    cached = Cached(shape)
    cached.lo, cached.hi = lo - 5, hi + 5  # the SDF is needed only near the liver
    return Liver(cached, gb, plan, d_plan, lo, hi, volume_ml, ref, scale)


def liver_coat(rng: np.random.Generator) -> Coat:
    """The parenchyma's coat: its HU (100-110) and texture."""
    return coat(rng.uniform(100, 110), "liver", texture=plane_waves(rng, 8, (40, 100), 3.5))


def gallbladder_step(gb: Blob) -> Step:
    """The gallbladder's paint step: its wall and the bile."""
    return Step(gb, [coat(50.0, "gallbladder"), coat("bile", "gallbladder", 2.5)])
