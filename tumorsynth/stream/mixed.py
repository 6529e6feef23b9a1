r"""Mixed training crops: phantoms, healthy CT and labelled real scans in one stream, by ratio.

:class:`MixedStream` draws each crop from one of several named sources: host groups that get
synthetic tumours (each a :class:`~tumorsynth.stream.crops.TumorStream`, e.g. ``"phantom"`` and
``"ct"``) and labelled scans that keep their own labels (:class:`LabelledStream`, ``"real"``: images
with 0/1/2 label maps, no synthesis). The source of each crop follows the mixing weights by smooth
weighted round robin, so the fractions of any ``n`` crops of one process are within one crop of
``n`` times the ratios; the host, position and tumours inside a source are random. Each item
carries ``"source"``, the name of its source.

Examples
--------
>>> stream = MixedStream(                                                  # doctest: +SKIP
...     {"phantom": TumorStream(phantoms, (64,) * 3), "real": LabelledStream(scans, (64,) * 3)},
...     weights={"phantom": 3, "real": 1}, seed=0)
>>> [next(iter(stream))["source"] for _ in range(1)]                      # doctest: +SKIP
['phantom']
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset

from tumorsynth.engine.case import Case
from tumorsynth.errors import InputError
from tumorsynth.stream.crops import TumorStream, stream_rank

__all__ = ["SOURCES", "LabelledScan", "LabelledStream", "MixedStream", "mix_fractions"]

SOURCES = ("phantom", "ct", "real")
"""The source names of ``tumorsynth train``'s mix: built-in phantoms and healthy CT (tumours
synthesised), and labelled real scans (their own labels)."""


@dataclass(frozen=True, eq=False)
class LabelledScan:
    """A labelled scan: (X, Y, Z) float32 HU and uint8 labels (0 background, 1 organ, 2 tumour).

    Attributes
    ----------
    name : str
    image : numpy.ndarray
    label : numpy.ndarray
    spacing_mm : tuple of 3 float
    """

    name: str
    image: np.ndarray
    label: np.ndarray
    spacing_mm: tuple[float, float, float]


def mix_fractions(weights: Mapping[str, float]) -> dict[str, float]:
    """Weights -> fractions summing to 1 (sources of weight 0 left out).

    >>> mix_fractions({"phantom": 2, "ct": 1, "real": 1})
    {'phantom': 0.5, 'ct': 0.25, 'real': 0.25}
    """
    positive = {k: float(w) for k, w in weights.items() if float(w) > 0}
    if not positive or any(float(w) < 0 or not np.isfinite(w) for w in weights.values()):
        raise InputError(f"mix: weights must be >= 0 with a positive sum, got {dict(weights)}")
    total = sum(positive.values())
    return {k: w / total for k, w in positive.items()}


class LabelledStream(TumorStream):
    """Random crops of labelled scans with their own labels (no synthesis), as
    :class:`~tumorsynth.stream.crops.TumorStream` crops hosts: ``pos_fraction`` of them centred on
    an organ or tumour voxel; ``"params"`` is always empty."""

    def __init__(
        self,
        scans: Sequence[LabelledScan],
        patch_size: tuple[int, int, int] = (96, 96, 96),
        pos_fraction: float = 0.5,
        seed: int | None = None,
    ) -> None:
        if not scans:
            raise InputError("LabelledStream: no labelled scans")
        cases = [
            Case(s.image, (s.label > 0).astype(np.uint8), tuple(s.spacing_mm), source=s.name)
            for s in scans
        ]
        super().__init__(cases, patch_size, pos_fraction, prob=0.0, config="syntumor", seed=seed)
        self.labels = [np.asarray(s.label, np.uint8) for s in scans]

    def replay(self, case: int, crop_lo_vox: Any, seed: int | None = None) -> dict[str, Any]:
        """The crop of scan ``case`` at ``crop_lo_vox``, with its labels (``seed`` is ignored)."""
        item = super().replay(case, crop_lo_vox, None)
        host = self._hosts()[case]
        labels = Case(host.image, self.labels[case], host.spacing_mm)
        _, label = self.crop(labels, np.asarray(crop_lo_vox, dtype=np.int64))
        item["label"] = torch.from_numpy(label)[None]
        return item


class MixedStream(IterableDataset):
    """Endless crops from several sources, each crop's source chosen by the mixing weights.

    Parameters
    ----------
    streams : dict of str to TumorStream
        The sources by name (``TumorStream`` for hosts that get tumours, :class:`LabelledStream`
        for labelled scans); each draws the host, crop and tumours of its crops.
    weights : dict of str to float
        Relative weight per source (any positive numbers; normalised by :func:`mix_fractions`).
    seed : int
        Base seed of the stream (distinct per rank and DataLoader worker, as ``TumorStream``).

    Notes
    -----
    Items are those of the sources' ``sample`` with ``"source"`` added. The source of the next
    crop is the one furthest below its share so far (smooth weighted round robin): with one source
    the item sequence is that source's own stream.
    """

    def __init__(
        self, streams: Mapping[str, TumorStream], weights: Mapping[str, float], seed: int = 0
    ) -> None:
        super().__init__()
        missing = sorted(set(weights) - set(streams))
        if missing:
            raise InputError(f"MixedStream: weights for sources it does not have: {missing}")
        self.fractions = mix_fractions({k: weights.get(k, 0.0) for k in streams})
        self.streams = {k: streams[k] for k in self.fractions}
        self.seed = int(seed)
        self.rank = next(iter(self.streams.values())).rank

    def generator(self) -> np.random.Generator:
        rank, world, worker, workers = stream_rank(self.rank)
        return np.random.default_rng([self.seed, rank, world, worker, workers])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        rng = self.generator()
        names = list(self.fractions)
        share = np.array([self.fractions[k] for k in names])
        counts = np.zeros(len(names))
        while True:
            k = int(np.argmax(share * (counts.sum() + 1) - counts))
            counts[k] += 1
            item = self.streams[names[k]].sample(rng)
            item["source"] = names[k]
            yield item

    def replay(self, source: str, case: int, crop_lo_vox: Any, seed: int | None) -> dict[str, Any]:
        """The item a ``streams/rank{r}.jsonl`` line describes, rendered again."""
        if source not in self.streams:
            raise InputError(f"no source {source!r} in this stream ({', '.join(self.streams)})")
        return {**self.streams[source].replay(case, crop_lo_vox, seed), "source": source}
