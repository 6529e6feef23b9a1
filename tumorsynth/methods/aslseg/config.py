"""ASLseg's settings: one flat frozen dataclass, read from YAML/JSON, overridable field by field.

Every check that needs no file runs when the config is built (:meth:`ASLsegConfig.__post_init__`),
so a bad config stops ``tumorsynth aslseg run`` with one message naming the field before anything
is read or written. The files (CTs, masks, the SAM checkpoint) are checked when the run starts,
still before anything is written.

Examples
--------
>>> cfg = load_aslseg_config(None, ["ssl_method=cps", "rounds=3", "n_unlabelled_phantoms=2"])
>>> cfg.ssl_method, cfg.rounds
('cps', 3)
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tumorsynth.engine.config import load_config
from tumorsynth.engine.config_files import as_number, read_fields
from tumorsynth.engine.serialization import build_dataclass, to_jsonable
from tumorsynth.errors import ConfigError
from tumorsynth.train.config import runtime_problems
from tumorsynth.train.trainer import RunSettings

__all__ = [
    "CORRUPTIONS",
    "SAM_MODELS",
    "SAM_PREPROCESSING",
    "SSL_METHODS",
    "ASLsegConfig",
    "load_aslseg_config",
    "stage_config",
]

SSL_METHODS = ("mean_teacher", "ua_mt", "cps")
"""Stage I's semi-supervised methods: Mean Teacher, uncertainty-aware MT, cross pseudo supervision."""
SAM_MODELS = ("tiny", "vit_b", "vit_l", "vit_h")
"""SAM architectures: ``tiny`` (0.09 M parameters, random weights: tests and CPU demos) and the
official image encoders."""
SAM_PREPROCESSING = ("sam", "medsam")
"""How slices are fed to SAM: the official checkpoints' (0-255, mean / std) or MedSAM's ([0, 1])."""
CORRUPTIONS = ("erode", "dilate", "warp", "drop", "blob", "noise", "empty")
"""How :mod:`~tumorsynth.methods.aslseg.corrupt` imitates a segmenter's errors."""

_LISTS = (
    "host_images", "host_masks", "unlabelled_images", "unlabelled_masks", "unlabelled_labels",
    "test_images", "test_labels",
)  # fmt: skip


