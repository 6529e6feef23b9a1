"""The domains of SAR's pre-training: sources of unlabelled CT read into memory, and the check that
every scale's crop fits every volume.

A domain is the user's CT files (no label needed), the built-in phantom, or hosts into which the
synthetic stream inserts tumours; its index is its class for the domain head. Everything is read
before the first step, so a missing or unreadable file, or a crop larger than a volume, stops the
run at start-up with one line that names the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from tumorsynth.dataset.sources import expand_paths, load_source, pair_sources
from tumorsynth.engine.case import Case, as_case
from tumorsynth.errors import ConfigError
from tumorsynth.io.volume import read_volume, resample_to_spacing
from tumorsynth.methods.sar.config import DomainConfig, PretrainConfig

__all__ = ["Domain", "Volume", "check_crops_fit", "crop_voxels", "load_domains"]


@dataclass(frozen=True, eq=False)
class Volume:
    """One CT of a domain.

    Attributes
    ----------
    name : str
        The file (or ``phantom(seed=k)``), as messages name it.
    image : numpy.ndarray
        (X, Y, Z) float32, HU.
    spacing_mm : tuple of 3 float
    organ : numpy.ndarray or None
        (X, Y, Z) uint8 organ mask, where the domain has one.
    """

    name: str
    image: np.ndarray
    spacing_mm: tuple[float, float, float]
    organ: np.ndarray | None = None

    def case(self) -> Case:
        """The volume as a host of the synthetic stream (it needs an organ)."""
        return as_case(self.image, self.organ, self.spacing_mm, source=self.name)


@dataclass(frozen=True, eq=False)
class Domain:
    """A domain: its class ``index``, ``name``, ``volumes`` and whether ``tumours`` are inserted."""

    index: int
    name: str
    volumes: list[Volume]
    tumours: bool


def crop_voxels(size_mm: Sequence[float], spacing_mm: Sequence[float]) -> tuple[int, int, int]:
    """The crop of ``size_mm`` (X, Y, Z) in voxels of ``spacing_mm`` (at least 1 per axis).

    >>> crop_voxels((64, 64, 32), (1.0, 1.0, 2.5))
    (64, 64, 13)
    """
    return tuple(max(1, round(s / p)) for s, p in zip(size_mm, spacing_mm, strict=True))


def _resampled(volume: Volume, spacing_mm: float | None) -> Volume:
    target = (float(spacing_mm or 0.0),) * 3
    if not spacing_mm or np.allclose(volume.spacing_mm, target, rtol=1e-6, atol=0):
        return volume
    image = resample_to_spacing(volume.image, volume.spacing_mm, target)
    organ = None
    if volume.organ is not None:
        organ = resample_to_spacing(volume.organ, volume.spacing_mm, target, shape=image.shape)
    return Volume(volume.name, image, target, organ)


def _read(domain: DomainConfig, where: str, config: PretrainConfig) -> list:
    """What to load for one domain: phantom seeds, then files (with their masks, if given)."""
    spacing = config.spacing_mm or config.phantom_spacing_mm
    todo: list = [("phantom", domain.phantom_seed + k, spacing) for k in range(domain.n_phantoms)]
    if domain.images:
        images = expand_paths(domain.images, f"{where}.images")
        if domain.masks:
            masks = expand_paths(domain.masks, f"{where}.masks")
            todo += [("source", s) for s in pair_sources(images, masks, domain.organ_label)[0]]
        else:
            todo += [("file", path) for path in images]
    return todo


def _load_one(item: tuple) -> Volume:
    kind = item[0]
    if kind == "phantom":
        from tumorsynth.phantom import make_phantom

        case = make_phantom(seed=item[1], spacing_mm=item[2])
        return Volume(case.source, np.asarray(case.image, np.float32), case.spacing_mm, case.organ)
    if kind == "source":
        case = load_source(item[1]).case
        image = np.asarray(case.image, np.float32)
        return Volume(case.source, image, case.spacing_mm, np.asarray(case.organ, np.uint8))
    volume = read_volume(item[1])
    return Volume(str(item[1]), volume.array.astype(np.float32, copy=False), volume.spacing_mm)


def load_domains(config: PretrainConfig, progress: bool = True) -> list[Domain]:
    """Read (or render) every volume of ``config.domains`` and check the crops fit them.

    Raises
    ------
    InputError
        A path that does not exist, a pattern that matches nothing, a file or folder that holds
        no readable CT, masks that do not pair with the images (the message names the file).
    ConfigError
        A crop larger than a volume (:func:`check_crops_fit`).
    """
    plans = [
        (i, d, _read(d, f"domains[{i}] ({d.name})", config)) for i, d in enumerate(config.domains)
    ]
    total = sum(len(todo) for _, _, todo in plans)
    bar = tqdm(total=total, desc="domains", unit="volume", disable=not progress, leave=False)
    domains = []
    with bar:
        for i, d, todo in plans:
            volumes = []
            for item in todo:
                volumes.append(_resampled(_load_one(item), config.spacing_mm))
                bar.update(1)
            domains.append(Domain(i, d.name, volumes, d.tumours))
    check_crops_fit(domains, config.crop_sizes_mm)
    return domains


def check_crops_fit(domains: Sequence[Domain], crop_sizes_mm: Sequence[Sequence[float]]) -> None:
    """Every scale's crop must fit inside every volume.

    Raises
    ------
    ConfigError
        Naming the first crop and volume that do not fit, with both sizes.
    """
    for domain in domains:
        for volume in domain.volumes:
            shape = volume.image.shape
            for s, size_mm in enumerate(crop_sizes_mm):
                vox = crop_voxels(size_mm, volume.spacing_mm)
                if any(c > n for c, n in zip(vox, shape, strict=True)):
                    extent = " x ".join(
                        f"{n * p:g}" for n, p in zip(shape, volume.spacing_mm, strict=True)
                    )
                    raise ConfigError(
                        f"crop_sizes_mm[{s}] {' x '.join(f'{v:g}' for v in size_mm)} mm is larger "
                        f"than {volume.name} ({extent} mm, {' x '.join(map(str, shape))} voxels; "
                        f"domain {domain.name!r}): choose smaller crops or larger volumes"
                    )
