r"""The five attributes of the robustness benchmark: one scalar per tumour, in physical units, that
the engine renders exactly and that :mod:`~tumorsynth.bench.fit` measures on labelled CT.

============  ==========================================================================  ======
attribute     scalar (how the engine is told)                                              floor
============  ==========================================================================  ======
shape         elongation :math:`\sqrt{\lambda_\max / \lambda_\min}` of the covariance of    1
              the tumour's solid, deformation included (1: a ball; :math:`a_\max / a_\min`
              for an undeformed ellipsoid), from the params by quadrature; the semi-axes
              are spread in log space with their product kept (the size does not change),
              the deformation stays as drawn; a deformed tumour is elongated even on a
              ball, and a shell value below that least elongation gives the least one
size          equivalent radius :math:`(abc)^{1/3}` in mm: the radius of the ball of the   2 mm
              tumour's volume (the deformation keeps the volume :math:`\tfrac43\pi abc`);
              the semi-axes are scaled, keeping their ratios and the relative deformation
texture       grain :math:`\sigma_b` in mm (``TextureParams.grain_sigma_mm``), the         0.5 mm
              smoothing scale of the salt noise: larger is coarser and blotchier
intensity     core contrast in HU, :math:`\delta \cdot u_0`: the change of the organ's HU   none
              in the tumour's core, away from its blurred edge (texture mean :math:`u_0`
              times the amplitude :math:`\delta`); negative is hypodense, and a shell
              that crosses 0 gives hyperdense tumours
location      depth in mm of the tumour's centre below the organ's surface: the           1 voxel
              Euclidean distance transform of the organ mask (``scipy.ndimage``, in mm)
              at the centre's voxel; the centre is placed on a voxel at that depth
============  ==========================================================================  ======

A value below its floor is clipped to it (a negative radius is not a tumour); a depth beyond the
deepest point of a host's organ is clipped to that point. The case records say when a value was
clipped.
"""

from __future__ import annotations

import dataclasses
import math
from functools import lru_cache

import numpy as np
from scipy import ndimage

from tumorsynth.engine.params import LesionParams
from tumorsynth.engine.stages.shape import MIN_RADIAL, ShapeParams, sh_basis

__all__ = [
    "ATTRIBUTES",
    "FLOORS",
    "UNITS",
    "core_contrast_hu",
    "depth_at",
    "elongation",
    "lesion_value",
    "organ_depth_mm",
    "shape_radius_mm",
    "unit_covariances",
    "with_contrast",
    "with_elongation",
    "with_grain",
    "with_radius",
]

#: The attributes, in the column order of the reference's Fig. 6.
ATTRIBUTES = ("shape", "size", "texture", "intensity", "location")
#: Unit of each attribute's scalar.
UNITS = {"shape": "ratio", "size": "mm", "texture": "mm", "intensity": "HU", "location": "mm"}
#: Smallest value of each attribute; shell values below it are clipped to it (location: one voxel,
#: the shallowest depth an organ voxel has, is applied per host).
FLOORS: dict[str, float | None] = {
    "shape": 1.0,
    "size": 2.0,
    "texture": 0.5,
    "intensity": None,
    "location": 0.0,
}


def shape_radius_mm(shape: ShapeParams) -> float:
    r"""Equivalent radius :math:`(abc)^{1/3}` of a tumour shape, mm (from its params; for a voxel
    mask's volume see :func:`tumorsynth.evaluate.metrics.equivalent_radius_mm`).

    >>> from tumorsynth.engine.stages.shape import ShapeParams
    >>> s = ShapeParams("medium", (8.0, 16.0, 32.0), (1.0, 0.0, 0.0, 0.0), (0.0,) * 15)
    >>> round(shape_radius_mm(s), 9), round(elongation(s), 3)
    (16.0, 4.0)
    """
    return float(np.prod(shape.semi_axes_mm)) ** (1.0 / 3.0)


