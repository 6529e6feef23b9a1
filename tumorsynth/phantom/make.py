"""The entry point of the built-in phantom: :func:`make_phantom` renders one seed's patient as a Case."""

from __future__ import annotations

import numbers
import os

import numpy as np

from tumorsynth.engine.case import Case
from tumorsynth.errors import InputError
from tumorsynth.phantom.grid import Grid
from tumorsynth.phantom.noise import add_noise
from tumorsynth.phantom.pancreas import parts_map
from tumorsynth.phantom.patient import draw_patient
from tumorsynth.phantom.render import render
from tumorsynth.phantom.tissues import LABELS

__all__ = ["DEFAULT_FOV_MM", "HOST_ORGANS", "LIVER_MARGIN_MM", "make_phantom", "organ_case"]

#: The organs a phantom can be the host of, and the labels (:data:`LABELS`) that make its mask.
HOST_ORGANS: dict[str, tuple[str, ...]] = {
    "liver": ("liver", "liver_vessels"),
    "pancreas": ("pancreas", "pancreatic_duct"),
    "kidney": ("kidney_right", "kidney_left"),
    "kidney_right": ("kidney_right",),
    "kidney_left": ("kidney_left",),
}

#: Default field of view (x, y, z) in mm, centred on the phantom's origin.
DEFAULT_FOV_MM = (320.0, 320.0, 240.0)
#: Margin (mm) kept between the liver and the edge of the field of view.
LIVER_MARGIN_MM = 5.0

_RAS_LPS = (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)  # array axes R, A, S in LPS world space
#: Peak memory of :func:`make_phantom` per voxel, bytes (measured: 11.2 at 1 mm, 11.0 at 1.5 mm).
PEAK_BYTES_PER_VOXEL = 12


def _memory_bytes() -> int | None:
    """This machine's physical memory, bytes (None where the platform does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _check_memory(shape: tuple[int, int, int], spacing: tuple[float, float, float]) -> None:
    """Refuse, before allocating anything, a phantom larger than this machine's memory."""
    n_voxels = int(np.prod(shape, dtype=np.float64))
    need = n_voxels * PEAK_BYTES_PER_VOXEL
    have = _memory_bytes()
    if have is None or need <= have:
        return
    size = " x ".join(str(n) for n in shape)
    voxel = " x ".join(f"{s:g}" for s in spacing)
    raise InputError(
        f"phantom: {voxel} mm voxels make a {size} volume ({n_voxels / 1e9:.3g} G voxels), "
        f"which needs about {need / 2**30:,.0f} GiB of memory; this machine has "
        f"{have / 2**30:,.0f} GiB: use larger voxels (--spacing) or a smaller shape"
    )


def _check_args(seed, shape, spacing_mm):
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise InputError(f"phantom: seed must be a non-negative integer, got {seed!r}")
    try:
        spacing = np.broadcast_to(np.asarray(spacing_mm, dtype=float), (3,))
    except (TypeError, ValueError):
        msg = f"phantom: spacing_mm must be a number or 3 numbers (mm), got {spacing_mm!r}"
        raise InputError(msg) from None
    if not np.all(np.isfinite(spacing) & (spacing > 0)):
        raise InputError(f"phantom: spacing_mm must be positive and finite, got {spacing_mm!r}")
    spacing = tuple(float(s) for s in spacing)
    if shape is None:
        shape = tuple(max(1, round(f / s)) for f, s in zip(DEFAULT_FOV_MM, spacing, strict=True))
    if isinstance(shape, np.ndarray):
        shape = tuple(shape.tolist())
    ok = isinstance(shape, (tuple, list)) and len(shape) == 3
    if not ok or not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) and n > 0
                         for n in shape):  # fmt: skip
        raise InputError(f"phantom: shape must be 3 positive integers (X, Y, Z), got {shape!r}")
    shape = tuple(int(n) for n in shape)
    _check_memory(shape, spacing)
    return seed, shape, spacing


def _organ_mask(labels: np.ndarray, organ: str, seed: int) -> np.ndarray:
    """The host mask of ``organ`` from the label map; an organ the field of view cuts is refused
    (a tumour could be drawn for the part that is missing)."""
    mask = np.isin(labels, [LABELS[name] for name in HOST_ORGANS[organ]]).astype(np.uint8)
    border = [np.take(mask, [0, n - 1], axis=a).any() for a, n in enumerate(mask.shape)]
    if not mask.any() or any(border):
        raise InputError(
            f"phantom(seed={seed}): the field of view {'misses' if not mask.any() else 'cuts'} "
            f"the {organ}; use the default field of view (shape None) or a larger one"
        )
    return mask


