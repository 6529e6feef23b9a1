"""What a training run reads: healthy hosts, validation cases, the synthetic stream, windowing and
augmentation.

Everything that reads files runs before the first step, so missing files, a patch larger than a
volume or a validation label with unexpected values stop the run at start-up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from tumorsynth.dataset.sources import (
    dataset_json_sources,
    expand_paths,
    load_source,
    pair_sources,
    phantom_sources,
)
from tumorsynth.engine.case import Case, as_case
from tumorsynth.engine.label_maps import label_codes, select_organ
from tumorsynth.errors import ConfigError, InputError
from tumorsynth.io.volume import resample_to_spacing
from tumorsynth.stream.crops import TumorStream, collate
from tumorsynth.train.config import TrainConfig, synth_config_of

__all__ = [
    "VAL_PHANTOM_SEED",
    "ValCase",
    "augment",
    "compose_targets",
    "crop_loader",
    "host_organs",
    "load_hosts",
    "load_val_cases",
    "make_loader",
    "multi_organ",
    "read_labelled",
]

log = logging.getLogger("tumorsynth.train")

VAL_PHANTOM_SEED = 1000
"""First phantom seed of synthetic validation cases (training phantoms use 0, 1, ...)."""


@dataclass(frozen=True, eq=False)
class ValCase:
    """A labelled validation volume: (X, Y, Z) float32 HU, uint8 labels (0, 1 organ, 2 tumour)."""

    name: str
    image: np.ndarray
    label: np.ndarray
    spacing_mm: tuple[float, float, float]


def _sources(config: TrainConfig, organ: str):
    """The hosts of ``organ``: its masks read as 0/1 masks or with ``organ_label`` (no
    ``label_map``), else by the organ's name in ``label_map``."""
    label = config.organ_label
    if config.label_map is not None:
        label = select_organ(organ, config.label_map)
    if config.dataset:
        return dataset_json_sources(config.dataset, label, organ)
    if config.images:
        images = expand_paths(config.images, "images")
        masks = expand_paths(config.masks, "masks")
        return pair_sources(images, masks, label)[0]
    spacing = config.spacing_mm or config.phantom_spacing_mm
    return phantom_sources(config.n_phantoms, spacing, organ)


def multi_organ(config: TrainConfig) -> bool:
    """Whether the run's targets need each host's map of organs (several organs, or the per-organ
    codes): its items then carry a ``context`` (see :class:`~tumorsynth.stream.TumorStream`)."""
    return len(config.organs) > 1 or config.label_scheme != "shared"


def _check_patch(config: TrainConfig, name: str, shape: tuple[int, ...]) -> None:
    if any(p > n for p, n in zip(config.patch_size, shape, strict=True)):
        raise ConfigError(
            f"patch_size {list(config.patch_size)} is larger than {name} ({' x '.join(map(str, shape))}"
            " voxels): choose a smaller patch or larger volumes"
        )


def load_hosts(config: TrainConfig, progress: bool = True) -> list[Case]:
    """Read (or render) the healthy host cases of ``config``: one per host and organ, in the
    order of ``config.organs`` within each host (:func:`host_organs` names each one's organ).

    With several organs or per-organ codes (:func:`multi_organ`), each case's ``extras`` hold
    ``"context"``, the host's map of every trained organ in its label code, and
    ``"label_codes"``, its own organ's (organ, tumour) codes.

    Raises
    ------
    InputError
        A missing or unreadable file, or an organ mask that cannot be used (named).
    ConfigError
        No hosts, or a patch larger than a host volume.
    """
    per_organ = [_sources(config, organ) for organ in config.organs]
    if not per_organ[0]:
        raise ConfigError("no healthy cases: the images / dataset list is empty")
    cases = []
    hosts = list(zip(*per_organ, strict=True))
    for sources in tqdm(hosts, desc="hosts", unit="case", disable=not progress, leave=False):
        group = _load_group(config, sources)
        if multi_organ(config):
            group = _with_context(config, group)
        cases += group
    return cases


def host_organs(config: TrainConfig, n_cases: int) -> list[str]:
    """The organ of each case of :func:`load_hosts`."""
    return [config.organs[k % len(config.organs)] for k in range(n_cases)]


def _load_group(config: TrainConfig, sources) -> list[Case]:
    """The cases of one host, one per organ (a phantom is rendered once, its organs taken from
    its label map)."""
    if not sources[0].is_phantom:
        return [_load_host(config, load_source(s).case, s) for s in sources]
    from tumorsynth.phantom import organ_case

    first = load_source(sources[0]).case
    return [
        _load_host(config, first if k == 0 else organ_case(first, organ), source)
        for k, (source, organ) in enumerate(zip(sources, config.organs, strict=True))
    ]


