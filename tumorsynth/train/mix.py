"""Mixed training data: phantoms, healthy CT and labelled real scans together, by ``mix`` ratios.

A run whose config sets ``mix`` reads each source it weights: ``phantom`` (``n_phantoms`` built-in
phantoms), ``ct`` (the healthy CT of ``images`` / ``dataset``, with organ masks) and ``real``
(``real_images`` with ``real_labels``, or ``real_dataset``: scans with 0/1/2 label maps, trained on
with their own labels). Tumours are synthesised into the crops of the first two;
:class:`~tumorsynth.stream.mixed.MixedStream` picks each crop's source by the ratios and the run
logs it per crop (``streams/rank<r>.jsonl``); :func:`source_fractions` counts them.

Examples
--------
>>> cfg = load_train_config("mixed.yaml")         # doctest: +SKIP
>>> groups, scans = load_mixed(cfg)                # doctest: +SKIP
>>> source_fractions("runs/mixed")                 # doctest: +SKIP
{'phantom': 0.25, 'ct': 0.25, 'real': 0.5}
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import Counter
from pathlib import Path

from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from tumorsynth.dataset.sources import dataset_json_sources, expand_paths, pair_sources
from tumorsynth.engine.case import Case
from tumorsynth.errors import InputError
from tumorsynth.stream.crops import TumorStream
from tumorsynth.stream.mixed import LabelledScan, LabelledStream, MixedStream
from tumorsynth.train.config import TrainConfig, synth_config_of
from tumorsynth.train.data import crop_loader, load_hosts, read_labelled, stream_seed

__all__ = ["load_labelled_scans", "load_mixed", "make_mixed_loader", "source_fractions"]

log = logging.getLogger("tumorsynth.train")


def _weights(config: TrainConfig) -> dict[str, float]:
    return {k: float(v) for k, v in config.mix.items() if float(v) > 0}


def load_labelled_scans(config: TrainConfig, progress: bool = True) -> list[LabelledScan]:
    """The labelled real scans of ``config`` (``real_images`` + ``real_labels`` or
    ``real_dataset``), at ``spacing_mm`` when it is set.

    Raises
    ------
    InputError
        Missing or unreadable files, labels other than 0, 1, 2 (naming the file).
    """
    if config.real_dataset:
        sources = dataset_json_sources(config.real_dataset, organ_label=1)
    else:
        images = expand_paths(config.real_images, "real_images")
        labels = expand_paths(config.real_labels, "real_labels")
        sources, _ = pair_sources(images, labels, None, ("real_images", "real_labels"))
    scans = []
    for source in tqdm(sources, desc="labelled scans", disable=not progress, leave=False):
        image, label, spacing = read_labelled(config, source.image, source.mask, "real")
        scans.append(LabelledScan(source.name, image, label, spacing))
    return scans


def _phantoms(config: TrainConfig, progress: bool) -> list[Case]:
    """The ``n_phantoms`` phantoms, read as a phantom-only run reads them."""
    only = dataclasses.replace(
        config, images=[], masks=[], dataset=None, mix={}, real_images=[], real_labels=[],
        real_dataset=None,
    )  # fmt: skip
    return load_hosts(only, progress)


def load_mixed(
    config: TrainConfig, progress: bool = True
) -> tuple[dict[str, list[Case]], list[LabelledScan]]:
    """The host groups (``{"phantom": [...], "ct": [...]}``, the weighted ones) and the labelled
    scans (empty unless ``real`` is weighted) of a mixed run.

    Raises
    ------
    InputError, ConfigError
        As :func:`~tumorsynth.train.data.load_hosts`, naming the file.
    """
    weights = _weights(config)
    groups: dict[str, list[Case]] = {}
    if "phantom" in weights:
        groups["phantom"] = _phantoms(config, progress)
    if "ct" in weights:
        groups["ct"] = load_hosts(config, progress)
    scans = load_labelled_scans(config, progress) if "real" in weights else []
    for name, cases in groups.items():
        if not cases:
            raise InputError(f"mix: the {name!r} source has no cases")
    return groups, scans


def make_mixed_loader(
    config: TrainConfig,
    groups: dict[str, list[Case]],
    scans: list[LabelledScan],
    start_step: int,
    render: bool,
) -> DataLoader:
    """The endless DataLoader of a mixed run's crops, each with its ``"source"``."""
    seed = stream_seed(config.seed, start_step)
    common = {"patch_size": config.patch_size, "pos_fraction": config.pos_fraction, "seed": seed}
    synth = {"prob": config.synth_prob, "config": synth_config_of(config, config.organs[0])}
    streams: dict[str, TumorStream] = {
        name: TumorStream(cases, **synth, render=render, **common) for name, cases in groups.items()
    }
    if scans:
        streams["real"] = LabelledStream(scans, **common)
    return crop_loader(config, MixedStream(streams, _weights(config), seed=seed))


def source_fractions(run_dir: str | Path) -> dict[str, float]:
    """The fraction of a run's crops from each source, counted in its ``streams/rank*.jsonl``
    (every rank; crops logged without a source count as ``"synthetic"``).

    Raises
    ------
    InputError
        No stream log in ``run_dir``.
    """
    paths = sorted((Path(run_dir) / "streams").glob("rank*.jsonl"))
    if not paths:
        raise InputError(f"{run_dir}: no streams/rank*.jsonl (not a tumorsynth train run folder)")
    counts: Counter[str] = Counter()
    for path in paths:
        for line in path.read_text().splitlines():
            for item in json.loads(line)["items"]:
                counts[item.get("source", "synthetic")] += 1
    total = sum(counts.values())
    return {k: n / total for k, n in counts.items()} if total else {}
