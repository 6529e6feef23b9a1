"""Geometry of the built-in phantom: SDF shapes in millimetres, the body wall and the organs.

Everything here is defined in patient millimetres relative to the centre of the default field of view
(x toward the patient's right, y anterior, z superior) and never refers to a voxel grid, so the same
seed gives the same patient at any spacing. Shapes are approximate signed distance fields (SDF, mm,
negative inside) evaluated by the numba kernels of :mod:`tumorsynth.kernels.phantom_kernels`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tumorsynth.kernels import phantom_kernels as pk

__all__ = [
    "Blob",
    "Body",
    "BodyLayer",
    "Cached",
    "Csg",
    "Cylinders",
    "Dome",
    "Grid",
    "HalfSpace",
    "Shape",
    "Tubes",
    "body_points",
    "bowel_walk",
    "ellipsoid",
    "path_tubes",
    "plane_waves",
    "rotation",
    "vessel_tree",
    "wall_point",
]

_FAR_MM = 1.0e4  # SDF value of "far outside" (beyond the evaluated margin of tubes)
_N_BINS = 720  # angular bins of the body-contour tables (0.5 degree)


@dataclass(frozen=True)
class Grid:
    """Voxel-centre coordinates (mm) of a regular box of voxels.

    Attributes
    ----------
    xs, ys, zs : ndarray of float64
        Coordinates of the voxel centres along x, y and z (mm).
    spacing : tuple of float
        Voxel size along x, y, z (mm).
    offset : tuple of int
        Index of the first voxel in the enclosing volume.
    """

    xs: np.ndarray
    ys: np.ndarray
    zs: np.ndarray
    spacing: tuple[float, float, float]
    offset: tuple[int, int, int] = (0, 0, 0)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.xs.size, self.ys.size, self.zs.size)

    @property
    def origin(self) -> np.ndarray:
        return np.array([self.xs[0], self.ys[0], self.zs[0]])

    @classmethod
    def box(cls, lo_mm, hi_mm, spacing_mm: float) -> Grid:
        """A grid of step ``spacing_mm`` covering the box [lo_mm, hi_mm]."""
        axes = [
            np.arange(lo, hi + spacing_mm, spacing_mm) for lo, hi in zip(lo_mm, hi_mm, strict=True)
        ]
        return cls(*axes, spacing=(spacing_mm,) * 3)

    def sub(self, lo_mm, hi_mm) -> Grid | None:
        """The part of this grid whose voxel centres lie in [lo_mm, hi_mm], or None if empty."""
        axes, first = [], []
        for a, c in enumerate((self.xs, self.ys, self.zs)):
            s = self.spacing[a]
            i0 = max(int(np.ceil((lo_mm[a] - c[0]) / s - 1e-9)), 0)
            i1 = min(int(np.floor((hi_mm[a] - c[0]) / s + 1e-9)) + 1, c.size)
            if i0 >= i1:
                return None
            axes.append(c[i0:i1])
            first.append(self.offset[a] + i0)
        return Grid(*axes, spacing=self.spacing, offset=tuple(first))

    def slices(self, outer: Grid) -> tuple[slice, slice, slice]:
        """Index slices of this grid inside ``outer`` (a grid that contains it)."""
        return tuple(
            slice(self.offset[a] - outer.offset[a], self.offset[a] - outer.offset[a] + n)
            for a, n in enumerate(self.shape)
        )  # type: ignore[return-value]

    def mesh(self, axis: int) -> np.ndarray:
        """Coordinates along ``axis`` broadcastable to the grid's shape."""
        c = (self.xs, self.ys, self.zs)[axis]
        shape = [1, 1, 1]
        shape[axis] = c.size
        return c.reshape(shape)


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
        waves = pk.wave_tables(self.warp, g.xs, g.ys, g.zs)
        cap = 0.5 * sum(g.spacing) + 1.0  # partial-volume ramp and one voxel of gradient
        lo, hi = self.band_mm[0] - cap, self.band_mm[1] + cap
        if reach_mm is not None:
            lo, hi = -np.inf, reach_mm
        pk.blob_sdf(out, g.xs, g.ys, g.zs, self.rows, self.k, waves, lo, hi, 2.5)
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
        pk.tube_sdf(out, o[0], o[1], o[2], *g.spacing, self.segs, margin)
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
        pk.cylinder_sdf(out, g.xs, g.ys, g.zs, self.rows)
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
        pk.layer_sdf(out, radius, bins, tables, ("skin", "fat", "cavity").index(depth))
        return out


class BodyLayer(Shape):
    """A body-wall boundary as a :class:`Shape` (``depth``: "skin", "fat" or "cavity")."""

    def __init__(self, body: Body, depth: str):
        self.body, self.depth = body, depth
        self.lo = np.full(3, -np.inf)
        self.hi = np.full(3, np.inf)

    def sdf(self, g: Grid) -> np.ndarray:
        return self.body.layer_sdf(g, self.depth)


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


def _segment_inside(inside, a, b, r_mm, skip_mm=0.0) -> bool:
    """Whether the tube from ``a`` to ``b`` (radius ``r_mm``) stays inside the organ (1 mm margin)."""
    length = float(np.linalg.norm(b - a))
    n = max(int(length / 1.5), 2)
    t = np.linspace(0.0, 1.0, n)
    t = t[t * length >= skip_mm]
    if t.size == 0:
        return True
    return bool(np.all(inside(a + t[:, None] * (b - a)) < -(r_mm + 1.0)))