def make_phantom(
    seed: int = 0,
    shape: tuple[int, int, int] | None = None,
    spacing_mm: float | tuple[float, float, float] = (1.0, 1.0, 1.0),
    organ: str = "liver",
) -> Case:
    """Render the built-in abdominal CT phantom (portal venous phase) as a :class:`Case`.

    Parameters
    ----------
    seed : int, optional
        Patient seed: the same seed gives bit-identical arrays, another seed other anatomy and noise.
    shape : tuple of 3 int, optional
        Volume size (X, Y, Z) in voxels. The field of view ``shape * spacing_mm`` is centred on the
        phantom's origin; by default it is ``DEFAULT_FOV_MM`` (320 x 320 x 240 mm).
    spacing_mm : float or tuple of 3 float, optional
        Voxel size along (X, Y, Z) in mm. The anatomy is the same at any spacing (no resampling).
    organ : str, optional
        The host organ, whose mask is ``Case.organ`` (:data:`HOST_ORGANS`): ``liver`` (default),
        ``pancreas`` (head, body, tail and main duct), ``kidney`` (both), ``kidney_right`` or
        ``kidney_left``. The image is the same whichever organ hosts.

    Returns
    -------
    Case
        ``image``: float32 (X, Y, Z) HU, integral values in [-1024, 3071], RAS (x toward the
        patient's right, y anterior, z superior). ``organ``: uint8 liver mask including its
        intrahepatic vessels. ``extras["vessels"]``: uint8 mask of the intrahepatic vessel tree;
        ``extras["labels"]``: uint8 label map with the values of
        :data:`~tumorsynth.phantom.LABELS`; ``extras["pancreas_parts"]``: uint8 map of the
        pancreas's head, body, tail and duct (:data:`~tumorsynth.phantom.pancreas.PARTS`).
        ``origin_mm`` and ``direction`` place it in LPS world
        space with the field of view centred on (0, 0, 0).

    Raises
    ------
    InputError
        If the seed is not a whole number from 0 to 2**63 - 1, the spacing is not positive, the
        shape is not 3 positive integers, the volume would need more memory than this machine
        has (checked before anything is allocated), the field of view does not contain the
        whole liver with a margin (or cuts the host organ), or the organ is not one of
        :data:`HOST_ORGANS`.
    """
    if organ not in HOST_ORGANS:
        raise InputError(
            f"phantom: unknown host organ {organ!r}; choose from {', '.join(HOST_ORGANS)}"
        )
    seed, shape, spacing = _check_args(seed, shape, spacing_mm)
    patient = draw_patient(seed)
    fov = np.array(shape) * np.array(spacing)
    need = 2 * (
        np.maximum(np.abs(patient.liver_lo_mm), np.abs(patient.liver_hi_mm)) + LIVER_MARGIN_MM
    )
    if np.any(fov < need):
        raise InputError(
            f"phantom(seed={seed}): the field of view {' x '.join(f'{f:.1f}' for f in fov)} mm "
            f"(shape {shape} at spacing {spacing} mm) does not contain the whole liver with a "
            f"{LIVER_MARGIN_MM:g} mm margin; the minimum field of view is "
            f"{' x '.join(f'{n:.0f}' for n in np.ceil(need))} mm"
        )
    axes = [(np.arange(n) + 0.5 - n / 2) * s for n, s in zip(shape, spacing, strict=True)]
    grid = Grid(*axes, spacing=spacing)
    image, labels, liver, vessels = render(patient, grid)
    host = liver if organ == "liver" else _organ_mask(labels, organ, seed)
    add_noise(image, spacing, seed)
    duct = (LABELS["pancreas"], LABELS["pancreatic_duct"])
    parts = parts_map(labels, grid.xs, duct, patient.extra["pancreas_parts"])
    extras = {"vessels": vessels, "labels": labels, "pancreas_parts": parts}
    # world geometry (LPS, as SimpleITK): RAS axes, the centre of the field of view at the origin
    origin = (-float(grid.xs[0]), -float(grid.ys[0]), float(grid.zs[0]))
    source = f"phantom(seed={seed})" if organ == "liver" else f"phantom(seed={seed}, {organ})"
    return Case(image, host, spacing, source, extras, origin_mm=origin, direction=_RAS_LPS)


def organ_case(case: Case, organ: str) -> Case:
    """The phantom ``case`` (of :func:`make_phantom`) with another host organ: the same image and
    extras, the mask of ``organ`` (:data:`HOST_ORGANS`) from its label map; no new rendering.

    Raises
    ------
    InputError
        An unknown organ, or one the case's field of view cuts.
    """
    if organ not in HOST_ORGANS:
        raise InputError(
            f"phantom: unknown host organ {organ!r}; choose from {', '.join(HOST_ORGANS)}"
        )
    seed = case.source.split("seed=")[-1].split(")")[0].split(",")[0]
    mask = _organ_mask(case.extras["labels"], organ, int(seed) if seed.isdigit() else -1)
    source = case.source.split(",")[0].rstrip(")") + ("" if organ == "liver" else f", {organ}")
    return Case(
        case.image, mask, case.spacing_mm, source + ")", dict(case.extras),
        origin_mm=case.origin_mm, direction=case.direction,
    )  # fmt: skip
