"""The body wall of the built-in phantom: its contour and layers (skin, subcutaneous fat, muscle).

:class:`Body` draws one patient's contour and wall thicknesses; :class:`BodyLayer` turns a wall
boundary into a :class:`~tumorsynth.phantom.shapes.Shape`, :func:`body_points` evaluates it at scattered
points and :func:`wall_point` finds a point at a given depth in the wall (mm).
"""

from __future__ import annotations

import numpy as np

from tumorsynth.phantom.grid import Grid
from tumorsynth.phantom.kernels import sdf as phantom_sdf
from tumorsynth.phantom.shapes import Shape

__all__ = ["Body", "BodyLayer", "body_points", "wall_point"]

_N_BINS = 720  # angular bins of the body-contour tables (0.5 degree)


class Body:
    """The body contour and its wall layers (skin, subcutaneous fat, muscle), smooth along z.

    The contour is a superellipse (flatter on the back) with a few random low-order harmonics; the
    layer depths are measured along the contour's normal (mm).
    """

    def __init__(self, rng: np.random.Generator):
        self.centre = np.array([rng.uniform(-3, 3), rng.uniform(-8, -2)])
        self.a_mm = rng.uniform(140, 152)
        self.b_mm = rng.uniform(108, 118)
        self.z_mod = rng.uniform(0.02, 0.04, 2), rng.uniform(0, 2 * np.pi, 2)
        k = np.arange(2, 7)
        self.harm = np.stack(
            [k, rng.normal(0, 0.012, 5), rng.normal(0, 0.006, 5), rng.uniform(0, 2 * np.pi, 5)], 1
        )
        self.fat_mm = rng.uniform(12, 19)
        self.fat_harm = np.stack(
            [np.arange(1, 4), rng.normal(0, 0.15, 3), rng.uniform(0, 6.3, 3)], 1
        )
        self.muscle_mm = rng.uniform(10, 13)
        self.theta = -np.pi + (np.arange(_N_BINS) + 0.5) * (2 * np.pi / _N_BINS)

    def _radius(self, th, z):
        amp, ph = self.z_mod
        a = self.a_mm * (1 + amp[0] * np.sin(2 * np.pi * z / 500 + ph[0]))
        b = self.b_mm * (1 + amp[1] * np.sin(2 * np.pi * z / 500 + ph[1]))
        p = 2.25 - 0.25 * np.sin(th)  # 2 on the belly, 2.5 on the flatter back
        r = 1.0 / (np.abs(np.cos(th) / a) ** p + np.abs(np.sin(th) / b) ** p) ** (1.0 / p)
        wobble = sum((c0 + c1 * z / 120.0) * np.cos(kk * th + q) for kk, c0, c1, q in self.harm)
        return r * (1 + wobble) * (1 - 0.015 * np.exp(-(((th + np.pi / 2) / 0.2) ** 2)))

    def profile(self, th, z) -> np.ndarray:
        """(5, ...) at angles ``th`` (rad) and heights ``z`` (mm), broadcast: body radius (mm),
        normal factor, subcutaneous fat and wall-muscle thickness (mm), fat-plane weight."""
        h = 2 * np.pi / _N_BINS
        r = self._radius(th, z)
        dr = (self._radius(th + h, z) - self._radius(th - h, z)) / (2 * h)
        g = r / np.sqrt(r**2 + dr**2)
        fat = self.fat_mm * (1 + 0.2 * np.sin(th) - 0.08 * z / 120.0)
        fat = fat + self.fat_mm * sum(c * np.cos(kk * th + q) for kk, c, q in self.fat_harm)
        fat = np.clip(fat * (1 - 0.3 * np.exp(-(((th + np.pi / 2) / 0.3) ** 2))), 10.0, 25.0)
        muscle = self.muscle_mm * (1 + 0.3 * np.cos(2 * th))
        muscle = muscle * (1 - 0.7 * np.exp(-(((th - np.pi / 2) / 0.07) ** 2)))
        planes = np.clip((np.abs(np.cos(th)) - 0.4) / 0.3, 0, 1)
        return np.stack(np.broadcast_arrays(r, g, fat, muscle, planes))

    def tables(self, zs: np.ndarray) -> np.ndarray:
        """:meth:`profile` on every angular bin (5, nz, n_bins) for slices ``zs`` (mm).

        The last full table is kept: the slices of a sub-box are looked up in it.
        """
        zs = np.asarray(zs, float)
        known, table = getattr(self, "_memo", (np.zeros(0), None))
        if zs.size and known.size:
            k0 = int(np.searchsorted(known, zs[0]))
            if k0 + zs.size <= known.size and np.array_equal(known[k0 : k0 + zs.size], zs):
                return table[:, k0 : k0 + zs.size]
        table = self.profile(self.theta[None, :], zs[:, None])
        self._memo = (zs, table)
        return table

    def forget(self) -> None:
        """Drop the table kept by :meth:`tables`."""
        self._memo = (np.zeros(0), None)

    def columns(self, xs, ys, spacing_xy) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Radius (mm), angular bin and partial-volume ramp width (mm) of each (x, y) column."""
        dx = np.asarray(xs)[:, None] - self.centre[0]
        dy = np.asarray(ys)[None, :] - self.centre[1]
        radius = np.hypot(dx, dy)
        theta = np.arctan2(dy, dx)
        bins = np.floor((theta + np.pi) / (2 * np.pi) * _N_BINS).astype(np.int64) % _N_BINS
        width = np.maximum(
            np.abs(np.cos(theta)) * spacing_xy[0] + np.abs(np.sin(theta)) * spacing_xy[1], 1.0
        )
        return radius, bins, width

    def layer_sdf(self, g: Grid, depth: str) -> np.ndarray:
        """SDF (mm) of the body (``"skin"``), the inside of the fat (``"fat"``) or the cavity."""
        radius, bins, _ = self.columns(g.xs, g.ys, g.spacing[:2])
        out = np.empty(g.shape, np.float32)
        tables = np.ascontiguousarray(self.tables(g.zs))
        phantom_sdf.layer_sdf(out, radius, bins, tables, ("skin", "fat", "cavity").index(depth))
        return out


class BodyLayer(Shape):
    """A body-wall boundary as a :class:`Shape` (``depth``: "skin", "fat" or "cavity")."""

    def __init__(self, body: Body, depth: str):
        self.body, self.depth = body, depth
        self.lo = np.full(3, -np.inf)
        self.hi = np.full(3, np.inf)

    def sdf(self, g: Grid) -> np.ndarray:
        return self.body.layer_sdf(g, self.depth)


def body_points(body: Body, p: np.ndarray, depth: str) -> np.ndarray:
    """:meth:`Body.layer_sdf` at scattered points ``p`` (n, 3), mm."""
    dx, dy = p[:, 0] - body.centre[0], p[:, 1] - body.centre[1]
    bins = np.floor((np.arctan2(dy, dx) + np.pi) / (2 * np.pi) * _N_BINS).astype(int) % _N_BINS
    t = body.profile(body.theta[bins], p[:, 2])
    d = (np.hypot(dx, dy) - t[0]) * t[1]
    if depth in ("fat", "cavity"):
        d = d + t[2]
    if depth == "cavity":
        d = d + t[3]
    return d


def wall_point(body: Body, theta_deg: float, z_mm: float, depth_mm: float, under_fat=False):
    """The point (mm) ``depth_mm`` under the skin (or under the fat) at an angle on slice ``z_mm``."""
    th = np.radians(theta_deg)
    b = (
        int(np.floor((np.arctan2(np.sin(th), np.cos(th)) + np.pi) / (2 * np.pi) * _N_BINS))
        % _N_BINS
    )
    t = body.profile(body.theta[b], z_mm)
    r = t[0] - (depth_mm + (t[2] if under_fat else 0.0)) / t[1]
    return np.array([body.centre[0] + r * np.cos(th), body.centre[1] + r * np.sin(th), z_mm])
