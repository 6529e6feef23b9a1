"""SDF shapes of the built-in phantom, in millimetres, and the tubes along smooth paths.

Everything here is defined in patient millimetres relative to the centre of the default field of view
(x toward the patient's right, y anterior, z superior) and never refers to a voxel grid, so the same
seed gives the same patient at any spacing. Shapes are approximate signed distance fields (SDF, mm,
negative inside) evaluated on a :class:`~tumorsynth.phantom.grid.Grid` by the numba kernels of
:mod:`tumorsynth.phantom.kernels.sdf`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tumorsynth.phantom.grid import Grid
from tumorsynth.phantom.kernels import sdf as phantom_sdf
from tumorsynth.phantom.kernels.waves import wave_tables

__all__ = [
    "Blob",
    "Cached",
    "Csg",
    "Cylinders",
    "HalfSpace",
    "Shape",
    "Tubes",
    "ellipsoid",
    "path_tubes",
    "plane_waves",
    "rotation",
    "tube",
]

_FAR_MM = 1.0e4  # SDF value of "far outside" (beyond the evaluated margin of tubes)


def rotation(angles_deg) -> np.ndarray:
    """Rotation matrix ``Rz @ Ry @ Rx`` for angles (about x, y, z) in degrees."""
    ax, ay, az = np.radians(angles_deg)
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def ellipsoid(center_mm, semi_axes_mm, angles_deg=(0.0, 0.0, 0.0)) -> np.ndarray:
    """One ellipsoid row for :class:`Blob`: centre, world-to-local rotation, inverse semi-axes."""
    r = rotation(angles_deg)
    return np.concatenate(
        [np.asarray(center_mm, float), r.T.ravel(), 1.0 / np.asarray(semi_axes_mm)]
    )


def plane_waves(rng: np.random.Generator, n: int, wavelength_mm, amplitude: float) -> np.ndarray:
    """``n`` random plane waves whose sum has standard deviation ``amplitude``.

    Rows are (kx, ky, kz in rad/mm, phase, amplitude); wavelengths are uniform in ``wavelength_mm``.
    """
    direction = rng.normal(size=(n, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    k = 2 * np.pi / rng.uniform(*wavelength_mm, size=(n, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
    amp = np.full((n, 1), amplitude * np.sqrt(2.0 / n))
    return np.hstack([direction * k, phase, amp])


class Shape:
    """An approximate signed distance field (mm) with a bounding box (mm)."""

    lo: np.ndarray
    hi: np.ndarray

    def sdf(self, g: Grid) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError


class Blob(Shape):
    """Smooth union of rotated ellipsoids (rows of :func:`ellipsoid`) with an optional warp."""

    def __init__(self, rows, k_smooth_mm: float = 0.0, warp=None, band_mm=(-12.0, 6.0)):
        self.rows = np.atleast_2d(np.asarray(rows, float))
        self.band_mm = band_mm  # SDF values that must be exact (coats' insets, carves' dilations)
        self.k = float(k_smooth_mm)
        self.warp = np.zeros((0, 5)) if warp is None else np.asarray(warp, float)
        rot = self.rows[:, 3:12].reshape(-1, 3, 3)  # world -> local
        semi = 1.0 / self.rows[:, 12:15]
        reach = np.sqrt(np.einsum("kji,kj->ki", rot**2, semi**2))  # extent along world axes
        pad = self.k + np.abs(self.warp[:, 4]).sum() + 1.0
        self.lo = (self.rows[:, :3] - reach).min(axis=0) - pad
        self.hi = (self.rows[:, :3] + reach).max(axis=0) + pad

    def sdf(self, g: Grid, reach_mm: float | None = None) -> np.ndarray:
        """SDF on ``g``, exact in the band (or up to ``reach_mm`` outside), interpolated elsewhere."""
        out = np.empty(g.shape, np.float32)
        waves = wave_tables(self.warp, g.xs, g.ys, g.zs)
        cap = 0.5 * sum(g.spacing) + 1.0  # partial-volume ramp and one voxel of gradient
        lo, hi = self.band_mm[0] - cap, self.band_mm[1] + cap
        if reach_mm is not None:
            lo, hi = -np.inf, reach_mm
        phantom_sdf.blob_sdf(out, g.xs, g.ys, g.zs, self.rows, self.k, waves, lo, hi, 2.5)
        return out


class Tubes(Shape):
    """Union of tapered tubes: rows (x0, y0, z0, x1, y1, z1, r0, r1) in mm."""

    def __init__(self, segs):
        self.segs = np.atleast_2d(np.asarray(segs, float))
        r = self.segs[:, 6:8].max(axis=1, keepdims=True)
        ends = np.concatenate([self.segs[:, :3] - r, self.segs[:, 3:6] - r])
        self.lo = ends.min(axis=0) - 1.0
        self.hi = (np.concatenate([self.segs[:, :3] + r, self.segs[:, 3:6] + r])).max(axis=0) + 1.0

    def sdf(self, g: Grid, reach_mm: float | None = None) -> np.ndarray:
        """SDF on ``g`` up to ``reach_mm`` outside the tubes (default: enough to paint and carve)."""
        out = np.full(g.shape, _FAR_MM, np.float32)
        margin = 5.0 + 1.5 * max(g.spacing) if reach_mm is None else reach_mm
        o = g.origin
        phantom_sdf.tube_sdf(out, o[0], o[1], o[2], *g.spacing, self.segs, margin)
        return out

    def sdf_points(self, p: np.ndarray) -> np.ndarray:
        """SDF at points ``p`` (n, 3) mm (for placement checks)."""
        a, b = self.segs[:, :3], self.segs[:, 3:6]
        u = b - a
        l2 = np.maximum((u**2).sum(axis=1), 1e-12)
        out = np.empty(len(p))
        for s in range(0, len(p), 1024):  # chunks keep the (points, segments, 3) arrays small
            q = p[s : s + 1024, None, :]
            t = np.clip(np.einsum("pmk,mk->pm", q - a, u) / l2, 0, 1)
            r = self.segs[:, 6] + t * (self.segs[:, 7] - self.segs[:, 6])
            out[s : s + 1024] = (np.linalg.norm(q - (a + t[..., None] * u), axis=2) - r).min(1)
        return out


class Cylinders(Shape):
    """Union of rounded elliptic cylinders along z: rows (cx, cy, cz, ax, ay, half_h, round)."""

    def __init__(self, rows):
        self.rows = np.atleast_2d(np.asarray(rows, float))
        ext = self.rows[:, 3:6]
        self.lo = (self.rows[:, :3] - ext).min(axis=0) - 1.0
        self.hi = (self.rows[:, :3] + ext).max(axis=0) + 1.0

    def sdf(self, g: Grid) -> np.ndarray:
        out = np.empty(g.shape, np.float32)
        phantom_sdf.cylinder_sdf(out, g.xs, g.ys, g.zs, self.rows)
        return out


class HalfSpace(Shape):
    """``sign * (coordinate[axis] - level_mm)``: e.g. the region above a fluid level."""

    def __init__(self, axis: int, level_mm: float, sign: float = 1.0):
        self.axis, self.level, self.sign = axis, level_mm, sign
        self.lo = np.full(3, -np.inf)
        self.hi = np.full(3, np.inf)

    def sdf(self, g: Grid) -> np.ndarray:
        d = (self.sign * (g.mesh(self.axis) - self.level)).astype(np.float32)
        return np.broadcast_to(d, g.shape)


class Cached(Shape):
    """A shape whose SDF is computed once per rendered volume and then sliced (see :meth:`prime`)."""

    def __init__(self, shape: Shape):
        self.shape, self.lo, self.hi = shape, shape.lo, shape.hi
        self._grid: Grid | None = None
        self._sdf: np.ndarray | None = None

    def prime(self, g: Grid | None, pad_mm: float = 0.0) -> None:
        """Compute and keep the SDF on the part of ``g`` around the shape (None: forget it)."""
        self._grid = self._sdf = None
        if g is not None:
            sub = g.sub(self.lo - pad_mm, self.hi + pad_mm)
            if sub is not None:
                self._sdf, self._grid = self.shape.sdf(sub), sub

    def sdf(self, g: Grid) -> np.ndarray:
        c = self._grid
        if c is not None and c.spacing == g.spacing:
            first = np.subtract(g.offset, c.offset)
            if np.all(first >= 0) and np.all(first + g.shape <= c.shape):
                return self._sdf[
                    tuple(slice(f, f + n) for f, n in zip(first, g.shape, strict=True))
                ]
        return self.shape.sdf(g)


@dataclass
class Csg(Shape):
    """``base`` intersected with ``clips`` (each with an offset, mm) minus dilated ``carves``.

    ``sdf = max(base, clip_i + offset_i, -(carve_j - dilate_j))``; carves are evaluated only inside
    their own bounding boxes, clips everywhere in the base's box.
    """

    base: Shape
    clips: list[tuple[Shape, float]] = field(default_factory=list)
    carves: list[tuple[Shape, float]] = field(default_factory=list)

    def __post_init__(self):
        self.lo, self.hi = self.base.lo, self.base.hi

    def sdf(self, g: Grid) -> np.ndarray:
        d = np.array(self.base.sdf(g), dtype=np.float32)
        for shape, offset in self.clips:
            np.maximum(d, shape.sdf(g) + np.float32(offset), out=d)
        for shape, dilate in self.carves:
            pad = dilate + 3.0 * max(g.spacing)
            sub = g.sub(shape.lo - pad, shape.hi + pad)
            if sub is None:
                continue
            region = d[sub.slices(g)]
            np.maximum(region, np.float32(dilate) - shape.sdf(sub), out=region)
        return d


def _catmull_rom(points: np.ndarray, step_mm: float) -> np.ndarray:
    """Resample a polyline as a smooth Catmull-Rom curve with points about ``step_mm`` apart."""
    p = np.vstack([2 * points[0] - points[1], points, 2 * points[-1] - points[-2]])
    out = [points[:1]]
    for i in range(1, len(p) - 2):
        n = max(int(np.ceil(np.linalg.norm(p[i + 1] - p[i]) / step_mm)), 1)
        t = (np.arange(1, n + 1) / n)[:, None]
        a, b, c, d = p[i - 1], p[i], p[i + 1], p[i + 2]
        out.append(
            0.5
            * (
                2 * b
                + (-a + c) * t
                + (2 * a - 5 * b + 4 * c - d) * t**2
                + (-a + 3 * b - 3 * c + d) * t**3
            )
        )
    return np.vstack(out)


def path_tubes(points, radii_mm, step_mm: float = 4.0, smooth: bool = True) -> np.ndarray:
    """Segments (M, 8) of a tube along a polyline (smoothed), radius interpolated along it.

    The smoothed curve is sampled every ``step_mm`` or every half radius, whichever is longer.
    """
    points = np.asarray(points, float)
    radii = np.broadcast_to(np.asarray(radii_mm, float), (len(points),))
    step_mm = max(step_mm, 0.5 * float(radii.mean()))
    if smooth and len(points) > 2:
        curve = _catmull_rom(points, step_mm)
        # arc-length parameter of the control points to interpolate the radius
        seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
        s_ctrl = np.concatenate([[0], np.cumsum(seg)])
        s_curve = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(curve, axis=0), axis=1))])
        r = np.interp(s_curve / s_curve[-1] * s_ctrl[-1], s_ctrl, radii)
    else:
        curve, r = points, radii
    return np.hstack([curve[:-1], curve[1:], r[:-1, None], r[1:, None]])


def tube(points, radii_mm, step_mm: float = 4.0) -> Tubes:
    """A smooth tube along the polyline ``points`` (mm), radius interpolated along it (mm)."""
    return Tubes(path_tubes(np.asarray(points, float), radii_mm, step_mm))
