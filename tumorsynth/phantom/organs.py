"""Solid organs of the built-in phantom besides the liver: the kidneys, the spleen and the pancreas."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tumorsynth.phantom.body import BodyLayer
from tumorsynth.phantom.recipe import Step, coat, jitter
from tumorsynth.phantom.shapes import Blob, Csg, Tubes, ellipsoid, plane_waves, rotation, tube
from tumorsynth.phantom.spine import Spine
from tumorsynth.phantom.thorax import Dome

__all__ = [
    "Kidney",
    "Spleen",
    "kidney",
    "kidneys",
    "pancreas",
    "pancreas_step",
    "spleen",
    "spleen_step",
]


@dataclass
class Kidney:
    """One kidney: its paint steps, its outer shape (an obstacle) and its hilum (mm)."""

    steps: list[Step]
    shape: Blob
    hilum: np.ndarray
    z_mm: float  # height of its centre before jitter (mm)


def kidney(rng: np.random.Generator, side: str, centre) -> tuple[list[Step], Blob, np.ndarray]:
    """A kidney (cortex, medullary pyramids, sinus fat, pelvis): (steps, kidney blob, hilum)."""
    steps: list[Step] = []
    s = 1.0 if side == "right" else -1.0
    semi = np.array([27, 22, 52]) * rng.uniform(0.93, 1.07)
    ang = (0.0, -s * 12 + rng.normal(0, 3), -s * 35 + rng.normal(0, 5))
    rot = rotation(ang)

    def at(local):
        return centre + rot @ np.asarray(local, float)

    shape = Blob([ellipsoid(centre, semi, ang)], warp=plane_waves(rng, 4, (60, 120), 1.0))
    lab = "kidney_" + side
    pyr = [
        ellipsoid(at((s * 13, y, z)), (6, 6, 8), ang) for z in (-32, -12, 8, 28) for y in (-9, 9)
    ]
    pyr += [ellipsoid(at((-s * 4, y, z)), (5, 6, 7), ang) for z in (-38, 38) for y in (-8, 8)]
    sinus = Blob([ellipsoid(at((-s * 16, 0, 0)), (12, 10, 30), ang)], 0.0)
    pelvis = Blob([ellipsoid(at((-s * 18, 0, -4)), (6, 5, 14), ang)])
    steps.append(Step(shape, [coat("kidney_cortex", lab)]))
    steps.append(Step(Blob(pyr), [coat("medulla", lab)]))
    steps.append(Step(sinus, [coat(-80.0, "visceral_fat")]))
    steps.append(Step(pelvis, [coat("urine", lab)]))
    return steps, shape, at((-s * 26, 0, 0))


def kidneys(rng: np.random.Generator, zr: float, sp: Spine) -> tuple[Kidney, Kidney]:
    """The right and left kidneys beside the spine, below the right dome's top ``zr`` (mm)."""
    zk_r, zk_l = zr - 128 + rng.normal(0, 5), zr - 118 + rng.normal(0, 5)
    right = kidney(rng, "right", jitter(rng, (68, sp.y(zk_r) - 12, zk_r)))
    left = kidney(rng, "left", jitter(rng, (-66, sp.y(zk_l) - 10, zk_l)))
    return Kidney(*right, zk_r), Kidney(*left, zk_l)


@dataclass
class Spleen:
    """The spleen: its centre (mm), its shape before carving (an obstacle) and the carved organ."""

    centre: np.ndarray
    blob: Blob
    shape: Csg

    @property
    def hilum(self) -> np.ndarray:
        """Where the splenic vessels enter (mm)."""
        return self.centre + np.array([18, 14, -12])


def spleen(
    rng: np.random.Generator,
    zl: float,
    cavity: BodyLayer,
    dome: Dome,
    kidney_left: Kidney,
    stomach_tube: Tubes,
) -> Spleen:
    """The spleen under the left dome (top at ``zl``, mm), carved off the left kidney and stomach."""
    centre = jitter(rng, (-84, -32, zl - 48))
    semi = np.array([22, 40, 55]) * rng.uniform(0.9, 1.1)
    lobe = ellipsoid(centre + np.array([8, 20, -25]), (16, 22, 25), (37, 0, 31))
    rows = [ellipsoid(centre, semi, (37, 0, 31)), lobe]
    blob = Blob(rows, 10.0, plane_waves(rng, 5, (50, 100), 2.0))
    shape = Csg(blob, clips=[(cavity, 1.0), (dome, 1.0)],
                carves=[(kidney_left.shape, 4.0), (stomach_tube, 3.0)])  # fmt: skip
    return Spleen(centre, blob, shape)


def spleen_step(rng: np.random.Generator, spl: Spleen) -> Step:
    """The spleen's paint step (draws its texture)."""
    return Step(spl.shape, [coat("spleen", "spleen", texture=plane_waves(rng, 6, (40, 90), 3.0))])


def pancreas(rng: np.random.Generator, zr: float) -> Tubes:
    """The pancreas from its head (by the duodenum) to its tail (at the splenic hilum)."""
    pts = [(38, 10, zr - 142), (30, 16, zr - 125), (8, 18, zr - 110), (-25, 8, zr - 100),
           (-58, -12, zr - 90), (-72, -22, zr - 84)]  # fmt: skip
    return tube([jitter(rng, p, 2) for p in pts], [14, 13, 11, 11, 9, 8])


def pancreas_step(rng: np.random.Generator, panc: Tubes) -> Step:
    """The pancreas's paint step (draws its lobulated texture)."""
    return Step(panc, [coat("pancreas", "pancreas", texture=plane_waves(rng, 10, (6, 16), 10))])
