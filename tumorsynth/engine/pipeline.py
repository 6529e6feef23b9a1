"""The public entry points: ``sample_params`` (host, cheap, random) then ``render`` (deterministic
kernels); ``synthesize`` is the two."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tumorsynth.backend import Backend, get_backend
from tumorsynth.engine.case import Case, as_case
from tumorsynth.engine.config import SynthConfig, load_config
from tumorsynth.engine.gpu_pack import pack_on_device
from tumorsynth.engine.packing import Packed, pack
from tumorsynth.engine.params import LesionParams, TumorParams
from tumorsynth.engine.rng import as_generator, fresh_seed
from tumorsynth.engine.stages.capsule import sample_capsule
from tumorsynth.engine.stages.intensity import sample_intensity
from tumorsynth.engine.stages.location import check_organ_size, no_room_error, place_site
from tumorsynth.engine.stages.mass_effect import sample_mass_effect
from tumorsynth.engine.stages.shape import ShapeParams, plan_counts, sample_shape
from tumorsynth.engine.stages.sites import halo_mm
from tumorsynth.engine.stages.texture import sample_texture
from tumorsynth.errors import InputError

__all__ = ["MAX_DRAWS", "Synthesis", "pack_for", "render", "sample_params", "synthesize"]

MAX_DRAWS = 8
"""Draws :func:`sample_params` makes before it calls a host too small for any tumour."""

ConfigLike = str | Path | Mapping[str, Any] | SynthConfig


@dataclass(frozen=True, eq=False)
class Synthesis:
    """The result of a synthesis.

    Attributes
    ----------
    image : numpy.ndarray
        (X, Y, Z) float32 CT in HU with the tumours.
    label : numpy.ndarray
        (X, Y, Z) uint8: 0 background, 1 organ, 2 tumour.
    params : TumorParams
        Everything needed to render this result again.
    """

    image: Any
    label: Any
    params: TumorParams


def sample_params(
    image: Any,
    organ: Any = None,
    spacing_mm: Any = None,
    config: ConfigLike = "liver",
    rng: np.random.Generator | int | None = None,
) -> TumorParams:
    """Draw the tumours for one host volume (host side; reads only the organ's neighbourhoods).

    Parameters
    ----------
    image : (X, Y, Z) array or Case
        CT in HU (or a prepared :class:`~tumorsynth.engine.case.Case`, then ``organ`` and ``spacing_mm`` are
        not needed).
    organ : (X, Y, Z) array
        0/1 organ mask.
    spacing_mm : float or sequence of 3 floats
        Voxel size along (X, Y, Z), mm.
    config : str, path, dict or SynthConfig
        See :func:`tumorsynth.load_config`.
    rng : numpy.random.Generator, int or None
        Source of randomness; an int is a seed (and is recorded in the params).

    Returns
    -------
    TumorParams

    Raises
    ------
    InputError
        Bad image, mask or spacing.
    PlacementError
        No tumour fits in :data:`MAX_DRAWS` draws (or, with ``location.if_no_room: raise``, one
        tumour does not), or the organ is smaller than the config's ``location.min_organ_ml``.

    Notes
    -----
    A draw none of whose tumours finds room (a large tumour drawn for a small or vascular organ, say)
    is drawn again from where the random stream stands, so the same seed always gives the same
    params; ``TumorParams.draw`` records which draw they are (0 for the first).
    """
    case = as_case(image, organ, spacing_mm)
    be = get_backend(like=case.image)  # placement queries run where the arrays are
    cfg = load_config(config)
    check_organ_size(case, cfg.location, cfg.name)
    seed = int(rng) if isinstance(rng, (int, np.integer)) else None
    gen = as_generator(rng)
    tried = []
    for draw in range(MAX_DRAWS):
        lesions, dropped = _draw_lesions(gen, case, cfg, be)
        if lesions or dropped is None:
            noise_hu, noise_corr = case.noise if cfg.intensity.replace else (0.0, 0.0)
            return TumorParams(
                volume_shape=case.shape,
                spacing_mm=case.spacing_mm,
                organ_hu=case.organ_stats.level_hu(cfg.intensity.organ_quantile),
                lesions=tuple(lesions),
                noise_hu=noise_hu,
                noise_corr=noise_corr,
                seed=seed,
                config=cfg.name,
                draw=draw,
            )
        tried.append(dropped)
    smallest = min(tried, key=lambda s: np.mean(s.semi_axes_mm))
    raise no_room_error(case, smallest, cfg.location, draws=MAX_DRAWS, config_name=cfg.name)


def _draw_lesions(
    gen: np.random.Generator, case: Case, cfg: SynthConfig, be: Backend
) -> tuple[list[LesionParams], ShapeParams | None]:
    """One draw: a size class, its tumours' shapes, and each placed (or dropped where it finds no
    room); returns the tumours placed and the shape of the first dropped one (None if none was)."""
    median_hu = case.organ_stats.median_hu  # the vessel map's reference
    organ_hu = case.organ_stats.level_hu(cfg.intensity.organ_quantile)  # the tumours' reference
    classes = list(cfg.size_class)
    prob = np.array([cfg.size_class[c] for c in classes], dtype=float)
    size_class = classes[int(gen.choice(len(classes), p=prob / prob.sum()))]
    placed: list[tuple[np.ndarray, float]] = []
    lesions = []
    first_dropped = None
    halo = halo_mm(cfg.intensity, cfg.capsule)
    for name, count in plan_counts(gen, cfg.shape, size_class):
        for _ in range(count):
            shape = sample_shape(gen, cfg.shape, name)
            site = place_site(gen, case, cfg.location, shape, placed, median_hu, be, halo)
            if site is None:
                first_dropped = first_dropped or shape
                continue
            radius_mm = float(np.mean(shape.semi_axes_mm))
            lesions.append(
                LesionParams(
                    center_mm=site.center_mm,
                    shape=shape,
                    texture=sample_texture(gen, cfg.texture),
                    intensity=sample_intensity(gen, cfg.intensity, organ_hu, radius_mm),
                    mass_effect=sample_mass_effect(gen, cfg.mass_effect, radius_mm),
                    capsule=sample_capsule(gen, cfg.capsule, radius_mm),
                    exophytic=site.exophytic,
                )
            )
    return lesions, first_dropped


def render(
    image: Any,
    organ: Any = None,
    spacing_mm: Any = None,
    params: TumorParams | None = None,
    device: str | None = None,
) -> Synthesis:
    """Render tumours described by ``params`` into a copy of the image (deterministic, pure).

    Parameters
    ----------
    image, organ, spacing_mm
        As in :func:`sample_params`; NumPy or CuPy arrays, or torch tensors (CPU or CUDA).
    params : TumorParams
        What to render, e.g. from :func:`sample_params` or ``TumorParams.from_dict``.
    device : str, optional
        ``"cpu"`` (numba) or ``"cuda"`` (CuPy); by default, where the image lives.

    Returns
    -------
    Synthesis
        The new image and label, of the input's type and device (a CUDA tensor in, CUDA tensors
        out, with no copy through the host); voxels outside the organ are never changed but by an
        exophytic tumour (``LesionParams.exophytic``), within its own reach.
    """
    return _render(image, organ, spacing_mm, params, device, like=image)


def _render(image, organ, spacing_mm, params, device, like, started=None) -> Synthesis:
    """:func:`render`, returning arrays of the type of ``like`` (the caller's original input);
    ``started`` is :func:`_start_outputs`'s result when the copy was begun earlier."""
    if isinstance(like, Case):
        like = like.image
    be = get_backend(device, like=image.image if isinstance(image, Case) else image)
    with be.stream_of(like):
        ct, mask, finish = started or (None, None, None)
        try:
            case = as_case(image, organ, spacing_mm)
            if not isinstance(params, TumorParams):
                raise InputError(f"render needs TumorParams, got {type(params).__name__}")
            if tuple(params.volume_shape) != case.shape or not np.allclose(
                params.spacing_mm, case.spacing_mm, rtol=1e-6, atol=0
            ):
                raise InputError(
                    f"{case.source}: params were drawn for shape {tuple(params.volume_shape)} at "
                    f"{params.spacing_mm} mm, not for this volume ({case.shape} at "
                    f"{case.spacing_mm} mm)"
                )
            # the backend is chosen: from here on only be.kernels, be.pack and be.asarray
            if finish is None:
                ct, mask, finish = _start_outputs(be, case)
            packed = pack_for(be, params) if params.lesions else None  # while the volume is copied
        finally:
            if finish is not None:  # never leave a copy running, also on an error
                out, label = finish()
        if packed is not None:
            be.kernels.render_lesions(
                ct,
                mask,
                out,
                label,
                np.asarray(case.spacing_mm, dtype=np.float64),
                packed.rows,
                packed.tiles,
                packed.tile_ptr,
                packed.tile_lesions,
                packed.tex,
            )
        return Synthesis(be.restore(out, like), be.restore(label, like), params)


def pack_for(be: Backend, params: TumorParams) -> Packed:
    """The kernel inputs of ``params`` on ``be``'s device: packed on the host for the CPU; for the
    GPU, packed on the host and uploaded, with the texture lattices built on the device."""
    if be.name == "cuda":
        return pack_on_device(params)
    return pack(params, be.kernels.texture_grids)


def _start_outputs(be, case: Case):
    """The case's arrays on ``be``'s device, and the copy into the outputs begun (``finish()``
    returns them)."""
    ct, mask = be.asarray(case.image), be.asarray(case.organ)
    return ct, mask, be.start_copy(ct, mask)


def synthesize(
    image: Any,
    organ: Any = None,
    spacing_mm: Any = None,
    *,
    config: ConfigLike = "liver",
    seed: int | None = None,
    params: TumorParams | None = None,
    device: str | None = None,
) -> Synthesis:
    """Put tumours into a healthy CT: :func:`sample_params` then :func:`render`.

    Parameters
    ----------
    image : (X, Y, Z) array or Case
        Healthy CT in HU, axial axis last.
    organ : (X, Y, Z) array
        0/1 organ (liver) mask.
    spacing_mm : float or sequence of 3 floats
        Voxel size along (X, Y, Z), mm; anisotropic spacing needs no resampling.
    config : str, path, dict or SynthConfig
        ``"liver"`` (default) or ``"syntumor"``, a file, or a dict; see :func:`load_config`.
    seed : int, optional
        Seed of the draw; a fresh one is drawn (and recorded in ``params.seed``) when omitted.
    params : TumorParams, optional
        Render these instead of drawing new ones (replay).
    device : str, optional
        ``"cpu"`` (numba) or ``"cuda"`` (CuPy) for the render; by default, where the image lives.
        Params are drawn on the host either way, with placement queries run where the arrays are.

    Returns
    -------
    Synthesis
        ``.image`` (float32 HU), ``.label`` (uint8: 0 background, 1 organ, 2 tumour), ``.params``;
        arrays of the input's type (NumPy, CuPy or torch).

    Examples
    --------
    >>> from tumorsynth import synthesize
    >>> from tumorsynth.phantom import make_phantom
    >>> case = make_phantom(seed=0, spacing_mm=2.0)
    >>> result = synthesize(case, seed=1)
    >>> replay = synthesize(case, params=result.params)
    >>> bool((replay.image == result.image).all())
    True
    """
    data = image.image if isinstance(image, Case) else image
    be = get_backend(device, like=data)  # fail early
    case: Case = as_case(image, organ, spacing_mm)
    if params is not None:
        return _render(case, None, None, params, device, like=image)
    with be.stream_of(data):
        started = _start_outputs(be, case)  # the copy runs while the params are drawn
        try:
            params = sample_params(case, config=config, rng=fresh_seed() if seed is None else seed)
        except BaseException:
            started[2]()
            raise
    return _render(case, None, None, params, device, like=image, started=started)
