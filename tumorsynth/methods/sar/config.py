"""SAR's settings: one file with three sections, read from YAML/JSON, overridable field by field.

- ``pretrain`` (:class:`PretrainConfig`): the domains of unlabelled CT, the scales, the
  corruptions, the network and heads, the loss weights and the run (``tumorsynth sar pretrain``);
- ``finetune``: fields of :class:`~tumorsynth.train.TrainConfig` for the segmenters that
  ``tumorsynth sar compare`` trains (the network and HU window are ``pretrain``'s);
- ``compare`` (:class:`CompareConfig`): the initialisations, budgets and seeds compared.

Every check that needs no data runs when the config is built, with one message naming the field.

Examples
--------
>>> cfg = load_sar_config(None, ["pretrain.steps=20", "compare.budgets=[0.5, 1.0]"])
>>> cfg.pretrain.steps, cfg.compare.budgets, [d.name for d in cfg.pretrain.domains]
(20, [0.5, 1.0], ['phantom', 'synthetic'])
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tumorsynth.engine.config import load_config
from tumorsynth.engine.config_files import as_number, check_fields, overrides_dict, read_source
from tumorsynth.engine.serialization import build_dataclass, to_jsonable
from tumorsynth.errors import ConfigError
from tumorsynth.segment.networks import NETWORKS, patch_multiple
from tumorsynth.train.config import TrainConfig, load_train_config, runtime_problems

__all__ = [
    "INITS",
    "CompareConfig",
    "DomainConfig",
    "PretrainConfig",
    "SarConfig",
    "finetune_config",
    "load_sar_config",
]

Triple = tuple[int, int, int]
INITS = ("scratch", "restoration", "sar")
"""Initialisations ``compare`` can fine-tune from: random weights, restoration-only pre-training
(Models Genesis) and SAR."""
NETWORK_FIELDS = ("network", "channels", "swin_feature_size", "window_hu")
"""``finetune`` fields that ``pretrain`` sets (the fine-tuned network is the pre-trained one)."""
RUN_FIELDS = ("init_from", "out_dir")
"""``finetune`` fields that ``compare`` sets for each run."""


@dataclass(frozen=True)
class DomainConfig:
    """One source of unlabelled CT: one class of the domain head.

    Attributes
    ----------
    name : str
        The domain's name (in logs and checkpoints).
    images : list of str
        CTs (files, DICOM folders, folders of them or glob patterns); no label is read.
    masks : list of str
        Optional organ masks of ``images`` (paired as ``tumorsynth train`` pairs them): crops are
        then centred on the organ with probability ``pos_fraction``; needed for ``tumours``.
    organ_label : int, optional
        The organ's value in label-map masks (e.g. 5: liver in TotalSegmentator).
    n_phantoms : int
        Built-in phantoms (seeds ``phantom_seed``, ``phantom_seed + 1``, ...).
    phantom_seed : int
        First phantom seed.
    tumours : bool
        Crops come from the synthetic stream (:class:`~tumorsynth.stream.TumorStream`): tumours
        inserted into these hosts (which need organ masks: phantoms or ``masks``).
    """

    name: str
    images: list[str] = field(default_factory=list)
    masks: list[str] = field(default_factory=list)
    organ_label: int | None = None
    n_phantoms: int = 0
    phantom_seed: int = 0
    tumours: bool = False

    def problems(self, where: str) -> list[str]:
        out = []
        if not self.name.strip():
            out.append(f"{where}.name: empty")
        if not self.images and self.n_phantoms < 1:
            out.append(f"{where}: no CT (give images or n_phantoms >= 1)")
        if self.masks and not self.images:
            out.append(f"{where}.masks: given without images")
        if self.tumours and self.images and not self.masks:
            out.append(f"{where}.tumours: inserting tumours needs organ masks of its images")
        if self.n_phantoms < 0 or self.phantom_seed < 0:
            out.append(f"{where}: n_phantoms and phantom_seed must be at least 0")
        return out


def _default_domains() -> list[DomainConfig]:
    return [
        DomainConfig("phantom", n_phantoms=1, phantom_seed=0),
        DomainConfig("synthetic", n_phantoms=1, phantom_seed=1, tumours=True),
    ]


@dataclass(frozen=True)
class PretrainConfig:
    """Everything a ``tumorsynth sar pretrain`` run needs; every field has a default.

    Attributes
    ----------
    domains : list of DomainConfig
        The sources of unlabelled CT, one domain class each (at least 2 for the domain head).
    phantom_spacing_mm : float
        Voxel size of the phantoms, mm (``spacing_mm`` wins when set).
    spacing_mm : float, optional
        Resample every CT to this isotropic voxel size at load, mm; None keeps their own.
    crop_sizes_mm : list of 3 floats
        The scale classes: physical crop sizes (X, Y, Z), mm, smallest first; each crop is resized
        to ``input_size``. Default (0.5, 1, 1.5, 2) x (64, 64, 32) mm.
    input_size : 3 ints
        The network's input, voxels (X, Y, Z) (Models Genesis: 64 x 64 x 32).
    pos_fraction : float
        Probability that a crop is centred on an organ voxel (where the domain has masks); the
        others are centred on a random voxel of the body (above ``body_hu``).
    body_hu : float
        HU above which a voxel counts as body when centring crops.
    window_hu : 2 floats
        HU window mapped to [0, 1] (the fine-tuned segmenter's; Models Genesis: -1000, 1000).
    flip_prob, shuffle_prob, nonlinear_prob, paint_prob, inpaint_fraction : float
        The corruptions' probabilities (Models Genesis: 0.4, 0.5, 0.9, 0.9, 0.2).
    shuffle_blocks : int
        Blocks of the local shuffle per crop (Models Genesis: 10 000 in 64 x 64 x 32).
    network, channels, swin_feature_size
        The backbone, as :class:`~tumorsynth.train.TrainConfig`'s (the segmenter it starts).
    restore_weight, scale_weight, domain_weight : float
        Weights of the restoration MSE, the scale cross-entropy and the domain cross-entropy; a
        head whose weight is 0 is not built (``scale_weight = domain_weight = 0``: Models Genesis).
    reversal_strength : float
        Gradient reversal strength lambda (its maximum when ``reversal_ramp``).
    reversal_ramp : bool
        Raise lambda from 0 with DANN's schedule 2 / (1 + exp(-10 p)) - 1 over the run.
    heads_input : str
        What the scale and domain heads see: ``"clean"`` (the bottleneck features of the clean
        crop, run beside the corrupted one in the same forward pass) or ``"corrupted"`` (those of
        the restoration's input: one pass, but in our CPU runs the scale head then stayed near
        chance for 200 steps where it reached 0.67 with ``clean``; see docs/sar.md).
    domain_on_tumour_crops : bool
        Let crops holding synthetic tumour voxels into the domain loss (default: left out, so
        that hiding the synthetic domain does not mean hiding tumours).
    synth_config : str or dict
        Synthesis config of ``tumours`` domains.
    n_val_crops : int
        Held-out crops (fixed seeds) scored at each validation.
    batch_size, steps, lr, weight_decay, warmup_steps, val_every, save_every, num_workers,
    device, amp, seed, threads, out_dir
        The run, as :class:`~tumorsynth.train.TrainConfig`'s.
    """

    domains: list[DomainConfig] = field(default_factory=_default_domains)
    phantom_spacing_mm: float = 1.0
    spacing_mm: float | None = None
    crop_sizes_mm: list[tuple[float, float, float]] = field(
        default_factory=lambda: [(32.0, 32.0, 16.0), (64.0, 64.0, 32.0), (96.0, 96.0, 48.0),
                                 (128.0, 128.0, 64.0)]
    )  # fmt: skip
    input_size: Triple = (64, 64, 32)
    pos_fraction: float = 0.5
    body_hu: float = -500.0
    window_hu: tuple[float, float] = (-21.0, 189.0)
    flip_prob: float = 0.4
    shuffle_prob: float = 0.5
    shuffle_blocks: int = 10_000
    nonlinear_prob: float = 0.9
    paint_prob: float = 0.9
    inpaint_fraction: float = 0.2
    network: str = "basic_unet"
    channels: list[int] | None = None
    swin_feature_size: int = 48
    restore_weight: float = 1.0
    scale_weight: float = 0.1
    domain_weight: float = 1.0
    reversal_strength: float = 0.1
    reversal_ramp: bool = True
    heads_input: str = "clean"
    domain_on_tumour_crops: bool = False
    synth_config: str | dict[str, Any] = "liver"
    n_val_crops: int = 64
    batch_size: int = 8
    steps: int = 20_000
    lr: float = 1e-3
    weight_decay: float = 1e-5
    warmup_steps: int = 500
    val_every: int = 1000
    save_every: int = 1000
    num_workers: int = 4
    device: str = "auto"
    amp: bool = True
    seed: int = 0
    threads: int | None = None
    out_dir: str = "runs/sar"

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ConfigError("sar pretrain config: " + "; ".join(problems))

    @property
    def n_scales(self) -> int:
        return len(self.crop_sizes_mm)

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(dataclasses.asdict(self))


def _network_problems(c: PretrainConfig) -> list[str]:
    if c.network not in NETWORKS:
        hint = difflib.get_close_matches(c.network, NETWORKS, n=1)
        maybe = f" (did you mean {hint[0]!r}?)" if hint else ""
        return [f"network: unknown {c.network!r}{maybe}; choose from {', '.join(NETWORKS)}"]
    out = []
    if c.channels is not None and (len(c.channels) < 2 or min(c.channels) < 1):
        out.append(f"channels: at least 2 positive ints, got {c.channels}")
    elif c.network == "basic_unet" and c.channels is not None and len(c.channels) != 6:
        out.append(f"channels: basic_unet takes 6 (5 levels and the last layer), got {c.channels}")
    multiple = patch_multiple(c.network, c.channels)
    if len(c.input_size) != 3 or min(c.input_size) < 1:
        out.append(f"input_size: 3 positive ints, got {list(c.input_size)}")
    elif any(n % multiple for n in c.input_size):
        out.append(
            f"input_size: {c.network} needs multiples of {multiple}, got {list(c.input_size)}"
        )
    elif min(c.input_size) < 2 * multiple:  # a 1-voxel bottleneck cannot be instance-normalised
        out.append(f"input_size: {c.network} needs at least {2 * multiple} per side (its "
                   f"bottleneck is input / {multiple}), got {list(c.input_size)}")  # fmt: skip
    if c.swin_feature_size < 12 or c.swin_feature_size % 12:
        out.append(f"swin_feature_size: a multiple of 12, got {c.swin_feature_size}")
    return out


def _problems(c: PretrainConfig) -> list[str]:
    """What is wrong with ``c`` that can be told without reading any volume."""
    out = _network_problems(c)
    for i, d in enumerate(c.domains):
        out += d.problems(f"domains[{i}] ({d.name})")
    names = [d.name for d in c.domains]
    if not c.domains:
        out.append("domains: at least one source of CT")
    elif len(set(names)) != len(names):
        out.append(f"domains: names must differ, got {names}")
    if c.domain_weight > 0 and len(c.domains) < 2:
        out.append("domain_weight: the domain head needs at least 2 domains (or set it to 0)")
    sizes = [tuple(s) for s in c.crop_sizes_mm]
    if len(sizes) < 2 and c.scale_weight > 0:
        out.append("crop_sizes_mm: the scale head needs at least 2 scales (or scale_weight 0)")
    if any(min(s) <= 0 for s in sizes) or len(set(sizes)) != len(sizes):
        out.append(
            f"crop_sizes_mm: distinct sizes of 3 positive mm, got {[list(s) for s in sizes]}"
        )
    for name in ("pos_fraction", "flip_prob", "shuffle_prob", "nonlinear_prob", "paint_prob",
                 "inpaint_fraction"):  # fmt: skip
        if not 0.0 <= getattr(c, name) <= 1.0:
            out.append(f"{name}: in [0, 1], got {getattr(c, name)}")
    for name in ("restore_weight", "scale_weight", "domain_weight", "reversal_strength"):
        if getattr(c, name) < 0:
            out.append(f"{name}: at least 0, got {getattr(c, name)}")
    if c.heads_input not in ("clean", "corrupted"):
        out.append(f"heads_input: 'clean' or 'corrupted', got {c.heads_input!r}")
    if c.restore_weight + c.scale_weight + c.domain_weight <= 0:
        out.append("restore_weight, scale_weight, domain_weight: at least one must be positive")
    if c.window_hu[0] >= c.window_hu[1]:
        out.append(f"window_hu: low must be below high, got {list(c.window_hu)}")
    for name in ("steps", "batch_size", "val_every", "save_every", "shuffle_blocks", "n_val_crops"):
        if getattr(c, name) < 1:
            out.append(f"{name}: at least 1, got {getattr(c, name)}")
    for name in ("warmup_steps", "num_workers"):
        if getattr(c, name) < 0:
            out.append(f"{name}: at least 0, got {getattr(c, name)}")
    if c.lr <= 0 or c.weight_decay < 0 or c.phantom_spacing_mm <= 0:
        out.append("lr and phantom_spacing_mm must be positive, weight_decay non-negative")
    if c.spacing_mm is not None and not c.spacing_mm > 0:
        out.append(f"spacing_mm: positive (mm) or null, got {c.spacing_mm}")
    out += runtime_problems(c.device, c.threads)
    if any(d.tumours for d in c.domains):
        try:
            load_config(c.synth_config)
        except ConfigError as err:
            out.append(f"synth_config: {err}")
    return out


@dataclass(frozen=True)
class CompareConfig:
    """What ``tumorsynth sar compare`` compares.

    Attributes
    ----------
    inits : list of str
        Initialisations of the segmenter: ``scratch``, ``restoration`` (Models Genesis:
        ``pretrain`` with ``scale_weight = domain_weight = 0``) and ``sar``.
    budgets : list of float
        Fine-tuning budgets as fractions of ``finetune.steps`` (each a run of its own, with its
        own schedule), in (0, 1].
    seeds : list of int
        Seeds of the fine-tuning runs (weights and stream); the pre-training runs once.
    """

    inits: list[str] = field(default_factory=lambda: list(INITS))
    budgets: list[float] = field(default_factory=lambda: [0.1, 0.25, 0.5, 1.0])
    seeds: list[int] = field(default_factory=lambda: [0])

    def __post_init__(self) -> None:
        out = []
        unknown = [i for i in self.inits if i not in INITS]
        if unknown or not self.inits or len(set(self.inits)) != len(self.inits):
            out.append(f"inits: distinct names from {', '.join(INITS)}, got {self.inits}")
        if not self.budgets or any(not 0.0 < b <= 1.0 for b in self.budgets):
            out.append(f"budgets: fractions of the steps in (0, 1], got {self.budgets}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            out.append(f"seeds: at least one, distinct, got {self.seeds}")
        if out:
            raise ConfigError("sar compare config: " + "; ".join(out))


@dataclass(frozen=True)
class SarConfig:
    """A SAR config file: ``pretrain``, ``finetune`` and ``compare`` (see the module)."""

    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    finetune: dict[str, Any] = field(default_factory=dict)
    compare: CompareConfig = field(default_factory=CompareConfig)

    def __post_init__(self) -> None:
        for key in self.finetune:
            if key in NETWORK_FIELDS:
                raise ConfigError(f"finetune.{key}: set by pretrain (the fine-tuned network is "
                                  f"the pre-trained one); set pretrain.{key}")  # fmt: skip
            if key in RUN_FIELDS:
                raise ConfigError(f"finetune.{key}: set by compare for each run")
        finetune_config(self)  # its own checks, now

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(dataclasses.asdict(self))


def finetune_config(config: SarConfig, **run: Any) -> TrainConfig:
    """The :class:`~tumorsynth.train.TrainConfig` of a fine-tuning run: ``finetune``, with the
    network and window of ``pretrain`` and the ``run`` fields (``init_from``, ``out_dir``,
    ``steps``, ``seed``, ...) on top.

    Raises
    ------
    ConfigError
        A bad ``finetune`` field (the message says ``finetune:``).
    """
    pre = config.pretrain
    values = {**config.finetune, **{k: getattr(pre, k) for k in NETWORK_FIELDS}, **run}
    values["window_hu"] = list(pre.window_hu)
    try:
        return load_train_config(values)
    except ConfigError as err:
        raise ConfigError(f"finetune: {err}") from None


_FLOATS = ("phantom_spacing_mm", "spacing_mm", "pos_fraction", "body_hu", "flip_prob",
           "shuffle_prob", "nonlinear_prob", "paint_prob", "inpaint_fraction", "restore_weight",
           "scale_weight", "domain_weight", "reversal_strength", "lr", "weight_decay")  # fmt: skip


def _apply(data: dict[str, Any], key: str, value: Any, where: str) -> None:
    """Set ``section.field`` of ``data`` (a dotted override)."""
    section, dot, name = key.partition(".")
    sections = ("pretrain", "finetune", "compare")
    if not dot or section not in sections or not name:
        hint = difflib.get_close_matches(section, sections, n=1)
        maybe = f" (did you mean {hint[0]}.{name}?)" if hint and dot else ""
        raise ConfigError(f"{where}: override {key!r}{maybe}: expected pretrain.FIELD, "
                          "finetune.FIELD or compare.FIELD")  # fmt: skip
    part = data.setdefault(section, {})
    if not isinstance(part, dict):
        raise ConfigError(f"{where}: {section} must be a mapping of fields")
    part[name] = value


def load_sar_config(
    source: str | Path | Mapping[str, Any] | None = None,
    overrides: Sequence[str] | Mapping[str, Any] = (),
) -> SarConfig:
    """Build a :class:`SarConfig` from a YAML/JSON file, a dict or defaults, then overrides.

    Parameters
    ----------
    source : path, dict or None
        The config file (``.yaml``, ``.yml``, ``.json``) of ``pretrain``, ``finetune`` and
        ``compare`` sections (each optional); None for the defaults.
    overrides : sequence of ``"section.field=value"`` or dict
        Applied on top (values read as YAML), e.g. ``pretrain.steps=100``.

    Raises
    ------
    ConfigError
        Unreadable file, unknown section or field (with a suggestion), value of the wrong type,
        or an inconsistent config; the message names the field.
    """
    if source is None or isinstance(source, Mapping):
        data, where = {k: dict(v) if isinstance(v, Mapping) else v
                       for k, v in (source or {}).items()}, "sar config"  # fmt: skip
    else:
        data, where = read_source(source, SarConfig, "sar config")
    for key, value in overrides_dict(overrides).items():
        _apply(data, key, value, where)
    sections = [f.name for f in dataclasses.fields(SarConfig)]
    for key in data:
        if key not in sections:
            hint = difflib.get_close_matches(key, sections, n=1)
            maybe = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ConfigError(f"{where}: unknown section {key!r}{maybe}; sections: {sections}")
    pre = data.get("pretrain") or {}
    if not isinstance(pre, dict):
        raise ConfigError(f"{where}: pretrain must be a mapping of fields")
    for key in _FLOATS:
        if key in pre:
            pre[key] = as_number(pre[key])
    names = [f.name for f in dataclasses.fields(PretrainConfig)]
    check_fields(pre, names, where, section="pretrain")
    data["pretrain"] = pre
    return build_dataclass(SarConfig, data, where)
