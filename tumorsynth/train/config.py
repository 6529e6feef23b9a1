"""The training configuration: one flat dataclass, read from YAML/JSON, overridable field by field.

Every check that can be made without reading a volume runs when the config is built
(:meth:`TrainConfig.__post_init__`); the checks that need the data (files exist, the patch fits
the volumes) run in :func:`tumorsynth.train.data.load_hosts` before the first step. Either way a
bad config stops the run at start-up with one message naming the field, never an hour in.

Examples
--------
>>> cfg = load_train_config(None, ["network=basic_unet", "patch_size=[64, 64, 64]", "steps=50"])
>>> cfg.network, cfg.patch_size, cfg.steps
('basic_unet', (64, 64, 64), 50)
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tumorsynth.engine.config import load_config
from tumorsynth.engine.config_files import as_number, parse_override, read_fields
from tumorsynth.engine.label_maps import LABEL_MAPS, LABEL_SCHEMES, ORGAN_LABELS
from tumorsynth.engine.serialization import build_dataclass, to_jsonable
from tumorsynth.errors import ConfigError
from tumorsynth.segment.networks import NETWORKS, patch_multiple

__all__ = [
    "NETWORKS",
    "TrainConfig",
    "load_train_config",
    "parse_override",
    "runtime_problems",
    "synth_config_of",
]

Triple = tuple[int, int, int]


@dataclass(frozen=True)
class TrainConfig:
    """Everything a ``tumorsynth train`` run needs; every field has a default.

    Attributes
    ----------
    images, masks : list of str
        Healthy CTs (files, DICOM folders, folders of them or glob patterns) and their organ masks,
        paired by name or in order, as ``tumorsynth generate --images/--masks``.
    dataset : str, optional
        An MSD / nnU-Net ``dataset.json`` listing healthy CTs and label maps (instead of ``images``).
    organ_label : int, optional
        The organ's value in label-map masks (e.g. 5: liver in TotalSegmentator), for one organ.
    organs : list of str
        The host organs (``liver``, ``pancreas``, ``kidney``): each host's label map gives each
        one's mask (by name, in ``label_map``; the phantoms have all three), and each one's
        tumours come from its preset (or ``synth_configs``). Several organs train one segmenter
        on all of them.
    label_map : str, optional
        Whose label values name the organs in the masks (``totalsegmentator``, ``btcv``, ...;
        :data:`tumorsynth.engine.label_maps.LABEL_MAPS`); None (default): 0/1 masks of the one
        organ, or label maps with ``organ_label``. Runs of several organs on CT need it.
    label_scheme : str
        ``shared``: three classes (background, organ, tumour), whichever the organ;
        ``per_organ``: a pair of classes per organ
        (:data:`tumorsynth.engine.label_maps.PER_ORGAN_CODES`: 7 classes).
    n_phantoms : int
        Built-in phantoms (seeds 0, 1, ...) used as hosts when neither ``images`` nor ``dataset`` is
        given.
    phantom_spacing_mm : float
        Their voxel size, mm (``spacing_mm`` wins when it is set).
    spacing_mm : float, optional
        Resample every host and validation CT to this isotropic voxel size at load, mm (linear for
        the CT, nearest for masks; the reference trains at 1 mm); None keeps their own.
    real_images, real_labels : list of str
        Labelled real scans trained on beside the synthetic crops, with their own labels (0
        background, 1 organ, 2 tumour, as LiTS; no tumours synthesised into them): files, folders
        or globs, paired by name or in order. Used when ``mix`` gives ``real`` a weight.
    real_dataset : str, optional
        An MSD / nnU-Net ``dataset.json`` of labelled scans (instead of ``real_images``).
    mix : dict of str to float
        Mixing weights of the crops' sources: ``phantom`` (``n_phantoms`` built-in phantoms),
        ``ct`` (the healthy CT of ``images`` / ``dataset``) and ``real`` (the labelled scans), e.g.
        ``{phantom: 1, ct: 1, real: 2}``; the weights are normalised to fractions, and the crops
        follow them to within one crop per process (each crop's source is logged in
        ``streams/rank<r>.jsonl``). Empty (the default): the healthy CT if given, else phantoms.
    val_images, val_labels : list of str
        Optional labelled validation CTs and label maps (0 background, 1 organ, 2 tumour; LiTS and
        MSD Task03 use this convention).
    n_val_synthetic : int
        Synthetic validation volumes: phantoms with seeds 1000, 1001, ... (not a training host) and
        tumours from fixed seeds; used beside ``val_images`` when both are given (the scores are
        means over all validation cases).
    network : str
        ``"unet"`` (MONAI UNet, 2 residual units, the reference's), ``"basic_unet"`` or
        ``"swin_unetr"``.
    channels : list of int, optional
        Channels per level (UNet: 5 by default, 16 ... 256; BasicUNet: 6, as MONAI's default).
    swin_feature_size : int
        SwinUNETR's feature size (a multiple of 12: 12 tiny, 24 small, 48 base).
    init_from : str, optional
        A checkpoint to start the network from (e.g. ``best.pt`` of ``tumorsynth sar pretrain``
        or of another ``train`` run) instead of random weights: of the same network (``network``,
        ``channels``, ``swin_feature_size``); the tensors whose names and shapes match are
        loaded, the rest is reported and kept at its initialisation. Ignored on ``--resume``.
    patch_size : 3 ints
        Training crop and sliding-window size, voxels (X, Y, Z).
    batch_size : int
        Crops per step and per process.
    window_hu : 2 floats
        HU window mapped to [0, 1] after synthesis (the reference: -21 to 189).
    synth_config : str or dict, optional
        Synthesis config (preset name, file or dict; see :func:`tumorsynth.load_config`) of a run
        of one organ; by default the organ's preset (``liver``).
    synth_configs : dict of str to str or dict
        Synthesis config per organ (runs of several organs; by default each organ's preset).
    synth_prob : float
        Probability of inserting tumours into a crop (the reference trains with 0.9).
    pos_fraction : float
        Fraction of crops centred on an organ voxel (the reference: 1 in 2).
    synth_device : str
        ``"auto"`` (on the GPU when training on CUDA), ``"cpu"`` (in the DataLoader workers) or
        ``"gpu"`` (params drawn in the workers, rendered into the batch on the device).
    steps : int
        Optimiser steps in all.
    lr : float
        Peak learning rate of AdamW (the reference: 4e-4).
    weight_decay : float
        AdamW weight decay (the reference: 1e-5).
    warmup_steps : int
        Linear warm-up steps before the cosine decay to 0 at ``steps``.
    val_every : int
        Validate (and save ``best.pt``) every this many steps, and at the end.
    save_every : int
        Save ``last.pt`` every this many steps, and at the end.
    sw_overlap : float
        Sliding-window overlap at validation (Gaussian blending).
    sw_batch_size : int
        Windows per forward pass at validation.
    augment : bool
        Random flips (p 0.2 per axis) and intensity scale / shift (p 0.15 each, 0.1), as the
        reference.
    num_workers : int
        DataLoader workers per process (0: synthesise in the training process).
    device : str
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    amp : bool
        Mixed precision on CUDA.
    seed : int
        Seed of the weights and of the synthesis stream (distinct per rank and worker).
    threads : int, optional
        Torch CPU threads per process (default: torch's own choice).
    out_dir : str
        Run folder: ``checkpoints/``, ``metrics.csv``, ``tensorboard/``, ``config.json``.
    """

    images: list[str] = field(default_factory=list)
    masks: list[str] = field(default_factory=list)
    dataset: str | None = None
    organ_label: int | None = None
    organs: list[str] = field(default_factory=lambda: ["liver"])
    label_map: str | None = None
    label_scheme: str = "shared"
    n_phantoms: int = 1
    phantom_spacing_mm: float = 1.0
    spacing_mm: float | None = None
    real_images: list[str] = field(default_factory=list)
    real_labels: list[str] = field(default_factory=list)
    real_dataset: str | None = None
    mix: dict[str, float] = field(default_factory=dict)
    val_images: list[str] = field(default_factory=list)
    val_labels: list[str] = field(default_factory=list)
    n_val_synthetic: int = 0
    network: str = "unet"
    channels: list[int] | None = None
    swin_feature_size: int = 48
    init_from: str | None = None
    patch_size: Triple = (96, 96, 96)
    batch_size: int = 2
    window_hu: tuple[float, float] = (-21.0, 189.0)
    synth_config: str | dict[str, Any] | None = None
    synth_configs: dict[str, Any] = field(default_factory=dict)
    synth_prob: float = 0.9
    pos_fraction: float = 0.5
    synth_device: str = "auto"
    steps: int = 4000
    lr: float = 4e-4
    weight_decay: float = 1e-5
    warmup_steps: int = 100
    val_every: int = 500
    save_every: int = 500
    sw_overlap: float = 0.5
    sw_batch_size: int = 4
    augment: bool = True
    num_workers: int = 2
    device: str = "auto"
    amp: bool = True
    seed: int = 0
    threads: int | None = None
    out_dir: str = "runs/train"

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ConfigError("train config: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict that :func:`load_train_config` turns back into an equal config."""
        return to_jsonable(dataclasses.asdict(self))


def _problems(c: TrainConfig) -> list[str]:
    """What is wrong with ``c`` that can be told without reading any volume."""
    out = []
    if c.network not in NETWORKS:
        hint = difflib.get_close_matches(c.network, NETWORKS, n=1)
        maybe = f" (did you mean {hint[0]!r}?)" if hint else ""
        out.append(f"network: unknown {c.network!r}{maybe}; choose from {', '.join(NETWORKS)}")
    if len(c.patch_size) != 3 or min(c.patch_size) < 1:
        out.append(f"patch_size: 3 positive ints, got {list(c.patch_size)}")
    elif c.network in NETWORKS and any(
        n % patch_multiple(c.network, c.channels) for n in c.patch_size
    ):
        out.append(
            f"patch_size: {c.network} needs multiples of {patch_multiple(c.network, c.channels)}, "
            f"got {list(c.patch_size)}"
        )
    elif c.network == "swin_unetr" and min(c.patch_size) < 64:
        # its deepest features are patch / 32 voxels: 1 voxel cannot be instance-normalised
        out.append(f"patch_size: swin_unetr needs at least 64 per side, got {list(c.patch_size)}")
    if c.init_from is not None and not c.init_from.strip():
        out.append("init_from: a checkpoint path or null, got an empty string")
    if c.masks and not c.images:
        out.append("masks: given without images")
    if c.images and c.dataset:
        out.append("give images/masks or dataset, not both")
    if not c.mix and not c.images and not c.dataset and c.n_phantoms < 1:
        out.append("no healthy cases: set images and masks, dataset, or n_phantoms >= 1")
    out += _mix_problems(c)
    if len(c.val_images) != len(c.val_labels):
        out.append(f"{len(c.val_images)} val_images but {len(c.val_labels)} val_labels")
    if c.window_hu[0] >= c.window_hu[1]:
        out.append(f"window_hu: low must be below high, got {list(c.window_hu)}")
    if c.synth_device not in ("auto", "cpu", "gpu"):
        out.append(f"synth_device: 'auto', 'cpu' or 'gpu', got {c.synth_device!r}")
    if c.swin_feature_size < 12 or c.swin_feature_size % 12:
        out.append(f"swin_feature_size: a multiple of 12, got {c.swin_feature_size}")
    if c.channels is not None and (len(c.channels) < 2 or min(c.channels) < 1):
        out.append(f"channels: at least 2 positive ints, got {c.channels}")
    if c.network == "basic_unet" and c.channels is not None and len(c.channels) != 6:
        out.append(f"channels: basic_unet takes 6 (5 levels and the last layer), got {c.channels}")
    for name in ("synth_prob", "pos_fraction"):
        if not 0.0 <= getattr(c, name) <= 1.0:
            out.append(f"{name}: in [0, 1], got {getattr(c, name)}")
    if not 0.0 <= c.sw_overlap < 1.0:
        out.append(f"sw_overlap: in [0, 1), got {c.sw_overlap}")
    for name in ("steps", "batch_size", "val_every", "save_every", "sw_batch_size"):
        if getattr(c, name) < 1:
            out.append(f"{name}: at least 1, got {getattr(c, name)}")
    for name in ("warmup_steps", "num_workers", "n_val_synthetic"):
        if getattr(c, name) < 0:
            out.append(f"{name}: at least 0, got {getattr(c, name)}")
    if c.lr <= 0 or c.weight_decay < 0 or c.phantom_spacing_mm <= 0:
        out.append("lr and phantom_spacing_mm must be positive, weight_decay non-negative")
    if c.spacing_mm is not None and not c.spacing_mm > 0:
        out.append(f"spacing_mm: positive (mm) or null, got {c.spacing_mm}")
    out += runtime_problems(c.device, c.threads)
    out += _organ_problems(c)
    for organ in c.organs if all(o in ORGAN_LABELS for o in c.organs) else []:
        try:
            load_config(synth_config_of(c, organ))
        except ConfigError as err:
            out.append(f"synth_config: {err}")
    return out


def runtime_problems(device: str, threads: int | None) -> list[str]:
    """What is wrong with the ``device`` and ``threads`` fields every Trainer config has."""
    out = []
    if threads is not None and threads < 1:
        out.append(f"threads: at least 1, got {threads}")
    if not (device in ("auto", "cpu", "cuda") or device.startswith("cuda:")):
        out.append(f"device: 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    return out


def _organ_problems(c: TrainConfig) -> list[str]:
    out = []
    unknown = [o for o in c.organs if o not in ORGAN_LABELS]
    if not c.organs or unknown or len(set(c.organs)) != len(c.organs):
        out.append(f"organs: distinct names of {', '.join(ORGAN_LABELS)}, got {c.organs}")
    if c.label_map is not None and c.label_map not in LABEL_MAPS:
        out.append(f"label_map: one of {', '.join(LABEL_MAPS)}, got {c.label_map!r}")
    if c.label_scheme not in LABEL_SCHEMES:
        out.append(f"label_scheme: one of {', '.join(LABEL_SCHEMES)}, got {c.label_scheme!r}")
    if len(c.organs) > 1 and c.synth_config is not None:
        out.append("synth_config is for one organ; give synth_configs (organ -> config)")
    if len(c.organs) > 1 and c.organ_label is not None:
        out.append("organ_label is for one organ; name the organs (organs, label_map)")
    if len(c.organs) > 1 and (c.images or c.dataset) and c.label_map is None:
        out.append("several organs on CT need label_map (whose values name them in the masks)")
    if c.organ_label is not None and c.label_map is not None:
        out.append("give organ_label or label_map, not both")
    extra = sorted(set(c.synth_configs) - set(c.organs))
    if extra:
        out.append(f"synth_configs: {extra} are not among the organs {c.organs}")
    return out


def synth_config_of(config: TrainConfig, organ: str) -> str | dict[str, Any]:
    """The synthesis config of ``organ`` in a run: ``synth_configs``' entry, ``synth_config`` (one
    organ), or the organ's preset."""
    if organ in config.synth_configs:
        return config.synth_configs[organ]
    if config.synth_config is not None:
        return config.synth_config
    return "kidney" if organ.startswith("kidney") else organ


def _mix_problems(c: TrainConfig) -> list[str]:
    """What is wrong with the sources of a mixed run (``mix``, ``real_*``)."""
    from tumorsynth.stream.mixed import SOURCES

    out = []
    if c.real_labels and not c.real_images:
        out.append("real_labels: given without real_images")
    if c.real_images and c.real_dataset:
        out.append("give real_images/real_labels or real_dataset, not both")
    unknown = sorted(set(c.mix) - set(SOURCES))
    if unknown:
        out.append(f"mix: unknown source(s) {unknown}; the sources are {', '.join(SOURCES)}")
        return out
    weights = {k: float(v) if isinstance(v, (int, float)) else math.nan for k, v in c.mix.items()}
    if c.mix and not (all(w >= 0 for w in weights.values()) and sum(weights.values()) > 0):
        out.append(f"mix: weights must be numbers >= 0 with a positive sum, got {dict(c.mix)}")
        return out
    has = {
        "phantom": c.n_phantoms >= 1,
        "ct": bool(c.images or c.dataset),
        "real": bool(c.real_images or c.real_dataset),
    }
    given = {"phantom": "n_phantoms >= 1", "ct": "images or dataset",
             "real": "real_images or real_dataset"}  # fmt: skip
    for name in SOURCES:
        weight = weights.get(name, 0.0)
        if weight > 0 and not has[name]:
            out.append(f"mix: {name!r} has weight {weight:g} but no {given[name]} is set")
        elif c.mix and weight == 0 and has[name] and name != "phantom":
            out.append(f"{given[name].split(' or ')[0]}: given, but mix gives {name!r} no weight")
    if not c.mix and has["real"]:
        out.append("real_images: labelled scans need a mix, e.g. mix={ct: 1, real: 1}")
    if c.mix and (len(c.organs) > 1 or c.label_scheme != "shared"):
        out.append("mix: mixed training is for one organ with the shared labels (0, 1, 2)")
    return out


def load_train_config(
    source: str | Path | Mapping[str, Any] | TrainConfig | None = None,
    overrides: Sequence[str] | Mapping[str, Any] = (),
) -> TrainConfig:
    """Build a :class:`TrainConfig` from a YAML/JSON file, a dict or defaults, then overrides.

    Parameters
    ----------
    source : path, dict, TrainConfig or None
        The config file (``.yaml``, ``.yml``, ``.json``); None for the defaults.
    overrides : sequence of ``"key=value"`` or dict
        Applied on top, field by field (values read as YAML).

    Raises
    ------
    ConfigError
        Unreadable file, unknown field (with the valid ones), value of the wrong type, or an
        inconsistent config (see :class:`TrainConfig`).
    """
    data, where = read_fields(source, overrides, TrainConfig, "train config")
    for key in (
        "lr",
        "weight_decay",
        "phantom_spacing_mm",
        "spacing_mm",
        "synth_prob",
        "pos_fraction",
    ):
        if key in data:
            data[key] = as_number(data[key])
    keys = ("images", "masks", "val_images", "val_labels", "organs", "real_images", "real_labels")
    for key in keys:
        if isinstance(data.get(key), str):
            data[key] = [data[key]]
    return build_dataclass(TrainConfig, data, where)


def dumps(config: TrainConfig) -> str:
    """The config as indented JSON (what a run writes to ``config.json``)."""
    return json.dumps(config.to_dict(), indent=2)
