"""A validated host case: a CT volume, its organ mask and its voxel spacing.

Validation and the per-case measurements that sampling needs (the organ's bounding box and its median
HU) happen here, once, at the boundary; everything below trusts a :class:`Case`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from tumorsynth.backend import get_backend
from tumorsynth.engine.organ import OrganStats, measure_noise, measure_organ
from tumorsynth.errors import InputError

__all__ = ["Case", "OrganStats", "as_case"]


@dataclass(frozen=True, eq=False)
class Case:
    """A CT volume with an organ mask, indexed (X, Y, Z) with the axial axis last.

    Build one with :func:`as_case` (or :func:`tumorsynth.phantom.make_phantom`), which checks the
    inputs; the constructor itself trusts its arguments.

    Attributes
    ----------
    image : numpy.ndarray or cupy.ndarray
        (X, Y, Z) CT in Hounsfield units; any real dtype, read only.
    organ : numpy.ndarray or cupy.ndarray
        (X, Y, Z) uint8 organ mask, 0 or 1, on the image's device.
    spacing_mm : tuple of float
        Voxel size along (X, Y, Z) in millimetres.
    source : str
        Where the case came from (a file path, ``"phantom(seed=0)"``, ``"array"``); used in messages.
    extras : dict
        Optional side information, e.g. the phantom's ground-truth vessel mask.
    origin_mm : tuple of float or None
        World (LPS, as in DICOM and SimpleITK) position of voxel (0, 0, 0), mm; None if unknown.
    direction : tuple of float or None
        Row-major 3 x 3 matrix whose columns are the array axes' directions in LPS world space.
    """

    image: Any
    organ: Any
    spacing_mm: tuple[float, float, float]
    source: str = "array"
    extras: dict[str, Any] = field(default_factory=dict, repr=False)
    origin_mm: tuple[float, float, float] | None = None
    direction: tuple[float, ...] | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.image.shape)  # type: ignore[return-value]

    @cached_property
    def organ_stats(self) -> OrganStats:
        """Bounding box, size and median HU of the organ (computed on first use, then cached), on
        the device where the arrays are."""
        be = get_backend(like=self.image)
        return measure_organ(self.image, self.organ, self.source, be.kernels.measure_organ_arrays)

    @cached_property
    def noise(self) -> tuple[float, float]:
        """The scan's noise in the organ: standard deviation (HU) and neighbour correlation
        (:func:`~tumorsynth.engine.organ.measure_noise`; computed on first use, then cached)."""
        stats, be = self.organ_stats, get_backend(like=self.image)
        return measure_noise(self.image, self.organ, stats.bbox_lo, stats.bbox_hi, be.to_host)


def _spacing(spacing_mm: Any, source: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(s) for s in np.asarray(spacing_mm, dtype=float).reshape(-1))
    except (TypeError, ValueError):
        raise InputError(
            f"{source}: spacing_mm must be three numbers in mm, got {spacing_mm!r}"
        ) from None
    if len(values) == 1:
        values = values * 3
    if len(values) != 3:
        raise InputError(
            f"{source}: spacing_mm must be three numbers (X, Y, Z) in mm, got {values}"
        )
    if not all(np.isfinite(s) and s > 0 for s in values):
        raise InputError(f"{source}: spacing_mm must be positive and finite, got {values}")
    return values  # type: ignore[return-value]


def _native(a: Any) -> Any:
    """``a`` in a dtype the kernels take: native byte order (nibabel returns big-endian arrays of
    big-endian files), and float16 widened to float32 (both exactly)."""
    if a.dtype.kind == "f" and a.dtype.itemsize < 4:
        return a.astype(np.float32)
    if not a.dtype.isnative:
        return a.astype(a.dtype.newbyteorder("="))
    return a


def as_case(
    image: Any,
    organ: Any = None,
    spacing_mm: Any = None,
    *,
    source: str = "array",
    direction: tuple[float, ...] | None = None,
) -> Case:
    """Check a CT volume, organ mask and spacing, and wrap them in a :class:`Case`.

    Parameters
    ----------
    image : array_like or Case
        (X, Y, Z) CT in HU: a NumPy or CuPy array, or a torch tensor (a CUDA one is viewed as a CuPy
        array, without a copy), of any real dtype (float16 and big-endian arrays are converted).
        A :class:`Case` is returned unchanged.
    organ : array_like
        (X, Y, Z) organ mask with values 0 and 1 (bool or any integer dtype).
    spacing_mm : float or sequence of 3 floats
        Voxel size along (X, Y, Z) in mm.
    source : str, optional
        Name used in error messages (a file path, for instance).
    direction : tuple of 9 float, optional
        The array axes' directions in LPS world space (row-major 3 x 3, columns the axes); None:
        unknown, taken as RAS where it matters (the ``lateral_band`` of a config).

    Returns
    -------
    Case

    Raises
    ------
    InputError
        If the image is not 3-D, the shapes differ, the mask is not binary or empty, the spacing is not
        positive, or the image holds NaN or infinity inside the organ.
    """
    if isinstance(image, Case):
        return image
    if organ is None or spacing_mm is None:
        raise InputError(f"{source}: need an image, an organ mask and spacing_mm")
    be = get_backend(like=image)  # the case stays on the device its image is on
    xp = be.xp
    image = be.asarray(image)
    organ = be.asarray(organ)
    if image.ndim != 3:
        raise InputError(
            f"{source}: the image must be a 3-D (X, Y, Z) volume, got {image.ndim}-D shape {image.shape}"
        )
    if not np.issubdtype(image.dtype, np.number) or np.iscomplexobj(image):
        raise InputError(
            f"{source}: the image must hold real numbers (HU), got dtype {image.dtype}"
        )
    image, organ = _native(image), _native(organ)
    if organ.shape != image.shape:
        raise InputError(
            f"{source}: image shape {image.shape} and organ mask shape {organ.shape} differ"
        )
    if organ.dtype == np.bool_:
        organ = organ.view(np.uint8)
    elif organ.dtype != np.uint8:
        if not np.issubdtype(organ.dtype, np.number):
            raise InputError(f"{source}: the organ mask must be numeric, got dtype {organ.dtype}")
        values = xp.unique(organ)
        if not bool(xp.isin(values, xp.asarray([0, 1], dtype=values.dtype)).all()):
            raise InputError(
                f"{source}: the organ mask is not binary (values {values[:8].tolist()}...); "
                "pass a 0/1 mask, or select the organ's label first"
            )
        organ = organ.astype(np.uint8)
    spacing = _spacing(spacing_mm, source)
    case = Case(
        xp.ascontiguousarray(image), xp.ascontiguousarray(organ), spacing, source,
        direction=None if direction is None else tuple(float(d) for d in direction),
    )  # fmt: skip
    _ = case.organ_stats  # validates the mask (binary, non-empty) and the HU inside the organ
    return case
