r"""Paired crops for the presence classifier: each positive with its negative at the same place.

A :class:`~tumorsynth.stream.TumorStream` item holds a crop with tumours inserted (``image``) and
the same crop before insertion (``healthy_image``). A crop whose tumour covers at least
``min_tumour_fraction`` of its voxels gives one pair: (``image``, 1) and (``healthy_image``, 0).
The two differ only by the tumour (and the parenchyma its mass effect touches), so the classifier
can only tell them apart by the tumour, not by "synthetic volume" (papers.md §0.2). The stream
places the tumours anywhere inside the crop, not at a corner as the authors' sampler does.

Examples
--------
>>> pairs = draw_pairs(stream, np.random.default_rng(0), 4, min_tumour_vox=25)  # doctest: +SKIP
>>> pairs.positive.shape, pairs.negative.shape                                   # doctest: +SKIP
((4, 1, 8, 8, 8), (4, 1, 8, 8, 8))
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from tumorsynth.engine.case import Case
from tumorsynth.errors import ConfigError
from tumorsynth.methods.spars.config import SparsConfig
from tumorsynth.methods.spars.volumes import window_hu
from tumorsynth.stream.crops import TumorStream

__all__ = [
    "PairBatches",
    "Pairs",
    "as_batch",
    "box_negatives",
    "draw_pairs",
    "make_stream",
    "min_tumour_vox",
]

MAX_DRAWS_PER_PAIR = 50
"""Give up (with a message) when this many stream items per pair hold too little tumour."""


@dataclass(frozen=True, eq=False)
class Pairs:
    """Paired crops, windowed to [0, 1].

    Attributes
    ----------
    positive, negative : numpy.ndarray
        (N, 1, X, Y, Z) float32: the crop with tumours, and the same crop before insertion.
    case : numpy.ndarray
        (N,) int64 host index of each pair.
    crop_lo_vox : numpy.ndarray
        (N, 3) int64 position of each crop's first voxel in its host.
    tumour_vox : numpy.ndarray
        (N,) int64 tumour voxels of each positive.
    """

    positive: np.ndarray
    negative: np.ndarray
    case: np.ndarray
    crop_lo_vox: np.ndarray
    tumour_vox: np.ndarray

    def __len__(self) -> int:
        return int(self.positive.shape[0])


def min_tumour_vox(config: SparsConfig) -> int:
    """Tumour voxels a crop needs to be a positive (at least 1)."""
    return max(1, int(np.ceil(config.clf_min_tumour_fraction * np.prod(config.window_vox))))


def make_stream(config: SparsConfig, hosts: Sequence[Case], seed: int) -> TumorStream:
    """The stream of window-sized crops with tumours that pairs are drawn from."""
    return TumorStream(
        hosts,
        patch_size=config.window_vox,
        pos_fraction=config.clf_pos_fraction,
        prob=1.0,
        config=config.synth_config,
        seed=seed,
    )


def draw_pairs(
    stream: TumorStream,
    rng: np.random.Generator,
    n_pairs: int,
    min_tumour_vox: int,
    window: Sequence[float] = (-175.0, 250.0),
    progress: bool = False,
) -> Pairs:
    """Draw ``n_pairs`` pairs from ``stream`` (items with too little tumour are skipped).

    Raises
    ------
    ConfigError
        When the stream keeps giving crops with too little tumour (the window is too small for the
        tumours, or ``clf_min_tumour_fraction`` too high).
    """
    pos, neg, cases, los, counts = [], [], [], [], []
    draws = 0
    with tqdm(total=n_pairs, desc="pairs", unit="pair", disable=not progress, leave=False) as bar:
        while len(pos) < n_pairs:
            draws += 1
            if draws > MAX_DRAWS_PER_PAIR * n_pairs:
                raise ConfigError(
                    f"clf_min_tumour_fraction: only {len(pos)} of {draws} crops held "
                    f"{min_tumour_vox} tumour voxels: lower it, or enlarge window_vox"
                )
            item = stream.sample(rng)
            n_tumour = int((item["label"] == 2).sum())
            if n_tumour < min_tumour_vox:
                continue
            pos.append(item["image"].numpy())
            neg.append(item["healthy_image"].numpy())
            cases.append(item["case"])
            los.append(item["crop_lo_vox"].numpy())
            counts.append(n_tumour)
            bar.update(1)
    return Pairs(
        positive=window_hu(np.stack(pos), window),
        negative=window_hu(np.stack(neg), window),
        case=np.asarray(cases, np.int64),
        crop_lo_vox=np.stack(los).astype(np.int64),
        tumour_vox=np.asarray(counts, np.int64),
    )


def box_negatives(
    stream: TumorStream, rng: np.random.Generator, n: int, config: SparsConfig
) -> np.ndarray:
    """``n`` healthy windows anywhere in a host liver's box (grown by ``box_margin_vox``) that hold
    some liver: the windows the agents see away from tumours (the liver's edges among them),
    windowed, (N, 1, X, Y, Z) float32.

    Paired negatives sit where the tumours go, well inside the liver; without these a classifier
    takes the dark fat beside the liver's edge for a hypodense tumour.
    """
    hosts = stream.cases or []
    w = np.asarray(config.window_vox)
    crops = []
    while len(crops) < n:
        host = hosts[int(rng.integers(len(hosts)))]
        stats = host.organ_stats
        lo = np.maximum(np.asarray(stats.bbox_lo) - config.box_margin_vox, 0)
        hi = np.minimum(np.asarray(stats.bbox_hi) + config.box_margin_vox, host.shape) - w
        corner = np.array([rng.integers(a, max(a, b) + 1) for a, b in zip(lo, hi, strict=True)])
        image, organ = stream.crop(host, corner)
        if organ.any():
            crops.append(image)
    return window_hu(np.stack(crops)[:, None], config.window_hu)


def as_batch(positive: np.ndarray, negative: np.ndarray) -> dict[str, torch.Tensor]:
    """Positives then negatives as one batch: ``input`` (P + N, 1, X, Y, Z), ``target``
    (P + N, 1)."""
    x = np.concatenate([positive, negative])
    y = np.concatenate([np.ones(len(positive)), np.zeros(len(negative))]).astype(np.float32)
    return {"input": torch.from_numpy(x), "target": torch.from_numpy(y)[:, None]}


class PairBatches:
    """Endless training batches of ``clf_batch_pairs`` pairs: from a bank of ``clf_bank_pairs``
    pairs drawn once (when it is not 0), or fresh from the stream at every step, plus
    ``clf_box_negatives`` x as many healthy windows from the livers' boxes (:func:`box_negatives`);
    with ``clf_flip``, each batch flipped along random axes.

    Parameters
    ----------
    stream : TumorStream
    config : SparsConfig
    seed : int
        Seed of the draws (a resumed run passes another, so it does not replay its batches).
    progress : bool
        A progress bar while the bank is drawn.
    """

    def __init__(
        self, stream: TumorStream, config: SparsConfig, seed: int, progress: bool = False
    ) -> None:
        self.stream, self.config = stream, config
        self.rng = np.random.default_rng(seed)
        self.min_vox = min_tumour_vox(config)
        self.bank: Pairs | None = None
        self.box_bank: np.ndarray | None = None
        if config.clf_bank_pairs:
            self.bank = draw_pairs(
                stream, self.rng, config.clf_bank_pairs, self.min_vox, config.window_hu, progress
            )
            n_box = round(config.clf_box_negatives * config.clf_bank_pairs)
            self.box_bank = box_negatives(stream, self.rng, n_box, config) if n_box else None

    def _draw(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Positives and negatives (paired, then box) of one batch."""
        n_box = round(self.config.clf_box_negatives * n)
        if self.bank is None:
            pairs = draw_pairs(self.stream, self.rng, n, self.min_vox, self.config.window_hu)
            pos, neg = pairs.positive, pairs.negative
            box = box_negatives(self.stream, self.rng, n_box, self.config) if n_box else neg[:0]
        else:
            pick = self.rng.choice(len(self.bank), size=min(n, len(self.bank)), replace=False)
            pos, neg = self.bank.positive[pick], self.bank.negative[pick]
            box = neg[:0]
            if self.box_bank is not None:
                k = min(n_box, len(self.box_bank))
                box = self.box_bank[self.rng.choice(len(self.box_bank), size=k, replace=False)]
        return pos, np.concatenate([neg, box])

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        n = self.config.clf_batch_pairs
        while True:
            batch = as_batch(*self._draw(n))
            if self.config.clf_flip:
                axes = [2 + a for a in range(3) if self.rng.random() < 0.5]
                batch["input"] = batch["input"].flip(axes) if axes else batch["input"]
            yield batch
