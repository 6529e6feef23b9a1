r"""Shape: randomly deformed, randomly oriented ellipsoids by size class, in millimetres.

A tumour is the star-shaped solid

.. math:: \{ p : \lVert q \rVert \le R(q / \lVert q \rVert) \}, \quad q = D^{-1} Q^\top (p - c),

with centre :math:`c` (mm), rotation :math:`Q`, semi-axes :math:`D = \mathrm{diag}(a, b, c)` (mm)
and a smooth random radial deformation
:math:`R(u) = \kappa \, (1 + \sum_i \beta_i Y_i(u))` built from the 15 real spherical harmonics of
degrees 1-3 (:math:`Y_i` normalised to unit mean square on the sphere). :math:`\kappa` is chosen so
that the solid's volume is exactly :math:`\tfrac43 \pi a b c`: the deformation changes the outline,
not the size, so the equivalent diameter :math:`2 (abc)^{1/3}` stays in the size class's range.

The reference code (SyntheticTumors) draws integer semi-axes in voxels and deforms a voxel mask with
``elasticdeform``; this is the same law in physical units: semi-axes :math:`U(0.75 r, 1.25 r)` mm
with base radius :math:`r` = 4 / 8 / 16 / 32 mm, and an RMS surface displacement equal to the
reference's elastic deformation (see ``_default_classes``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from tumorsynth.errors import ConfigError

__all__ = [
    "MIN_RADIAL",
    "SIZE_CLASSES",
    "ShapeConfig",
    "ShapeGeometry",
    "ShapeParams",
    "SizeClass",
    "sample_shape",
    "sh_basis",
    "shape_geometry",
]

SIZE_CLASSES = ("tiny", "small", "medium", "large")
N_HARMONICS = 15
MIN_RADIAL = 0.2  # the deformed radius never drops below 20 % of the ellipsoid's


@dataclass(frozen=True)
class SizeClass:
    """One size class.

    Attributes
    ----------
    radius_mm : float
        Base radius :math:`r`; semi-axes are drawn from ``axis_scale`` times it.
    count : tuple of int
        Inclusive range of the number of tumours when this class is drawn alone.
    deform_mm : tuple of float
        Range of the RMS radial surface displacement, mm.
    """

    radius_mm: float
    count: tuple[int, int]
    deform_mm: tuple[float, float]


def _default_classes() -> dict[str, SizeClass]:
    # deform_mm: half the reference's elastic sigma (tiny U(0.5, 1), small 1-2, medium 3-6, large 5-10
    # voxels). The reference displaces a 3 x 3 control grid spanning four semi-axes; spline
    # interpolation leaves about 0.7 sigma at the surface, most of it shared with the centre (a shift,
    # not a deformation), so the surface moves relative to the centre by about half of sigma.
    return {
        "tiny": SizeClass(4.0, (3, 10), (0.25, 0.5)),
        "small": SizeClass(8.0, (3, 10), (0.5, 1.0)),
        "medium": SizeClass(16.0, (2, 5), (1.5, 3.0)),
        "large": SizeClass(32.0, (1, 3), (2.5, 5.0)),
    }


def _default_mix() -> dict[str, tuple[int, int]]:
    return {"tiny": (3, 10), "small": (5, 10), "medium": (2, 5), "large": (1, 3)}


@dataclass(frozen=True)
class ShapeConfig:
    """How tumour shapes are drawn.

    Attributes
    ----------
    classes : dict of str to SizeClass
        The size classes (reference values by default).
    mix_counts : dict of str to (int, int)
        Tumours per class when the ``mix`` class is drawn (reference: 3-10 / 5-10 / 2-5 / 1-3).
    axis_scale : tuple of float
        Each semi-axis is :math:`U(\text{lo}, \text{hi}) \\cdot r`.
    rotate : bool
        Random orientation (uniform on SO(3)); the reference keeps ellipsoids axis-aligned.
    """

    classes: dict[str, SizeClass] = field(default_factory=_default_classes)
    mix_counts: dict[str, tuple[int, int]] = field(default_factory=_default_mix)
    axis_scale: tuple[float, float] = (0.75, 1.25)
    rotate: bool = True

    def __post_init__(self) -> None:
        unknown = set(self.mix_counts) - set(self.classes)
        if unknown:
            raise ConfigError(f"shape.mix_counts names unknown size classes {sorted(unknown)}")
        lo, hi = self.axis_scale
        if not 0 < lo <= hi:
            raise ConfigError(f"shape.axis_scale must satisfy 0 < lo <= hi, got {self.axis_scale}")
        for name, c in self.classes.items():
            if c.radius_mm <= 0 or not 0 <= c.count[0] <= c.count[1]:
                raise ConfigError(f"shape.classes.{name}: bad radius_mm or count range")


@dataclass(frozen=True)
class ShapeParams:
    """The drawn shape of one tumour.

    Attributes
    ----------
    size_class : str
    semi_axes_mm : tuple of float
        Semi-axes :math:`(a, b, c)` in mm, before deformation.
    rotation : tuple of float
        Unit quaternion (w, x, y, z) taking the ellipsoid's axes to the array's (X, Y, Z).
    deform : tuple of float
        The 15 coefficients :math:`\beta_i` of the radial deformation (dimensionless).
    """

    size_class: str
    semi_axes_mm: tuple[float, float, float]
    rotation: tuple[float, float, float, float]
    deform: tuple[float, ...]


@dataclass(frozen=True)
class ShapeGeometry:
    """Quantities derived from :class:`ShapeParams` that the kernels need.

    Attributes
    ----------
    to_unit : numpy.ndarray
        (3, 3) matrix :math:`D^{-1} Q^\top` taking mm offsets from the centre to unit-ball coordinates.
    kappa : float
        Volume-preserving scale of the radial function.
    r_lo, r_hi : float
        Lower and upper bounds of :math:`R(u)` over the sphere (with a safety margin).
    a_min_mm, a_max_mm : float
        Smallest and largest semi-axis.
    unit_extent_mm : numpy.ndarray
        Half-extent along (X, Y, Z), mm, of the undeformed ellipsoid (the unit ball's image).
    """

    to_unit: np.ndarray
    kappa: float
    r_lo: float
    r_hi: float
    a_min_mm: float
    a_max_mm: float
    unit_extent_mm: np.ndarray

    def extent_mm(self, rho: float) -> np.ndarray:
        """Half-extent along (X, Y, Z), mm, of the region :math:`\\lVert q \\rVert \\le \\rho`."""
        return rho * self.unit_extent_mm


def sh_basis(u: np.ndarray) -> np.ndarray:
    """Real spherical harmonics of degrees 1-3 at unit vectors ``u`` (..., 3) -> (..., 15).

    Normalised to unit mean square over the sphere. The numba twin is
    ``tumorsynth.kernels.cpu.shape.radial_function``.
    """
    x, y, z = u[..., 0], u[..., 1], u[..., 2]
    s3, s15, s105 = np.sqrt(3.0), np.sqrt(15.0), np.sqrt(105.0)
    z2 = z * z
    return np.stack(
        [
            s3 * x,
            s3 * y,
            s3 * z,
            s15 * x * y,
            s15 * y * z,
            s15 * x * z,
            0.5 * np.sqrt(5.0) * (3.0 * z2 - 1.0),
            0.5 * s15 * (x * x - y * y),
            0.5 * np.sqrt(17.5) * y * (3.0 * x * x - y * y),
            s105 * x * y * z,
            0.5 * np.sqrt(10.5) * y * (5.0 * z2 - 1.0),
            0.5 * np.sqrt(7.0) * z * (5.0 * z2 - 3.0),
            0.5 * np.sqrt(10.5) * x * (5.0 * z2 - 1.0),
            0.5 * s105 * z * (x * x - y * y),
            0.5 * np.sqrt(17.5) * x * (x * x - 3.0 * y * y),
        ],
        axis=-1,
    )


@lru_cache(maxsize=1)
def _sphere_basis(n: int = 3000) -> np.ndarray:
    """:func:`sh_basis` at a Fibonacci lattice of ``n`` nearly uniform unit vectors, (n, 15): the
    quadrature used for the volume normalisation and the radial bounds."""
    i = np.arange(n) + 0.5
    z = 1.0 - 2.0 * i / n
    phi = np.pi * (1.0 + 5.0**0.5) * i
    r = np.sqrt(1.0 - z * z)
    basis = sh_basis(np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=-1))
    basis.setflags(write=False)
    return basis


def _quat_to_matrix(q: tuple[float, float, float, float]) -> np.ndarray:
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


@lru_cache(maxsize=1024)
def shape_geometry(p: ShapeParams) -> ShapeGeometry:
    """Derive the kernel-ready geometry of a shape (pure, deterministic; memoised, since sampling
    and packing both need it)."""
    axes = np.asarray(p.semi_axes_mm, dtype=np.float64)
    rotation = _quat_to_matrix(p.rotation)
    to_unit = np.diag(1.0 / axes) @ rotation.T
    to_unit.setflags(write=False)
    unit_extent = np.sqrt(((rotation * axes) ** 2).sum(axis=1))  # rows of Q D
    unit_extent.setflags(write=False)
    radial = np.maximum(1.0 + _sphere_basis() @ np.asarray(p.deform), MIN_RADIAL)
    kappa = float(np.mean(radial**3) ** (-1.0 / 3.0))
    spread = float(radial.max() - radial.min())
    r_lo = kappa * max(float(radial.min()) - 0.05 * spread - 0.01, MIN_RADIAL)
    r_hi = kappa * (float(radial.max()) + 0.05 * spread + 0.01)
    return ShapeGeometry(
        to_unit, kappa, r_lo, r_hi, float(axes.min()), float(axes.max()), unit_extent
    )


def _random_quaternion(rng: np.random.Generator) -> tuple[float, float, float, float]:
    """Uniform random rotation (Shoemake's method), as a (w, x, y, z) quaternion."""
    u1, u2, u3 = rng.random(3)
    a, b = np.sqrt(1.0 - u1), np.sqrt(u1)
    w, x = b * np.cos(2 * np.pi * u3), a * np.sin(2 * np.pi * u2)
    y, z = a * np.cos(2 * np.pi * u2), b * np.sin(2 * np.pi * u3)
    return (float(w), float(x), float(y), float(z))


def sample_shape(rng: np.random.Generator, cfg: ShapeConfig, size_class: str) -> ShapeParams:
    """Draw one tumour shape of the given size class."""
    cls = cfg.classes[size_class]
    lo, hi = cfg.axis_scale
    axes = rng.uniform(lo * cls.radius_mm, hi * cls.radius_mm, size=3)
    rotation = _random_quaternion(rng) if cfg.rotate else (1.0, 0.0, 0.0, 0.0)
    deform_mm = rng.uniform(*cls.deform_mm)
    direction = rng.standard_normal(N_HARMONICS)
    deform = direction / np.linalg.norm(direction) * deform_mm / float(np.mean(axes))
    return ShapeParams(
        size_class=size_class,
        semi_axes_mm=tuple(float(a) for a in axes),  # type: ignore[arg-type]
        rotation=rotation,
        deform=tuple(float(b) for b in deform),
    )


def plan_counts(
    rng: np.random.Generator, cfg: ShapeConfig, size_class: str
) -> list[tuple[str, int]]:
    """How many tumours of each class one call makes, largest class first."""
    if size_class == "mix":
        ranges: Mapping[str, tuple[int, int]] = cfg.mix_counts
    else:
        ranges = {size_class: cfg.classes[size_class].count}
    order = sorted(ranges, key=lambda name: -cfg.classes[name].radius_mm)
    return [(name, int(rng.integers(ranges[name][0], ranges[name][1] + 1))) for name in order]