def _load_host(config: TrainConfig, case: Case, source) -> Case:
    image, mask, spacing = _resampled(config, case.image, case.organ, case.spacing_mm)
    if image is not case.image:
        case = as_case(image, mask, spacing, source=case.source, direction=case.direction)
    _check_patch(config, source.describe(), case.shape)
    return case


def _with_context(config: TrainConfig, group: list[Case]) -> list[Case]:
    """The cases of one host, each with the host's map of organs in the scheme's codes."""
    context = np.zeros(group[0].shape, np.uint8)
    codes = [label_codes(organ, config.label_scheme) for organ in config.organs]
    for case, (organ_code, _) in zip(group, codes, strict=True):
        if case.shape != context.shape:
            raise InputError(f"{case.source}: its organs' masks are on different grids")
        context[np.asarray(case.organ) > 0] = organ_code
    out = []
    for case, code in zip(group, codes, strict=True):
        extras = {**case.extras, "context": context, "label_codes": code}
        out.append(Case(case.image, case.organ, case.spacing_mm, case.source, extras,
                        origin_mm=case.origin_mm, direction=case.direction))  # fmt: skip
    return out


def _resampled(config: TrainConfig, image, labels, spacing_mm):
    """``image`` (linear) and ``labels`` (nearest) at ``config.spacing_mm``, if it is set."""
    target = (float(config.spacing_mm or 0.0),) * 3
    if not config.spacing_mm or np.allclose(spacing_mm, target, rtol=1e-6, atol=0):
        return image, labels, tuple(spacing_mm)
    image = resample_to_spacing(np.asarray(image, np.float32), spacing_mm, target)
    labels = resample_to_spacing(
        np.asarray(labels, np.uint8), spacing_mm, target, shape=image.shape
    )
    return image, labels, target


def read_labelled(
    config: TrainConfig, image_path, label_path, what: str = "validation"
) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """A labelled CT (0 background, 1 organ, 2 tumour, or the run's ``per_organ`` codes) at
    ``config.spacing_mm``: float32 HU, uint8 labels and the spacing, mm.

    Raises
    ------
    InputError
        An unreadable file, or labels with other values (``what`` names their role).
    ConfigError
        A patch larger than the volume.
    """
    from tumorsynth.io.case import read_pair

    volume, label, _ = read_pair(image_path, label_path)
    values = set(np.unique(label).tolist())
    allowed = {0, *(c for o in config.organs for c in label_codes(o, config.label_scheme))}
    if not values <= allowed:
        codes = (
            "0 background, 1 organ, 2 tumour"
            if allowed == {0, 1, 2}
            else f"the {config.label_scheme} codes {sorted(allowed)}"
        )
        raise InputError(f"{label_path}: {what} labels must be {codes}; found {sorted(values)[:8]}")
    image, label, spacing = _resampled(
        config, volume.array.astype(np.float32), label.astype(np.uint8), volume.spacing_mm
    )
    _check_patch(config, str(image_path), image.shape)
    return image, label, spacing


def load_val_cases(
    config: TrainConfig, progress: bool = True, share: tuple[int, int] = (0, 1)
) -> list[ValCase]:
    """The labelled validation cases of ``config``: ``val_images`` with ``val_labels``, and
    ``n_val_synthetic`` phantoms (seeds from :data:`VAL_PHANTOM_SEED`) with tumours from fixed
    seeds, cropped to the organ and a margin of half a patch. ``share = (rank, world)``: only every
    ``world``-th case from ``rank`` on (the ranks of a run validate a share each)."""
    rank, world = share
    jobs: list[tuple] = []
    if config.val_images:
        images = expand_paths(config.val_images, "val_images")
        labels = expand_paths(config.val_labels, "val_labels")
        if len(images) != len(labels):
            raise ConfigError(f"{len(images)} validation images but {len(labels)} label maps")
        jobs += list(zip(images, labels, strict=True))
    jobs += [(VAL_PHANTOM_SEED + k,) for k in range(config.n_val_synthetic)]
    out = []
    for job in tqdm(jobs[rank::world], desc="validation", disable=not progress):
        if len(job) == 2:
            image, label, spacing = read_labelled(config, *job)
            out.append(ValCase(job[0].name, image, label, spacing))
        else:
            out.append(_val_phantom(config, job[0]))
    return out


