r"""The volumes the agents move over: a CT resampled to the working voxel size, windowed to [0, 1]
and cut to its liver's bounding box (:class:`WorkVolume`), and the way back to the CT's own grid.

Every volume SPARS reads, synthetic or real, goes through :func:`prepare_volume`: it checks the
liver is not empty and that the agents' window fits inside the liver's box, and says which volume
when either fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tumorsynth.dataset.sources import expand_paths, load_source, pair_sources, phantom_sources
from tumorsynth.engine.case import Case, as_case
from tumorsynth.engine.pipeline import synthesize
from tumorsynth.errors import ConfigError, InputError
from tumorsynth.io.volume import resample_to_spacing
from tumorsynth.methods.spars.config import SparsConfig

__all__ = [
    "VAL_PHANTOM_SEED",
    "WorkVolume",
    "held_out_hosts",
    "load_hosts",
    "prepare_volume",
    "synthetic_volumes",
    "to_input_grid",
    "window_hu",
]

VAL_PHANTOM_SEED = 1000
"""First phantom seed of held-out volumes (training hosts use 0, 1, ...)."""


@dataclass(frozen=True, eq=False)
class WorkVolume:
    """A volume as the environment sees it: the liver's box at the working voxel size.

    Attributes
    ----------
    name : str
    image : numpy.ndarray
        (X, Y, Z) float32 in [0, 1] (the HU window), the liver's box.
    liver : numpy.ndarray
        (X, Y, Z) uint8 0/1 on the box.
    tumour : numpy.ndarray or None
        (X, Y, Z) uint8 0/1 tumour on the box, when known (synthetic volumes; never used to learn).
    box_lo : tuple of 3 int
        The box's first voxel in the working grid.
    grid_shape : tuple of 3 int
        Shape of the whole working grid.
    spacing_mm : float
        Working voxel size, mm.
    """

    name: str
    image: np.ndarray
    liver: np.ndarray
    tumour: np.ndarray | None
    box_lo: tuple[int, int, int]
    grid_shape: tuple[int, int, int]
    spacing_mm: float

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.image.shape)  # type: ignore[return-value]


def window_hu(image_hu: np.ndarray, window: Sequence[float]) -> np.ndarray:
    """HU -> float32 [0, 1]: ``window`` mapped linearly, clipped outside."""
    lo, hi = float(window[0]), float(window[1])
    return np.clip((np.asarray(image_hu, np.float32) - lo) / (hi - lo), 0.0, 1.0)


def _resampled(array: np.ndarray, spacing_mm: Sequence[float], target_mm: float, shape=None):
    target = (float(target_mm),) * 3
    if np.allclose(spacing_mm, target, rtol=1e-3, atol=0) and shape is None:
        return array
    return resample_to_spacing(array, tuple(float(s) for s in spacing_mm), target, shape=shape)


def _box(liver: np.ndarray, margin: int) -> tuple[slice, ...]:
    where = np.nonzero(liver)
    lo = [max(int(w.min()) - margin, 0) for w in where]
    hi = [min(int(w.max()) + 1 + margin, n) for w, n in zip(where, liver.shape, strict=True)]
    return tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))


def prepare_volume(
    image_hu: np.ndarray,
    liver: np.ndarray,
    spacing_mm: Sequence[float],
    config: SparsConfig,
    name: str,
    tumour: np.ndarray | None = None,
) -> WorkVolume:
    """Resample a CT (linear) and its liver (nearest) to ``config.spacing_mm``, window it and cut it
    to the liver's box grown by ``config.box_margin_vox``.

    Parameters
    ----------
    image_hu : (X, Y, Z) array
        CT in HU.
    liver : (X, Y, Z) array
        0/1 liver mask on the CT's grid.
    spacing_mm : sequence of 3 float
        The CT's voxel size, mm.
    config : SparsConfig
    name : str
        The volume's name in messages (a file path, ``phantom1000``).
    tumour : (X, Y, Z) array, optional
        0/1 tumour on the CT's grid (kept for evaluation only).

    Raises
    ------
    InputError
        An empty liver (before or after resampling), or a window larger than the liver's box.
    """
    liver = np.asarray(liver) > 0
    if not liver.any():
        raise InputError(f"{name}: the liver mask is empty")
    image = _resampled(np.asarray(image_hu, np.float32), spacing_mm, config.spacing_mm)
    work_liver = _resampled(liver.astype(np.uint8), spacing_mm, config.spacing_mm, image.shape)
    if not work_liver.any():
        raise InputError(
            f"{name}: the liver mask is empty at {config.spacing_mm:g} mm voxels (too small)"
        )
    box = _box(work_liver, config.box_margin_vox)
    size = tuple(s.stop - s.start for s in box)
    if any(w > n for w, n in zip(config.window_vox, size, strict=True)):
        raise InputError(
            f"{name}: the window {list(config.window_vox)} voxels at {config.spacing_mm:g} mm is "
            f"larger than the liver's box {list(size)}: choose a smaller window_vox or spacing_mm"
        )
    cut = None
    if tumour is not None:
        work_tumour = _resampled(
            (np.asarray(tumour) > 0).astype(np.uint8), spacing_mm, config.spacing_mm, image.shape
        )
        cut = np.ascontiguousarray(work_tumour[box])
    return WorkVolume(
        name=name,
        image=np.ascontiguousarray(window_hu(image[box], config.window_hu)),
        liver=np.ascontiguousarray(work_liver[box].astype(np.uint8)),
        tumour=cut,
        box_lo=tuple(s.start for s in box),  # type: ignore[arg-type]
        grid_shape=tuple(int(n) for n in image.shape),  # type: ignore[arg-type]
        spacing_mm=float(config.spacing_mm),
    )


def to_input_grid(
    mask_box: np.ndarray,
    volume: WorkVolume,
    shape: Sequence[int],
    spacing_mm: Sequence[float],
) -> np.ndarray:
    """A 0/1 mask on ``volume``'s box back on the CT's grid (``shape`` voxels of ``spacing_mm``),
    nearest neighbour: (X, Y, Z) uint8."""
    grid = np.zeros(volume.grid_shape, np.uint8)
    box = tuple(slice(a, a + n) for a, n in zip(volume.box_lo, mask_box.shape, strict=True))
    grid[box] = mask_box.astype(np.uint8)
    target = (volume.spacing_mm,) * 3
    if np.allclose(spacing_mm, target, rtol=1e-3, atol=0) and tuple(shape) == grid.shape:
        return grid
    return resample_to_spacing(grid, target, tuple(float(s) for s in spacing_mm), shape=shape)


def load_hosts(config: SparsConfig, progress: bool = False) -> list[Case]:
    """The healthy synthesis hosts of ``config`` at its working voxel size: the user's CTs (resampled)
    or the built-in phantoms.

    Raises
    ------
    InputError
        A missing or unreadable file, or an organ mask that cannot be used (named).
    """
    from tqdm.auto import tqdm

    if config.images:
        images = expand_paths(config.images, "images")
        masks = expand_paths(config.masks, "masks")
        sources = pair_sources(images, masks, config.organ_label)[0]
    else:
        sources = phantom_sources(config.n_phantoms, config.spacing_mm)
    hosts = []
    for source in tqdm(sources, desc="hosts", unit="case", disable=not progress, leave=False):
        case = load_source(source).case
        image = _resampled(np.asarray(case.image, np.float32), case.spacing_mm, config.spacing_mm)
        if image is not case.image:
            organ = _resampled(np.asarray(case.organ), case.spacing_mm, config.spacing_mm,
                               image.shape)  # fmt: skip
            case = as_case(image, organ, (config.spacing_mm,) * 3, source=source.describe())
        if any(w > n for w, n in zip(config.window_vox, case.shape, strict=True)):
            raise ConfigError(
                f"window_vox {list(config.window_vox)} is larger than {source.describe()} "
                f"({' x '.join(map(str, case.shape))} voxels at {config.spacing_mm:g} mm)"
            )
        hosts.append(case)
    return hosts


def synthetic_volumes(
    config: SparsConfig,
    hosts: Sequence[Case],
    n: int,
    seed: int,
    progress: bool = False,
) -> list[WorkVolume]:
    """``n`` volumes with synthetic tumours: host ``k % len(hosts)`` with the tumours of a seed drawn
    from ``seed``; the tumour masks are kept for evaluation only.

    Raises
    ------
    InputError
        A host whose liver's box is smaller than the window.
    """
    from tqdm.auto import tqdm

    seeds = np.random.SeedSequence(seed).generate_state(n)
    out = []
    for k in tqdm(range(n), desc="volumes", unit="vol", disable=not progress, leave=False):
        host = hosts[k % len(hosts)]
        result = synthesize(host, config=config.synth_config, seed=int(seeds[k]))
        label = np.asarray(result.label)
        out.append(
            prepare_volume(
                np.asarray(result.image), label > 0, host.spacing_mm, config,
                f"{host.source}+tumours({int(seeds[k])})", tumour=label == 2,
            )
        )  # fmt: skip
    return out


def held_out_hosts(config: SparsConfig, n: int) -> list[Case]:
    """Phantoms with seeds :data:`VAL_PHANTOM_SEED`, ... at the working voxel size (never hosts)."""
    from tumorsynth.phantom import make_phantom

    return [make_phantom(seed=VAL_PHANTOM_SEED + k, spacing_mm=config.spacing_mm) for k in range(n)]