@dataclass(frozen=True)
class ASLsegConfig:
    """Everything an ASLseg run needs; every field has a default (the tiny CPU settings).

    Attributes
    ----------
    host_images, host_masks : list of str
        Healthy CTs and their liver masks (files, DICOM folders, folders, globs) that host the
        synthetic tumours of the labelled set; none: ``n_host_phantoms`` built-in phantoms.
    n_host_phantoms : int
        Phantoms (seeds 0, 1, ...) used as hosts when ``host_images`` is empty.
    synth_config : str or dict
        Synthesis config of the labelled set's tumours (preset, file or dict).
    n_labelled_volumes : int
        Liver-box crops drawn from the synthetic stream for the labelled set.
    n_labelled_slices : int
        Labelled axial slices taken from them.
    tumour_fraction : float
        Fraction of those slices that hold tumour (the others hold liver only).
    unlabelled_images, unlabelled_masks : list of str
        The real CTs of the unlabelled set and their liver masks (one mask per CT).
    unlabelled_labels : list of str
        Optional label maps (2 = tumour) of those CTs: never trained on, only used to report how
        precise the accepted pseudo-labels were.
    n_unlabelled_phantoms : int
        Phantoms (seeds 100, 101, ...) with tumours (``phantom_synth_config``) added to the
        unlabelled set; their tumour masks are hidden labels.
    slice_stride : int
        Take every this many liver slices of an unlabelled volume.
    test_images, test_labels : list of str
        Held-out CTs and label maps (0 background, 1 liver, 2 tumour: LiTS, MSD Task03) of the
        ablation table.
    n_test_phantoms : int
        Held-out phantoms (seeds 200, 201, ...) with tumours, used with or instead of those.
    phantom_synth_config : str or dict
        Synthesis config of the unlabelled and held-out phantoms' tumours (another than
        ``synth_config`` makes the gap the loop has to cross).
    phantom_spacing_mm : float
        Voxel size of every phantom, mm.
    organ_label : int, optional
        The liver's value in label-map masks (5 in TotalSegmentator); None for 0/1 masks.
    slice_size : int
        Side of the square slices, pixels: the liver box (square in mm) resized to it.
    window_hu : 2 floats
        HU window mapped to [0, 1].
    margin_mm : float
        Margin around the liver's in-plane bounding box, mm.
    min_liver_px : int
        Training slices hold at least this many liver pixels (at ``slice_size``).
    ssl_method : str
        Stage I: ``mean_teacher``, ``ua_mt`` or ``cps``.
    ssl_features : list of 6 int
        MONAI ``BasicUNet`` features of the segmenter.
    ssl_steps, ssl_batch_size, ssl_unlabelled_batch_size, ssl_lr
        Stage I optimiser steps, labelled and unlabelled slices per step, AdamW learning rate.
    ema_decay : float
        Mean Teacher's EMA decay (alpha).
    consistency : float
        Weight of the consistency term at the end of its ramp (lambda_max).
    consistency_ramp : float
        Fraction of ``ssl_steps`` over which the weight ramps up, ``exp(-5 (1 - t)^2)``.
    noise_std, noise_clip : float
        Gaussian input noise of the consistency term (windowed units), clipped at +- clip.
    sam_model : str
        ``tiny``, ``vit_b``, ``vit_l`` or ``vit_h``.
    sam_checkpoint : str, optional
        Local weights (official ``sam_vit_b_01ec64.pth`` or MedSAM's ``medsam_vit_b.pth``);
        None only for ``tiny`` (random weights). Nothing is downloaded.
    sam_preprocess : str
        ``sam`` (official checkpoints) or ``medsam``.
    sam_steps, sam_batch_size, sam_lr
        Stage II: mask-decoder steps, box prompts per step, AdamW learning rate.
    box_jitter : float
        Each box side moves by up to this fraction of the box size while fine-tuning.
    adapt_features, adapt_steps, adapt_batch_size, adapt_lr
        Stage III: the adaptation network (``BasicUNet``, input: slice, SAM mask, pseudo-label).
    corruptions : list of str
        The ways synthetic pseudo-labels are corrupted (:data:`CORRUPTIONS`).
    min_area_px : int
        Pseudo-label components smaller than this are removed, pixels.
    agreement_min, confidence_min : float
        A slice is reliable when the Dice of stage I's and the refined mask and the refined
        mask's mean confidence over the liver reach these.
    rounds : int
        Rounds of the loop (R).
    warm_start : bool
        Each round's networks start from the previous round's (stage I's final and no-selection
        segmenters from the last and the first round's); round 0 starts from scratch (SAM from
        its checkpoint).
    min_added : int
        Stop early when a round accepts fewer slices.
    ablation_no_selection : bool
        Also train a segmenter on every refined pseudo-label of round 0 (the ablation row
        without selection).
    weight_decay, warmup_steps, save_every
        AdamW weight decay, warm-up steps and checkpoint interval of every stage.
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    amp : bool
        bfloat16 autocast on CUDA.
    seed : int
    threads : int, optional
        Torch CPU threads.
    out_dir : str
        Run folder.
    """

    host_images: list[str] = field(default_factory=list)
    host_masks: list[str] = field(default_factory=list)
    n_host_phantoms: int = 2
    synth_config: str | dict[str, Any] = "liver"
    n_labelled_volumes: int = 4
    n_labelled_slices: int = 64
    tumour_fraction: float = 0.5
    unlabelled_images: list[str] = field(default_factory=list)
    unlabelled_masks: list[str] = field(default_factory=list)
    unlabelled_labels: list[str] = field(default_factory=list)
    n_unlabelled_phantoms: int = 0
    slice_stride: int = 1
    test_images: list[str] = field(default_factory=list)
    test_labels: list[str] = field(default_factory=list)
    n_test_phantoms: int = 0
    phantom_synth_config: str | dict[str, Any] = "syntumor"
    phantom_spacing_mm: float = 2.5
    organ_label: int | None = None
    slice_size: int = 64
    window_hu: tuple[float, float] = (-21.0, 189.0)
    margin_mm: float = 10.0
    min_liver_px: int = 16
    ssl_method: str = "mean_teacher"
    ssl_features: list[int] = field(default_factory=lambda: [8, 8, 16, 32, 64, 8])
    ssl_steps: int = 150
    ssl_batch_size: int = 4
    ssl_unlabelled_batch_size: int = 4
    ssl_lr: float = 1e-3
    ema_decay: float = 0.99
    consistency: float = 0.1
    consistency_ramp: float = 0.4
    noise_std: float = 0.1
    noise_clip: float = 0.2
    sam_model: str = "tiny"
    sam_checkpoint: str | None = None
    sam_preprocess: str = "sam"
    sam_steps: int = 100
    sam_batch_size: int = 4
    sam_lr: float = 1e-3
    box_jitter: float = 0.1
    adapt_features: list[int] = field(default_factory=lambda: [8, 8, 16, 32, 64, 8])
    adapt_steps: int = 150
    adapt_batch_size: int = 4
    adapt_lr: float = 1e-3
    corruptions: list[str] = field(default_factory=lambda: list(CORRUPTIONS))
    min_area_px: int = 4
    agreement_min: float = 0.8
    confidence_min: float = 0.9
    rounds: int = 2
    warm_start: bool = True
    min_added: int = 1
    ablation_no_selection: bool = True
    weight_decay: float = 1e-4
    warmup_steps: int = 10
    save_every: int = 50
    device: str = "auto"
    amp: bool = True
    seed: int = 0
    threads: int | None = None
    out_dir: str = "runs/aslseg"

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ConfigError("aslseg config: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict that :func:`load_aslseg_config` turns back into an equal config."""
        return to_jsonable(dataclasses.asdict(self))


def _choice(out: list[str], name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        hint = difflib.get_close_matches(value, choices, n=1)
        maybe = f" (did you mean {hint[0]!r}?)" if hint else ""
        out.append(f"{name}: unknown {value!r}{maybe}; choose from {', '.join(choices)}")


def _data_problems(c: ASLsegConfig) -> list[str]:
    out = []
    if not c.unlabelled_images and c.n_unlabelled_phantoms < 1:
        out.append(
            "no unlabelled scans: set unlabelled_images (real CTs) with unlabelled_masks, or "
            "n_unlabelled_phantoms >= 1"
        )
    if c.unlabelled_images and not c.unlabelled_masks:
        out.append("unlabelled_masks: every unlabelled CT needs its liver mask")
    if c.unlabelled_labels and not c.unlabelled_images:
        out.append("unlabelled_labels: given without unlabelled_images")
    if c.host_masks and not c.host_images:
        out.append("host_masks: given without host_images")
    if c.host_images and not c.host_masks:
        out.append("host_images: every host CT needs its liver mask (host_masks)")
    if not c.host_images and c.n_host_phantoms < 1:
        out.append("no hosts for the labelled set: set host_images or n_host_phantoms >= 1")
    if len(c.test_images) != len(c.test_labels):
        out.append(f"{len(c.test_images)} test_images but {len(c.test_labels)} test_labels")
    for name in ("synth_config", "phantom_synth_config"):
        try:
            load_config(getattr(c, name))
        except ConfigError as err:
            out.append(f"{name}: {err}")
    return out


def _problems(c: ASLsegConfig) -> list[str]:
    """What is wrong with ``c`` that can be told without reading any file."""
    out = _data_problems(c)
    _choice(out, "ssl_method", c.ssl_method, SSL_METHODS)
    _choice(out, "sam_model", c.sam_model, SAM_MODELS)
    _choice(out, "sam_preprocess", c.sam_preprocess, SAM_PREPROCESSING)
    for bad in sorted(set(c.corruptions) - set(CORRUPTIONS)):
        _choice(out, "corruptions", bad, CORRUPTIONS)
    if not c.corruptions:
        out.append("corruptions: at least one")
    if c.sam_model != "tiny" and not c.sam_checkpoint:
        out.append(
            f"sam_checkpoint: {c.sam_model} needs its weights, a local file (the official "
            "sam_vit_b_01ec64.pth or MedSAM's medsam_vit_b.pth); nothing is downloaded"
        )
    for name in ("ssl_features", "adapt_features"):
        values = getattr(c, name)
        if len(values) != 6 or min(values) < 1:
            out.append(f"{name}: 6 positive ints (BasicUNet), got {values}")
    if c.slice_size < 32 or c.slice_size % 16:
        out.append(f"slice_size: a multiple of 16 (BasicUNet), at least 32, got {c.slice_size}")
    if c.window_hu[0] >= c.window_hu[1]:
        out.append(f"window_hu: low must be below high, got {list(c.window_hu)}")
    for name in ("tumour_fraction", "agreement_min", "confidence_min", "box_jitter",
                 "consistency_ramp", "noise_clip", "noise_std", "consistency"):  # fmt: skip
        if not 0.0 <= getattr(c, name) <= 1.0:
            out.append(f"{name}: in [0, 1], got {getattr(c, name)}")
    if not 0.0 < c.ema_decay < 1.0:
        out.append(f"ema_decay: in (0, 1), got {c.ema_decay}")
    for name in ("n_labelled_volumes", "n_labelled_slices", "slice_stride", "ssl_steps",
                 "ssl_batch_size", "ssl_unlabelled_batch_size", "sam_steps", "sam_batch_size",
                 "adapt_steps", "adapt_batch_size", "min_area_px", "min_liver_px", "rounds",
                 "save_every"):  # fmt: skip
        if getattr(c, name) < 1:
            out.append(f"{name}: at least 1, got {getattr(c, name)}")
    for name in ("n_host_phantoms", "n_unlabelled_phantoms", "n_test_phantoms", "min_added",
                 "warmup_steps"):  # fmt: skip
        if getattr(c, name) < 0:
            out.append(f"{name}: at least 0, got {getattr(c, name)}")
    for name in ("ssl_lr", "sam_lr", "adapt_lr", "phantom_spacing_mm"):
        if not getattr(c, name) > 0:
            out.append(f"{name}: positive, got {getattr(c, name)}")
    if c.weight_decay < 0 or c.margin_mm < 0:
        out.append("weight_decay and margin_mm: at least 0")
    out += runtime_problems(c.device, c.threads)
    return out


def load_aslseg_config(
    source: str | Path | Mapping[str, Any] | ASLsegConfig | None = None,
    overrides: Sequence[str] | Mapping[str, Any] = (),
) -> ASLsegConfig:
    """Build an :class:`ASLsegConfig` from a YAML/JSON file, a dict or defaults, then overrides.

    Parameters
    ----------
    source : path, dict, ASLsegConfig or None
        The config file (``.yaml``, ``.yml``, ``.json``); None for the defaults.
    overrides : sequence of ``"key=value"`` or dict
        Applied on top, field by field (values read as YAML).

    Raises
    ------
    ConfigError
        Unreadable file, unknown field (with the closest valid one), value of the wrong type, or
        an inconsistent config; the message names the field.
    """
    data, where = read_fields(source, overrides, ASLsegConfig, "aslseg config")
    for key, value in data.items():
        if key.endswith(("_lr", "_decay", "_mm", "_min", "_std")):
            data[key] = as_number(value)
    for key in _LISTS:
        if isinstance(data.get(key), str):
            data[key] = [data[key]]
    return build_dataclass(ASLsegConfig, data, where)


def stage_config(
    config: ASLsegConfig, stage: str, out_dir: str | Path, round_index: int
) -> RunSettings:
    """The Trainer settings of ``stage`` (``ssl``, ``sam`` or ``adapt``) in round ``round_index``,
    run in ``out_dir``; each stage and round has its own seed."""
    steps, lr = {
        "ssl": (config.ssl_steps, config.ssl_lr),
        "sam": (config.sam_steps, config.sam_lr),
        "adapt": (config.adapt_steps, config.adapt_lr),
    }[stage]
    seed = config.seed * 1000 + 10 * round_index + ("ssl", "sam", "adapt").index(stage)
    return RunSettings(
        out_dir=str(out_dir), steps=steps, lr=lr, weight_decay=config.weight_decay,
        warmup_steps=min(config.warmup_steps, steps), seed=seed, device=config.device,
        threads=config.threads, amp=config.amp, val_every=steps, save_every=config.save_every,
    )  # fmt: skip
