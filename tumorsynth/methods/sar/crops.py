r"""SAR's training items: multi-scale crops of unlabelled CT, resized to one input size and
corrupted, with their clean target, scale class and domain class: :class:`SarCrops`.

Each item draws a domain (uniformly, so the domain classes are balanced), a scale class :math:`s`
(uniformly), and a crop of ``crop_sizes_mm[s]`` from one of the domain's volumes: centred on an
organ voxel with probability ``pos_fraction`` where the domain has organ masks, else on a random
voxel of the body (above ``body_hu``). A ``tumours`` domain takes the crop from the synthetic stream
(:class:`~tumorsynth.stream.TumorStream`: tumours inserted into its hosts), around the centre of
the stream's crop. The crop is windowed to [0, 1] (``window_hu``), resized to ``input_size``
(MONAI ``Resize``, trilinear, anti-aliased when shrinking) and corrupted
(:func:`~tumorsynth.methods.sar.corruption.models_genesis`).

Examples
--------
>>> crops = SarCrops(load_domains(config), config, seed=0)            # doctest: +SKIP
>>> item = next(iter(crops))                                          # doctest: +SKIP
>>> item["input"].shape, item["scale"], item["domain"]                # doctest: +SKIP
(torch.Size([1, 64, 64, 32]), 2, 1)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset

from tumorsynth.methods.sar.config import PretrainConfig
from tumorsynth.methods.sar.corruption import models_genesis
from tumorsynth.methods.sar.domains import Domain, Volume, crop_voxels
from tumorsynth.segment.predict import window
from tumorsynth.stream.crops import TumorStream, stream_rank

__all__ = ["SarCrops", "fixed_crops"]

BODY_TRIES = 20
"""Random centres tried before a crop centred outside the body is accepted."""


def _rank() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class SarCrops(IterableDataset):
    """Endless corrupted multi-scale crops of the ``domains`` (see the module).

    Parameters
    ----------
    domains : sequence of Domain
        From :func:`~tumorsynth.methods.sar.domains.load_domains` (crops checked to fit).
    config : PretrainConfig
    seed : int
        The stream of a process is a function of (seed, rank, world size, worker, number of
        workers): reproducible, and distinct across DataLoader workers and ranks.

    Notes
    -----
    Each item is a dict: ``"input"`` and ``"target"``, (1, X, Y, Z) float32 in [0, 1] of
    ``input_size`` (the corrupted crop and the clean one, flipped alike); ``"scale"`` and
    ``"domain"``, int64 classes; ``"tumour"``: whether the crop holds synthetic tumour voxels;
    ``"domain_weight"``: 1.0, or 0.0 for a tumour crop that the domain loss leaves out
    (``domain_on_tumour_crops`` false).
    """

    def __init__(self, domains: Sequence[Domain], config: PretrainConfig, seed: int) -> None:
        super().__init__()
        self.domains, self.config, self.seed = list(domains), config, int(seed)
        self.rank = _rank()
        self.streams: dict[int, TumorStream] = {}
        for d in self.domains:
            if d.tumours:
                self.streams[d.index] = TumorStream(
                    [v.case() for v in d.volumes], patch_size=self._largest(d.volumes),
                    pos_fraction=config.pos_fraction, prob=1.0, config=config.synth_config,
                    seed=self.seed,
                )  # fmt: skip
        self._organs: dict[tuple[int, int], np.ndarray] = {}

    def _largest(self, volumes: Sequence[Volume]) -> tuple[int, int, int]:
        """The stream's patch: the largest crop of any scale in any of ``volumes``, voxels."""
        vox = [crop_voxels(s, v.spacing_mm) for v in volumes for s in self.config.crop_sizes_mm]
        return tuple(int(n) for n in np.max(vox, axis=0))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        rank, world, worker, workers = stream_rank(self.rank)
        rng = np.random.default_rng([self.seed, rank, world, worker, workers])
        corrupt = self.corruption(rng)
        while True:
            yield self.sample(rng, corrupt)

    def corruption(self, rng: np.random.Generator):
        """A corruption pipeline whose random state is drawn from ``rng``."""
        c = self.config
        corrupt = models_genesis(
            c.input_size, flip_prob=c.flip_prob, shuffle_prob=c.shuffle_prob,
            shuffle_blocks=c.shuffle_blocks, nonlinear_prob=c.nonlinear_prob,
            paint_prob=c.paint_prob, inpaint_fraction=c.inpaint_fraction,
        )  # fmt: skip
        corrupt.set_random_state(seed=int(rng.integers(2**31)))
        return corrupt

    def sample(self, rng: np.random.Generator, corrupt) -> dict[str, Any]:
        """One item (see the class notes): the crop drawn from ``rng``, corrupted by ``corrupt``
        (from :meth:`corruption`)."""
        domain = self.domains[int(rng.integers(len(self.domains)))]
        scale = int(rng.integers(len(self.config.crop_sizes_mm)))
        crop_hu, tumour = self.crop(rng, domain, scale)
        clean = self.resize(window(torch.from_numpy(crop_hu)[None], self.config.window_hu))
        out = corrupt({"image": clean})
        excluded = tumour and not self.config.domain_on_tumour_crops
        return {
            "input": torch.as_tensor(out["image"]).float().contiguous(),
            "target": torch.as_tensor(out["target"]).float().contiguous(),
            "scale": torch.tensor(scale, dtype=torch.int64),
            "domain": torch.tensor(domain.index, dtype=torch.int64),
            "domain_weight": torch.tensor(0.0 if excluded else 1.0),
            "tumour": torch.tensor(tumour),
        }

    def resize(self, crop: torch.Tensor) -> torch.Tensor:
        """A (1, x, y, z) crop resized to ``input_size`` (trilinear; anti-aliased when shrinking)."""
        from monai.transforms import Resize

        size = tuple(self.config.input_size)
        if tuple(crop.shape[1:]) == size:
            return crop.clone()
        resize = Resize(size, mode="trilinear", anti_aliasing=True)
        return torch.as_tensor(resize(crop)).float()

    def crop(self, rng: np.random.Generator, domain: Domain, scale: int) -> tuple[np.ndarray, bool]:
        """A (x, y, z) HU crop of ``crop_sizes_mm[scale]`` from ``domain``, and whether it holds
        synthetic tumour voxels."""
        size_mm = self.config.crop_sizes_mm[scale]
        if domain.tumours:
            item = self.streams[domain.index].sample(rng)
            spacing = domain.volumes[item["case"]].spacing_mm
            box = _central(item["image"].shape[1:], crop_voxels(size_mm, spacing))
            tumour = bool((item["label"][0][box] == 2).any())
            return item["image"][0][box].numpy(), tumour
        k = int(rng.integers(len(domain.volumes)))
        volume = domain.volumes[k]
        vox = np.array(crop_voxels(size_mm, volume.spacing_mm))
        lo = self._corner(rng, (domain.index, k), volume, vox)
        box = tuple(slice(int(a), int(a + n)) for a, n in zip(lo, vox, strict=True))
        return np.ascontiguousarray(volume.image[box], dtype=np.float32), False

    def _corner(
        self, rng: np.random.Generator, key: tuple[int, int], volume: Volume, vox: np.ndarray
    ) -> np.ndarray:
        """The first voxel of a crop of ``vox`` voxels centred on the organ or the body."""
        shape = np.array(volume.image.shape)
        top = shape - vox  # the crops fit (checked at load)
        if volume.organ is not None and rng.random() < self.config.pos_fraction:
            if key not in self._organs:
                self._organs[key] = np.flatnonzero(volume.organ.reshape(-1))
            organ = self._organs[key]
            if organ.size:
                centre = np.array(np.unravel_index(organ[rng.integers(organ.size)], shape))
                return np.clip(centre - vox // 2, 0, top)
        for _ in range(BODY_TRIES):
            lo = np.array([rng.integers(0, t + 1) for t in top])
            centre = lo + vox // 2
            if volume.image[tuple(centre)] > self.config.body_hu:
                break
        return lo


def _central(shape: Sequence[int], vox: Sequence[int]) -> tuple[slice, ...]:
    """The box of ``vox`` voxels at the centre of an array of ``shape``."""
    lo = [(n - v) // 2 for n, v in zip(shape, vox, strict=True)]
    return tuple(slice(a, a + v) for a, v in zip(lo, vox, strict=True))


def fixed_crops(crops: SarCrops, n: int, seed: int) -> dict[str, torch.Tensor]:
    """``n`` items of ``crops`` drawn from ``seed`` alone (the same on every call and rank),
    stacked into a batch: the held-out crops of validation."""
    rng = np.random.default_rng([seed, 0x5A4])
    corrupt = crops.corruption(rng)
    items = [crops.sample(rng, corrupt) for _ in range(n)]
    return {key: torch.stack([item[key] for item in items]) for key in items[0]}