def with_radius(shape: ShapeParams, radius_mm: float) -> ShapeParams:
    """The shape scaled to an equivalent radius of ``radius_mm`` (axis ratios, orientation and the
    relative deformation kept, hence its elongation)."""
    if not radius_mm > 0:
        raise ValueError(f"a radius must be positive, got {radius_mm!r} mm")
    scale = float(radius_mm) / shape_radius_mm(shape)
    axes = tuple(float(a * scale) for a in shape.semi_axes_mm)
    return dataclasses.replace(shape, semi_axes_mm=axes)


@lru_cache(maxsize=1)
def _sphere(n: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """A Fibonacci lattice of ``n`` nearly uniform unit vectors (n, 3) and the spherical harmonics
    of the shape's deformation there (n, 15): the quadrature of the shape's moments."""
    i = np.arange(n) + 0.5
    z = 1.0 - 2.0 * i / n
    phi = np.pi * (1.0 + 5.0**0.5) * i
    r = np.sqrt(1.0 - z * z)
    u = np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=-1)
    return u, sh_basis(u)


def unit_covariances(deform: np.ndarray) -> np.ndarray:
    r"""Covariance of the solid :math:`\lVert q \rVert \le R(q / \lVert q \rVert)` in the unit-ball
    coordinates :math:`q` of :mod:`tumorsynth.engine.stages.shape`, for deformations ``deform`` (..., 15);
    returns (..., 3, 3). The tumour's covariance in mm is :math:`Q D C D Q^\top`."""
    u, basis = _sphere()
    beta = np.asarray(deform, dtype=np.float64)
    radial = np.maximum(1.0 + beta @ basis.T, MIN_RADIAL)  # (..., n)
    volume = (radial**3 / 3.0).mean(axis=-1)
    first = (radial**4 / 4.0) @ u / u.shape[0] / volume[..., None]
    outer = (u[:, :, None] * u[:, None, :]).reshape(-1, 9)
    second = ((radial**5 / 5.0) @ outer / u.shape[0]).reshape(*radial.shape[:-1], 3, 3)
    return second / volume[..., None, None] - first[..., :, None] * first[..., None, :]


def _elongation(axes: np.ndarray, cov: np.ndarray) -> np.ndarray:
    scaled = axes[..., :, None] * cov * axes[..., None, :]
    eig = np.clip(np.linalg.eigvalsh(scaled), 1e-300, None)
    return np.sqrt(eig[..., -1] / eig[..., 0])


def elongation(shape: ShapeParams) -> float:
    r"""Elongation of a tumour: :math:`\sqrt{\lambda_\max / \lambda_\min}` of the covariance of
    the deformed solid (1 for a ball; :math:`a_\max / a_\min` for an undeformed ellipsoid), by
    quadrature over the sphere. This is what :mod:`~tumorsynth.bench.fit` measures on a voxel
    mask."""
    cov = unit_covariances(np.asarray(shape.deform))
    return float(_elongation(np.asarray(shape.semi_axes_mm), cov))


def _spread(shape: ShapeParams, span: float | np.ndarray) -> np.ndarray:
    """Semi-axes with log-span ``span`` (the shortest and longest ``span`` apart in log space, the
    middle one at its relative position), at the same product; (..., 3)."""
    logs = np.log(np.asarray(shape.semi_axes_mm, dtype=np.float64))
    order = np.argsort(logs, kind="stable")
    lo, mid, hi = logs[order]
    t = 0.5 if hi - lo < 1e-12 else (mid - lo) / (hi - lo)
    span = np.asarray(span, dtype=np.float64)[..., None]
    sorted_logs = logs.mean() - span * (1.0 + t) / 3.0 + span * np.array([0.0, t, 1.0])
    out = np.empty(sorted_logs.shape)
    out[..., order] = sorted_logs
    return np.exp(out)