def vessel_tree(rng, inside, points, roots, generations: int, weights=None) -> np.ndarray:
    """Grow a space-filling vessel tree in an organ; return its tube segments (M, 8) in mm.

    Each branch heads for the (weighted) centroid of its territory, a cloud of points sampled in the
    organ; at its end the territory is split in two across its longest axis and each half grows a
    child branch, whose radius follows the share of the territory it drains. Branches that would
    leave the organ (``inside(points)`` is the organ's SDF) are shortened or re-aimed.

    Parameters
    ----------
    rng : numpy.random.Generator
    inside : callable
        SDF (mm) of the organ at points (n, 3).
    points : ndarray, shape (n, 3)
        Points filling the organ (mm).
    roots : list of (start, point indices, radius_mm, skip_mm)
        One entry per trunk; ``skip_mm`` is the length at its start allowed outside the organ.
    generations : int
        Number of branching generations below each trunk.
    weights : ndarray, shape (n,), optional
        Point weights for the centroids (steers branches toward heavily weighted regions).
    """
    w_all = np.ones(len(points)) if weights is None else np.asarray(weights, float)
    segs: list[list[float]] = []

    def grow(start, idx, r, gen, skip):
        pts, w = points[idx], w_all[idx]
        centroid = (pts * w[:, None]).sum(0) / w.sum()
        leaf = gen >= generations or len(idx) < 12 or r < 1.4
        if leaf:
            u = centroid - start
            u /= max(np.linalg.norm(u), 1e-6)
            far = pts[np.argmax((pts - start) @ u)]
            targets = [centroid + 0.55 * (far - centroid), centroid]
        else:
            targets = [start + rng.uniform(0.45, 0.7) * (centroid - start)]
        near = idx[np.argsort(np.linalg.norm(pts - centroid, axis=1))[:12]]
        targets += [start + 0.6 * (points[i] - start) for i in near[::3]]
        r_end = max((0.6 if leaf else 0.95) * r, 0.8)
        end = None
        for target in targets:
            v = target - start
            if np.linalg.norm(v) < 4.0:
                continue
            side = np.cross(v, rng.normal(size=3))
            side *= 0.08 * np.linalg.norm(v) / max(np.linalg.norm(side), 1e-6)
            mid = start + 0.5 * v + side
            r_mid = 0.5 * (r + r_end)
            if _segment_inside(inside, start, mid, r, skip) and _segment_inside(
                inside, mid, target, r_end
            ):
                segs.append([*start, *mid, r, r_mid])
                segs.append([*mid, *target, r_mid, r_end])
                end, skip = target, 0.0
                break
        if leaf:
            return
        if end is None:  # no way through: the territory splits right here instead
            end, r_end = start, r
        c = pts - pts.mean(0)
        axis = np.linalg.eigh(c.T @ c)[1][:, -1] + rng.normal(0, 0.25, 3)
        proj = c @ axis
        cut = np.quantile(proj, rng.uniform(0.4, 0.6))
        for half in (idx[proj < cut], idx[proj >= cut]):
            if len(half):
                grow(end, half, r_end * (len(half) / len(idx)) ** (1 / 3), gen + 1, skip)

    for start, idx, r, skip in roots:
        grow(np.asarray(start, float), np.asarray(idx), r, 1, skip)
    return np.asarray(segs, float).reshape(-1, 8)


def bowel_walk(rng, start, lo_mm, hi_mm, clearance, radius_mm, length_mm, step_mm=9.0):
    """Pieces of a self-avoiding random walk (loops of small bowel) in the box [lo_mm, hi_mm].

    ``clearance(points)`` is the distance (mm) from points to the other organs; the walk keeps a tube
    of ``radius_mm`` 3 mm away from them and from its own earlier loops.
    """
    lo, hi = np.asarray(lo_mm, float), np.asarray(hi_mm, float)
    pieces, current = [], [np.asarray(start, float)]
    done: list[np.ndarray] = []
    heading = rng.normal(size=3)
    total, failures = 0.0, 0

    def free(c, own):
        ok = np.all((c > lo) & (c < hi), axis=1) & (clearance(c) > radius_mm + 3.0)
        old = done + own
        if old:
            prev = np.asarray(old)
            gap = np.linalg.norm(c[:, None, :] - prev[None], axis=2).min(axis=1)
            ok &= gap > 2 * radius_mm + 4.0
        return ok

    while total < length_mm and failures < 40:
        u = heading / np.linalg.norm(heading) + 0.9 * rng.normal(size=(24, 3))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        cand = current[-1] + step_mm * u
        ok = free(cand, current[:-3])
        if ok.any():
            pick = rng.choice(np.flatnonzero(ok))
            heading = cand[pick] - current[-1]
            current.append(cand[pick])
            total += step_mm
            continue
        failures += 1
        if len(current) > 2:
            pieces.append(np.asarray(current))
        done.extend(current)
        seeds = lo + rng.uniform(size=(300, 3)) * (hi - lo)
        ok = free(seeds, [])
        if not ok.any():
            break
        current = [seeds[np.flatnonzero(ok)[0]]]
        heading = rng.normal(size=3)
    if len(current) > 2:
        pieces.append(np.asarray(current))
    return pieces


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
