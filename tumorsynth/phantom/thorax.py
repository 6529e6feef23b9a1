"""The thorax of the built-in phantom: the diaphragm, the lung bases with their vessels, the heart."""

from __future__ import annotations

import numpy as np

from tumorsynth.phantom.body import Body, BodyLayer, body_points
from tumorsynth.phantom.grid import Grid
from tumorsynth.phantom.recipe import Step, coat
from tumorsynth.phantom.shapes import Blob, Csg, Cylinders, Shape, Tubes, ellipsoid, plane_waves

__all__ = ["Dome", "thorax"]


class Dome(Shape):
    """The diaphragm: two paraboloid domes (right higher), smooth-maxed; SDF of the region below.

    ``sign=-1`` gives the region above instead.
    """

    def __init__(self, rng: np.random.Generator, sign: float = 1.0):
        self.right = np.array([rng.uniform(52, 64), rng.uniform(-10, 0), rng.uniform(86, 94)])
        self.left = np.array([rng.uniform(-64, -52), rng.uniform(-10, 0), 0.0])
        self.left[2] = self.right[2] - rng.uniform(8, 15)
        self.sign = sign
        self.lo = np.full(3, -np.inf)
        self.hi = np.full(3, np.inf)

    def flipped(self) -> Dome:
        other = object.__new__(Dome)
        other.__dict__.update(self.__dict__)
        other.sign = -self.sign
        return other

    def height(self, x, y) -> np.ndarray:
        """Height (mm) of the diaphragm above (x, y)."""
        out = []
        for c in (self.right, self.left):
            ry = np.where(y > c[1], 150.0, 75.0)
            out.append(c[2] - (x - c[0]) ** 2 / 240.0 - (y - c[1]) ** 2 / (2 * ry))
        a, b, k = out[0], out[1], 25.0
        h = np.maximum(k - np.abs(a - b), 0.0) / k
        return np.maximum(a, b) + h * h * k * 0.25

    def sdf(self, g: Grid) -> np.ndarray:
        h = self.height(g.mesh(0), g.mesh(1)).astype(np.float32)
        d = (g.mesh(2).astype(np.float32) - h) * np.float32(self.sign * 0.85)
        return np.broadcast_to(d, g.shape)


def thorax(rng: np.random.Generator, body: Body, dome: Dome, cavity: BodyLayer) -> list[Step]:
    """The lung bases (with their vessels) above the diaphragm, and the heart on it.

    The lungs fill the body cavity above ``dome`` outside the mediastinum, under a 4 mm muscle coat
    (the diaphragm and the chest wall); the heart sits on the diaphragm in its fat.
    """
    above = dome.flipped()
    zr = dome.right[2]
    gxy = np.stack(np.meshgrid(np.arange(-150, 151, 5.0), np.arange(-130, 131, 5.0)), -1)
    gxy = gxy.reshape(-1, 2)
    gxy = gxy[body_points(body, np.hstack([gxy, np.full((len(gxy), 1), zr)]), "cavity") < 0]
    t_lo = np.array([*gxy.min(0) - 8, dome.height(gxy[:, 0], gxy[:, 1]).min() - 6])
    t_hi = np.array([*gxy.max(0) + 8, 400.0])
    mediastinum = Cylinders([[-6, -20, 0, 21, 110, 500, 5]])
    lungs = Csg(cavity, clips=[(above, 0.0)], carves=[(mediastinum, 0.0)])
    starts = rng.uniform((-130, -100, t_lo[2]), (130, 60, 160), (70, 3))
    ends = starts + rng.normal(0, 1, (70, 3)) * rng.uniform(8, 25, (70, 1))
    radii = np.hstack([rng.uniform(1.2, 2.4, (70, 1)), np.ones((70, 1))])
    lung_vessels = Tubes(np.hstack([starts, ends, radii]))
    hc = np.array([-12.0, 28.0, 0.0])
    hc[2] = dome.height(hc[0], hc[1]) + 44
    heart = Csg(Blob([ellipsoid(hc, (58, 45, 55), (0, 0, 35))]), clips=[(above, 4.0)])
    return [
        Step(lungs, [coat("muscle", "muscle"),
                     coat("lung", "lung", 4.0, texture=plane_waves(rng, 8, (15, 40), 15)),
                     coat(110.0, "lung", 4.0, clip=lung_vessels)], t_lo, t_hi),
        Step(heart, [coat("visceral_fat", "visceral_fat", -3.0), coat("myocardium", "heart"),
                     coat("blood", "heart", 9.0)]),
    ]  # fmt: skip
