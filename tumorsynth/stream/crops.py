r"""An endless stream of synthetic training crops: :class:`TumorStream`, a PyTorch ``IterableDataset``.

Each item is a random crop of a healthy case with tumours inserted into it, together with the same
crop before insertion and the params that made it, so a trainer can learn from (healthy, tumour)
pairs with no annotated tumour at all.

Examples
--------
>>> from torch.utils.data import DataLoader                           # doctest: +SKIP
>>> from tumorsynth.stream.crops import TumorStream, collate                 # doctest: +SKIP
>>> stream = TumorStream(patch_size=(96, 96, 96), seed=0)              # the phantom by default
>>> loader = DataLoader(stream, batch_size=2, num_workers=2, collate_fn=collate)  # doctest: +SKIP
>>> batch = next(iter(loader))                                         # doctest: +SKIP
>>> batch["image"].shape, batch["label"].dtype                         # doctest: +SKIP
(torch.Size([2, 1, 96, 96, 96]), torch.uint8)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from tumorsynth.engine.case import Case, as_case
from tumorsynth.engine.config import SynthConfig, load_config
from tumorsynth.engine.pipeline import render, sample_params
from tumorsynth.engine.rng import fresh_seed
from tumorsynth.errors import InputError, PlacementError

__all__ = ["AIR_HU", "TumorStream", "collate", "stream_rank"]

AIR_HU = -1024.0
"""Value of the padding, HU, where a case is smaller than the patch."""

ConfigLike = str | Path | Mapping[str, Any] | SynthConfig


def _distributed_rank() -> tuple[int, int] | None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return None


def stream_rank(default: tuple[int, int] = (0, 1)) -> tuple[int, int, int, int]:
    """``(rank, world_size, worker, num_workers)`` of the calling process: the distributed rank if
    ``torch.distributed`` is initialised here (else ``default``) and the DataLoader worker (else 0
    of 1)."""
    rank, world = _distributed_rank() or default
    info = get_worker_info()
    worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
    return rank, world, worker, workers


class TumorStream(IterableDataset):
    r"""Endless random crops of healthy cases with synthetic tumours inserted.

    Parameters
    ----------
    cases : sequence of Case, optional
        Healthy hosts (organ mask 0/1, no tumour). By default the built-in phantom at 1 mm
        (``make_phantom(seed=0)``), built on first use in each process.
    patch_size : tuple of 3 int, optional
        Crop size (X, Y, Z) in voxels; a case smaller than the patch is padded with air
        (:data:`AIR_HU`, label 0).
    pos_fraction : float, optional
        Probability that a crop is centred on a random organ voxel (a positive crop, as MONAI's
        ``RandCropByPosNegLabeld``); the other crops are placed uniformly in the volume.
    prob : float, optional
        Probability of inserting tumours into a crop that holds organ.
    config : str, path, dict or SynthConfig, or a sequence of them, optional
        Synthesis config (``"liver"`` by default), or one per case (hosts of several organs, each
        with its organ's preset).
    seed : int, optional
        Base seed; a fresh one is drawn (and kept in ``self.seed``) when omitted. The stream of one
        process is a function of (seed, rank, world size, worker, number of workers): it is
        reproducible, and distinct across DataLoader workers and distributed ranks (the rank is
        read when the stream is made, so workers started by spawn or forkserver, which do not
        join the process group, still know it).
    render : bool, optional
        Render the tumours here (default). With False the params are drawn but not rendered:
        ``"image"`` is the healthy crop and ``"label"`` the organ, and the training step renders
        the params into the batch on its device (:func:`tumorsynth.stream.insert.insert_tumours`),
        the same tumours voxel for voxel.

    Notes
    -----
    Each item is a dict:

    - ``"image"``: (1, X, Y, Z) float32 tensor, CT in HU with the tumours;
    - ``"label"``: (1, X, Y, Z) uint8 tensor, 0 background, 1 organ, 2 tumour;
    - ``"healthy_image"``: (1, X, Y, Z) float32 tensor, the same crop before insertion; it differs
      from ``"image"`` only inside the organ (the tumours and the parenchyma their mass effect and
      capsule touch) and, for an exophytic tumour, within its bounded margin outside it;
    - ``"context"`` and ``"codes"``, only for cases whose ``extras`` hold a ``"context"`` map
      (hosts of several organs, :func:`tumorsynth.train.data.load_hosts`): (1, X, Y, Z) uint8 crop
      of it (every trained organ in its label code) and the case's (organ, tumour) codes, an int64
      tensor (2,), from which the training step makes its targets;
    - ``"params"``: dict of :meth:`TumorParams.to_dict`, for replay with :func:`tumorsynth.render`
      on the crop (empty when nothing was inserted: no draw, no organ in the crop, or no room
      for a tumour, when :class:`~tumorsynth.PlacementError` is caught and the crop passes through);
    - ``"case"``: int, index of the case in ``cases``;
    - ``"crop_lo_vox"``: (3,) int64 tensor, position of the crop's first voxel in the case, (X, Y, Z)
      (negative where the crop was padded).

    Tensors are on the CPU; the params dicts have different lengths, so batch with
    ``collate_fn=``:func:`collate`.
    """

    def __init__(
        self,
        cases: Sequence[Case] | None = None,
        patch_size: tuple[int, int, int] = (96, 96, 96),
        pos_fraction: float = 0.5,
        prob: float = 1.0,
        config: ConfigLike = "liver",
        seed: int | None = None,
        render: bool = True,
    ) -> None:
        super().__init__()
        size = tuple(int(n) for n in np.asarray(patch_size).reshape(-1))
        if len(size) != 3 or min(size) < 1:
            raise InputError(f"TumorStream: patch_size must be 3 positive ints, got {patch_size!r}")
        for name, value in (("pos_fraction", pos_fraction), ("prob", prob)):
            if not 0.0 <= float(value) <= 1.0:
                raise InputError(f"TumorStream: {name} must be in [0, 1], got {value!r}")
        self.cases = None if cases is None else list(cases)
        if self.cases is not None and not self.cases:
            raise InputError("TumorStream: cases is empty")
        self.patch_size: tuple[int, int, int] = size  # type: ignore[assignment]
        self.pos_fraction = float(pos_fraction)
        self.prob = float(prob)
        if isinstance(config, (list, tuple)):
            if self.cases is None or len(config) != len(self.cases):
                raise InputError("TumorStream: give one config per case, or one for all")
            self.configs = [load_config(c) for c in config]
        else:
            self.configs = None
        self.config = load_config(config) if self.configs is None else self.configs[0]
        self.seed = fresh_seed() if seed is None else int(seed)
        self.render = bool(render)
        self.rank = _distributed_rank() or (0, 1)
        self._organ_voxels: dict[int, np.ndarray] = {}

    def _hosts(self) -> list[Case]:
        if self.cases is None:
            from tumorsynth.phantom import make_phantom

            self.cases = [make_phantom(seed=0)]
        return self.cases

    def generator(self) -> np.random.Generator:
        """The generator of the calling process's stream (see ``seed``)."""
        rank, world, worker, workers = stream_rank(self.rank)
        return np.random.default_rng([self.seed, rank, world, worker, workers])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        rng = self.generator()
        while True:
            yield self.sample(rng)

    def _crop_lo(self, rng: np.random.Generator, index: int, case: Case) -> np.ndarray:
        shape, size = np.array(case.shape), np.array(self.patch_size)
        if rng.random() < self.pos_fraction:
            if index not in self._organ_voxels:
                flat = np.flatnonzero(np.asarray(case.organ).reshape(-1))
                small = flat.size == 0 or flat[-1] < 2**31
                self._organ_voxels[index] = flat.astype(np.int32) if small else flat
            flat = self._organ_voxels[index]
            center = np.array(np.unravel_index(flat[rng.integers(flat.size)], case.shape))
            lo = center - size // 2
        else:
            lo = np.array(
                [rng.integers(0, max(n - s, 0) + 1) for n, s in zip(shape, size, strict=True)]
            )
        # keep the crop inside the volume where it fits, centred on it where it does not
        return np.where(
            size <= shape, np.clip(lo, 0, np.maximum(shape - size, 0)), (shape - size) // 2
        )

    def crop(self, case: Case, lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The (X, Y, Z) float32 image and uint8 organ of ``case`` in the patch at ``lo`` (voxels),
        padded with air outside the volume."""
        return self._crop(case.image, lo, np.float32, AIR_HU), self._crop(case.organ, lo)

    def _crop(self, volume, lo: np.ndarray, dtype=np.uint8, fill: float = 0) -> np.ndarray:
        out = np.full(self.patch_size, fill, dtype=dtype)
        src = tuple(
            slice(max(a, 0), min(a + s, n))
            for a, s, n in zip(lo, self.patch_size, volume.shape, strict=True)
        )
        dst = tuple(slice(s.start - a, s.stop - a) for s, a in zip(src, lo, strict=True))
        out[dst] = np.asarray(volume)[src]
        return out

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """One item (see the class notes), drawn from ``rng``."""
        hosts = self._hosts()
        index = int(rng.integers(len(hosts)))
        lo = self._crop_lo(rng, index, hosts[index])
        insert = bool(rng.random() < self.prob)
        seed = int(rng.integers(2**63))
        return self.replay(index, lo, seed if insert else None)

    def replay(self, case: int, crop_lo_vox: Any, seed: int | None) -> dict[str, Any]:
        """The item of host ``case`` cropped at ``crop_lo_vox`` with the tumours of ``seed`` (None:
        none), as :meth:`sample` made it: what ``tumorsynth train`` logs in
        ``streams/rank{r}.jsonl`` renders again with this."""
        host = self._hosts()[case]
        lo = np.asarray(crop_lo_vox, dtype=np.int64)
        healthy, organ = self.crop(host, lo)
        image, label, params = healthy, organ, {}
        config = self.config if self.configs is None else self.configs[case]
        if seed is not None and organ.any():
            try:
                drawn = sample_params(
                    as_case(healthy, organ, host.spacing_mm, direction=host.direction),
                    config=config,
                    rng=seed,
                )
            except PlacementError:  # too little organ in the crop: pass through
                pass
            else:
                params = drawn.to_dict()
                if self.render:
                    result = render(healthy, organ, host.spacing_mm, drawn)
                    image, label = result.image, result.label
        item = {
            "image": torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None],
            "label": torch.from_numpy(np.ascontiguousarray(label, dtype=np.uint8))[None],
            "healthy_image": torch.from_numpy(healthy)[None],
            "params": params,
            "case": case,
            "crop_lo_vox": torch.as_tensor(lo, dtype=torch.int64),
        }
        if "context" in host.extras:
            item["context"] = torch.from_numpy(self._crop(host.extras["context"], lo))[None]
            item["codes"] = torch.as_tensor(host.extras["label_codes"], dtype=torch.int64)
        return item


def collate(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Batch stream items: tensors stacked along a new first axis (B, ...), ``"case"`` as an int64
    tensor (B,), ``"params"`` kept as a list of B dicts."""
    out: dict[str, Any] = {}
    for key in items[0]:
        values = [item[key] for item in items]
        if isinstance(values[0], torch.Tensor):
            out[key] = torch.stack(values)
        elif key == "case":
            out[key] = torch.as_tensor(values, dtype=torch.int64)
        else:
            out[key] = values
    return out
