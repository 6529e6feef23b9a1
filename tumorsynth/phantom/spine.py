"""The spine of the built-in phantom: vertebrae, discs, spinal canal, ribs and the muscles of the back."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tumorsynth.phantom.body import Body, BodyLayer, wall_point
from tumorsynth.phantom.recipe import Step, coat
from tumorsynth.phantom.shapes import (
    Blob,
    Csg,
    Cylinders,
    Tubes,
    ellipsoid,
    path_tubes,
    plane_waves,
    tube,
)

__all__ = ["Spine", "back_muscles", "spine"]


@dataclass
class Spine:
    """One patient's spine: where the column runs (mm), its paint steps and a tube around it."""

    x0: float  # midline x (mm)
    y0: float  # base y (mm) of the vertebral bodies' centres (see y)
    steps: list[Step] = field(default_factory=list)
    column: Tubes | None = None  # a 25 mm tube around the column: an obstacle for the organs

    def y(self, z):
        """Centre y (mm) of the vertebral bodies at heights ``z`` (mm): the lumbar lordosis."""
        return self.y0 + 4 * np.cos(np.pi * np.asarray(z) / 260)

    def scale(self, z):
        """Size factor of the vertebrae at heights ``z`` (mm): larger lower down."""
        return 1 - 0.08 * np.asarray(z) / 120


def spine(rng: np.random.Generator, body: Body, z_rib12: float) -> Spine:
    """Vertebrae, discs, canal, posterior elements and ribs (the 12th rib's head at ``z_rib12``, mm)."""
    steps: list[Step] = []
    level_mm = rng.uniform(29, 32)
    zv = z_rib12 + level_mm * np.arange(-12, 13)
    sp = Spine(rng.uniform(-2, 2), rng.uniform(-45, -39))
    x0, yb, fz = sp.x0, sp.y, sp.scale
    near = zv[np.abs(zv) < 200]
    half = (level_mm - 7.0) / 2
    bodies = [[x0, yb(z), z, 22.5 * fz(z), 16 * fz(z), half, 2.5] for z in near]
    discs = [[x0, yb(z), z + level_mm / 2, 22.5 * fz(z), 16 * fz(z), 4.2, 1.5] for z in near]
    zc = np.linspace(-220, 220, 23)
    canal = Tubes(path_tubes(np.stack([zc * 0 + x0, yb(zc) - 26 * fz(zc), zc], 1), 9 * fz(zc)))
    sp.column = Tubes(path_tubes(np.stack([zc * 0 + x0, yb(zc) - 4, zc], 1), 25 * fz(zc)))
    bone = [coat("cortex", "bone"), coat("cancellous", "bone", 1.5)]
    steps.append(Step(Csg(Cylinders(bodies), carves=[(canal, 1.0)]), bone))
    steps.append(Step(Csg(Cylinders(discs), carves=[(canal, 1.0)]), [
        coat("disc", "intervertebral_disc")]))  # fmt: skip
    for z in near:
        f, yc = fz(z), yb(z) - 26 * fz(z)
        rows = [ellipsoid((x0, yc - 22 * f, z - 5), (3.0, 10 * f, 10), (15, 0, 0))]
        for s in (1, -1):
            rows += [
                ellipsoid((x0 + s * 13 * f, yb(z) - 16 * f - 5, z + 3), (4.5, 6.5, 7)),
                ellipsoid((x0 + s * 7 * f, yc - 10, z - 2), (9 * f, 3.5, 10), (0, 0, s * 35)),
                ellipsoid((x0 + s * 25 * f, yc, z + 2), (13 * f, 4, 5), (0, 0, -s * 10)),
                ellipsoid((x0 + s * 13 * f, yc - 5, z), (4.5, 6, 12)),
            ]
        steps.append(Step(Csg(Blob(rows, 2.5), carves=[(canal, 1.0)]), [
            coat(700.0, "bone"), coat(300.0, "bone", 2.0)]))  # fmt: skip
    steps.append(Step(canal, [coat("csf", "spinal_canal")]))
    # ribs 12 (floating, short) upward: the lower ones end at the side, lowest; the upper ones reach
    # the front, descending less (the costal margin rises toward the xiphoid)
    reach = [80.0, 110.0, 140.0, 150.0, 156.0] + [160.0] * 8
    for s in (1, -1):
        segs = []
        for n, z in enumerate(zv[zv >= z_rib12 - 1]):
            drop_mm = 150.0 - 15.0 * max(n - 2, 0)
            if z - drop_mm > 200:
                break
            f, yc = fz(z), yb(z) - 26 * fz(z)
            phi = np.linspace(26, reach[n], 12)
            drop = drop_mm * ((phi - 26) / (reach[n] - 26)) ** 0.9 * (reach[n] - 26) / 134
            depth = rng.uniform(4.5, 7.5)
            pts = [np.array([x0 + s * 28 * f, yc + 2, z])]
            pts += [
                wall_point(body, -90 + s * p, z - dz, depth, True)
                for p, dz in zip(phi, drop, strict=True)
            ]
            segs.append(path_tubes(np.array(pts), rng.uniform(3.6, 4.4), 5.0))
        steps.append(Step(Tubes(np.vstack(segs)), [
            coat(650.0, "bone"), coat(220.0, "bone", 1.5)]))  # fmt: skip
    sp.steps = steps
    return sp


def back_muscles(
    rng: np.random.Generator, sp: Spine, fat_in: BodyLayer
) -> tuple[list[Step], Cylinders, list[Tubes]]:
    """The paraspinal, psoas and quadratus lumborum muscles beside ``sp``.

    Returns (steps, paraspinal muscles, psoas muscles (right, left)): the last two are obstacles that
    the liver and the small bowel keep away from.
    """
    x0, yb, fz = sp.x0, sp.y, sp.scale
    ycan = yb(0.0) - 26
    para = Cylinders([[x0 + s * 30, ycan - 22, 0, 27, 23, 500, 6] for s in (1, -1)])
    muscle_tex = plane_waves(rng, 6, (20, 50), 3.0)
    steps = [Step(Csg(para, clips=[(fat_in, 1.0)]), [coat(55.0, "muscle", texture=muscle_tex)])]
    zp, rp = np.array([30, -20, -80, -140, -220.0]), np.array([3, 9, 16, 21, 23.0])
    rq = np.array([3, 8, 12, 13, 13.0])
    psoas = []
    for s in (1, -1):
        psoas.append(
            tube(np.stack([x0 + s * (22.5 * fz(zp) + 0.8 * rp + 2), yb(zp) + 4, zp], 1), rp)
        )
        ql = np.stack([x0 + s * 62 + 0 * zp, yb(zp) - 20, zp - 20], 1)
        steps += [
            Step(psoas[-1], [coat("muscle", "muscle")]),
            Step(tube(ql, rq), [coat("muscle", "muscle")]),
        ]
    return steps, para, psoas