def _val_phantom(config: TrainConfig, seed: int) -> ValCase:
    """A phantom with tumours from fixed seeds in each trained organ, its labels in the run's
    codes, cropped to the organs and a margin of half a patch."""
    from tumorsynth.engine.pipeline import synthesize
    from tumorsynth.phantom import make_phantom, organ_case

    case = make_phantom(seed=seed, spacing_mm=config.spacing_mm or config.phantom_spacing_mm)
    if not multi_organ(config):
        organ = config.organs[0]
        case = case if organ == "liver" else organ_case(case, organ)
        result = synthesize(case, config=synth_config_of(config, organ), seed=seed)
        box = _organ_box(case, np.array(config.patch_size) // 2)
        return ValCase(f"phantom{seed}", result.image[box], result.label[box], case.spacing_mm)
    image, label = case.image, np.zeros(case.shape, np.uint8)
    hosts = [organ_case(case, organ) for organ in config.organs]
    for host, organ in zip(hosts, config.organs, strict=True):
        label[np.asarray(host.organ) > 0] = label_codes(organ, config.label_scheme)[0]
    boxes = []
    for n, (host, organ) in enumerate(zip(hosts, config.organs, strict=True)):
        result = synthesize(image, host.organ, case.spacing_mm,
                            config=synth_config_of(config, organ), seed=seed + 7919 * n)  # fmt: skip
        image = result.image
        label[result.label == 2] = label_codes(organ, config.label_scheme)[1]
        boxes.append(_organ_box(host, np.array(config.patch_size) // 2))
    box = tuple(slice(min(b[a].start for b in boxes), max(b[a].stop for b in boxes))
                for a in range(3))  # fmt: skip
    return ValCase(f"phantom{seed}", image[box], label[box], case.spacing_mm)


def _organ_box(case: Case, margin: np.ndarray) -> tuple[slice, ...]:
    """The organ's bounding box (measured once per case) grown by ``margin`` voxels."""
    stats = case.organ_stats
    lo = np.maximum(np.asarray(stats.bbox_lo) - margin, 0)
    hi = np.minimum(np.asarray(stats.bbox_hi) + margin, case.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))


def compose_targets(label, context, codes):
    """Training targets of a batch whose items carry the host's map of organs: the map
    (``context``, every trained organ in its code), with each item's tumour voxels (``label`` 2)
    in its own tumour code (``codes[:, 1]``); (B, 1, X, Y, Z) tensors, ``codes`` (B, 2)."""
    tumour = codes[:, 1].to(label.device).view(-1, 1, 1, 1, 1)
    return torch.where(label == 2, tumour, context.to(label.device).long())


def stream_seed(seed: int, start_step: int) -> int:
    """Seed of the synthesis stream of a run started (or resumed) at ``start_step``: a resumed run
    does not replay the crops it has already seen."""
    return int(np.random.SeedSequence([seed, start_step]).generate_state(1)[0])


def make_loader(
    config: TrainConfig, hosts: list[Case], start_step: int, render: bool
) -> DataLoader:
    """The endless DataLoader of training crops (distinct per rank and worker)."""
    organs = host_organs(config, len(hosts))
    stream = TumorStream(
        hosts,
        patch_size=config.patch_size,
        pos_fraction=config.pos_fraction,
        prob=config.synth_prob,
        config=[synth_config_of(config, organ) for organ in organs],
        seed=stream_seed(config.seed, start_step),
        render=render,
    )
    return crop_loader(config, stream)


def crop_loader(config: TrainConfig, stream) -> DataLoader:
    """The DataLoader of a run over an endless stream of crops (``batch_size``, ``num_workers``)."""
    return DataLoader(
        stream,
        batch_size=config.batch_size,
        num_workers=config.num_workers,
        collate_fn=collate,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=config.num_workers > 0,
    )


def augment(
    image: torch.Tensor, label: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference's augmentation of windowed (B, 1, X, Y, Z) crops: flips along each axis
    (p 0.2 each), intensity scale by 1 + U(-0.1, 0.1) and shift by U(-0.1, 0.1) (p 0.15 each),
    per crop; the draws come from ``generator`` (on the CPU)."""
    batch = image.shape[0]
    draws = torch.rand((batch, 7), generator=generator)
    image, label = image.clone(), label.clone()
    for b in range(batch):
        dims = [1 + a for a in range(3) if draws[b, a] < 0.2]  # spatial dims of (1, X, Y, Z)
        if dims:
            image[b] = image[b].flip(dims)
            label[b] = label[b].flip(dims)
        if draws[b, 3] < 0.15:
            image[b] *= 1.0 + (draws[b, 4].item() * 0.2 - 0.1)
        if draws[b, 5] < 0.15:
            image[b] += draws[b, 6].item() * 0.2 - 0.1
    return image, label