def with_elongation(shape: ShapeParams, ratio: float) -> ShapeParams:
    r"""The shape with elongation (see :func:`elongation`) ``ratio``, at the same volume.

    The semi-axes are spread in log space (shortest and longest moved apart, the middle one keeping
    its relative position, their product kept); the deformation stays as drawn. A deformed tumour
    is elongated even on a ball, so a ratio below its least elongation gives that least one (the
    caller sees the value it got from :func:`elongation`).
    """
    if not ratio >= 1.0:
        raise ValueError(f"an elongation is at least 1, got {ratio!r}")
    cov = unit_covariances(np.asarray(shape.deform))
    spans = np.linspace(0.0, 2.0 * math.log(max(ratio, 1.01)) + 0.5, 65)
    values = _elongation(_spread(shape, spans), cov)
    k = int(np.argmin(values))
    lo, hi = spans[k], spans[-1]
    if values[k] >= ratio:
        hi = lo
    else:
        while _elongation(_spread(shape, hi), cov) < ratio:
            lo, hi = hi, 2.0 * hi
        for _ in range(60):  # bisection on the increasing branch beyond the least elongation
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if _elongation(_spread(shape, mid), cov) < ratio else (lo, mid)
    axes = _spread(shape, hi)
    return dataclasses.replace(shape, semi_axes_mm=tuple(float(a) for a in axes))


def core_contrast_hu(lesion: LesionParams) -> float:
    r"""Core contrast :math:`\delta \cdot u_0` of a tumour, HU (negative: darker than the organ)."""
    return float(lesion.intensity.delta_hu * lesion.texture.mean)


def with_contrast(lesion: LesionParams, contrast_hu: float) -> LesionParams:
    r"""The tumour with core contrast ``contrast_hu``: :math:`\delta = c / u_0`; the kind follows
    the sign (``hypo`` below 0, ``hyper`` above)."""
    delta = float(contrast_hu) / lesion.texture.mean
    kind = "hypo" if delta < 0 else "hyper"
    intensity = dataclasses.replace(lesion.intensity, delta_hu=delta, kind=kind)
    return dataclasses.replace(lesion, intensity=intensity)


def with_grain(lesion: LesionParams, grain_mm: float) -> LesionParams:
    """The tumour with texture grain ``grain_mm`` (the salt's smoothing scale)."""
    if not grain_mm > 0:
        raise ValueError(f"a texture grain must be positive, got {grain_mm!r} mm")
    texture = dataclasses.replace(lesion.texture, grain_sigma_mm=float(grain_mm))
    return dataclasses.replace(lesion, texture=texture)


def organ_depth_mm(organ: np.ndarray, spacing_mm: tuple[float, float, float]) -> np.ndarray:
    """Depth of every voxel below the organ's surface: distance from its centre to the nearest
    voxel centre outside the organ, mm (0 outside); (X, Y, Z) float32."""
    depth = ndimage.distance_transform_edt(np.asarray(organ) > 0, sampling=spacing_mm)
    return depth.astype(np.float32)


def depth_at(
    depth_map: np.ndarray, center_mm: tuple[float, ...], spacing_mm: tuple[float, ...]
) -> float:
    """The depth (see :func:`organ_depth_mm`) at the voxel nearest to ``center_mm``, mm."""
    voxel = np.rint(np.asarray(center_mm) / np.asarray(spacing_mm)).astype(int)
    voxel = np.clip(voxel, 0, np.asarray(depth_map.shape) - 1)
    return float(depth_map[tuple(voxel)])


def lesion_value(
    attribute: str,
    lesion: LesionParams,
    depth_map: np.ndarray | None = None,
    spacing_mm: tuple[float, ...] | None = None,
) -> float:
    """The value of one attribute of a drawn tumour (``location`` needs the host's depth map)."""
    if attribute == "shape":
        return elongation(lesion.shape)
    if attribute == "size":
        return shape_radius_mm(lesion.shape)
    if attribute == "texture":
        return float(lesion.texture.grain_sigma_mm)
    if attribute == "intensity":
        return core_contrast_hu(lesion)
    if attribute == "location":
        if depth_map is None or spacing_mm is None:
            raise ValueError("the location of a tumour needs the host's depth map and spacing")
        return depth_at(depth_map, lesion.center_mm, spacing_mm)
    raise ValueError(f"unknown attribute {attribute!r}; the attributes are {ATTRIBUTES}")
