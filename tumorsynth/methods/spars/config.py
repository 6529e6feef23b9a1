"""The SPARS configuration: one flat frozen dataclass, read from YAML/JSON, overridable field by field.

Every check that needs no data runs when the config is built, so a bad value stops
``tumorsynth spars train`` at start-up with one message naming the field. The checks that need
the volumes (the window fits each liver's box, the files exist) run when the volumes are read.

Examples
--------
>>> cfg = load_spars_config(None, ["window_vox=[8, 8, 8]", "tau=0.5"])
>>> cfg.window_vox, cfg.tau, cfg.protocol
((8, 8, 8), 0.5, 'amortised')
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tumorsynth.engine.config import load_config
from tumorsynth.engine.config_files import as_number, read_fields
from tumorsynth.engine.serialization import build_dataclass, to_jsonable
from tumorsynth.errors import ConfigError
from tumorsynth.train.config import runtime_problems

__all__ = ["DEFAULT_SYNTH", "SparsConfig", "dumps", "load_spars_config"]

Triple = tuple[int, int, int]

DEFAULT_SYNTH: dict[str, Any] = {"preset": "liver", "size_class": "medium"}
"""Synthesis config of the training tumours: the ``liver`` preset with medium tumours (16 mm
radius, 2-5 per liver), the size a 32 mm window at 4 mm voxels tells apart."""

PROTOCOLS = ("amortised", "per_volume")
COMPETITORS = ("latest", "pool")
STARTS = ("random", "centroid")
MASK_RULES = ("max", "sum", "mean")


@dataclass(frozen=True)
class SparsConfig:
    """Everything a ``tumorsynth spars train`` run needs; every field has a default (the tiny CPU
    settings; ``examples/configs/spars_full.yaml`` has the one-GPU ones).

    Attributes
    ----------
    images, masks : list of str
        Healthy CTs and their liver masks used as synthesis hosts (paired by name or in order, as
        ``tumorsynth train``); empty: the built-in phantoms.
    organ_label : int, optional
        The liver's value in label-map masks (5 in TotalSegmentator).
    n_phantoms : int
        Built-in phantoms (seeds 0, 1, ...) used as hosts when no ``images`` are given.
    spacing_mm : float
        Isotropic voxel size every volume is resampled to, mm; windows and steps are counted in
        these voxels.
    window_hu : 2 floats
        HU window mapped to [0, 1] before the classifier and the policy see a crop.
    synth_config : str or dict
        Synthesis config of the tumours (preset name, file or dict; see
        :func:`tumorsynth.load_config`).
    box_margin_vox : int
        Voxels added around the liver's bounding box; the cursors move inside the grown box.
    window_vox : 3 ints
        Window of the agents and input of the classifier, voxels (X, Y, Z).
    clf_channels : list of int
        Channels of the classifier's stride-2 blocks (MONAI ``Classifier``).
    clf_res_units : int
        Residual units per block (0: plain convolution, batch norm, PReLU).
    clf_steps, clf_batch_pairs, clf_lr, clf_weight_decay, clf_warmup_steps
        Classifier optimiser steps, (positive, negative) pairs per step, AdamW learning rate and
        weight decay, linear warm-up steps.
    clf_bank_pairs : int
        Pairs drawn once from the stream and cycled through (0: fresh pairs every step).
    clf_val_pairs : int
        Held-out pairs (from phantoms with seeds 1000, ...) scored for the AUC that picks
        ``best.pt``.
    clf_min_tumour_fraction : float
        A crop is a positive when at least this fraction of its voxels is tumour.
    clf_pos_fraction : float
        Fraction of training crops centred on a liver voxel (the others anywhere in the volume).
    clf_box_negatives : float
        Healthy windows from anywhere in the livers' boxes per pair (unpaired negatives: the
        liver's edges, which the paired negatives, placed where tumours go, rarely show).
    clf_flip : bool
        Flip each training batch along random axes.
    scan_labels : str, optional
        CSV of the user's own scans with scan-level labels (columns ``case, label, mask``: CT
        path, 0/1, liver mask path; paths relative to the CSV), learnt by multiple-instance
        learning: a scan's score is the maximum over its windows.
    mil_weight : float
        Weight of the scan-level loss (one scan per step).
    mil_windows : int
        At most this many windows of a scan per step (a random stride-``window`` tiling).
    step_vox : int
        Voxels a cursor moves per action (6 actions: +-x, +-y, +-z).
    tau : float
        An episode ends when either agent's window scores more than this.
    t_max : int
        ... or after this many steps.
    start : str
        Where both cursors start: ``"random"`` (a random liver voxel) or ``"centroid"``.
    obs_context : int
        Odd factor: the policy sees ``obs_context`` windows' worth of volume per axis around its
        window, averaged down to the window's shape (1: the window alone, as the paper); the
        classifier always scores the window itself.
    obs_scores : bool
        The policy also sees the classifier's scores of the six windows one move away (scored in
        the step's one batched call; zeros right after a reset). The paper's policy sees its
        window only (False).
    mask_rule : str
        ``"sum"`` (the paper: the summed scores above ``mask_threshold``), ``"max"`` (the
        highest score a voxel's windows got above it) or ``"mean"`` (the mean score of the
        learner's visits of a voxel above it).
    mask_threshold : float
        Threshold of the mask rule (the paper: 0.5 on the sum).
    protocol : str
        ``"amortised"`` (agents trained over many synthetic volumes, then applied to new scans) or
        ``"per_volume"`` (fresh agents trained on each target scan with the classifier alone, as the
        authors' code).
    n_envs : int
        Vectorised environments (their windows are scored in one classifier call per step).
    n_volumes : int
        Synthetic volumes the amortised agents train over (one drawn per episode).
    ppo_steps : int
        Environment steps of the PPO run (all environments together).
    ppo_n_steps, ppo_batch_size, ppo_epochs, ppo_lr, ppo_ent_coef, ppo_gamma, ppo_gae_lambda,
    ppo_clip_range
        stable-baselines3 PPO settings (rollout steps per environment, minibatch, epochs, ...).
    features_dim : int
        Width of the policy's 3-D CNN features.
    competitor : str
        ``"latest"`` (a frozen copy of the learner, refreshed every ``competitor_every`` steps at a
        rollout's end: the paper) or ``"pool"`` (a snapshot every ``competitor_every`` steps into a
        pool of ``pool_size``; each rollout's competitor drawn from it as RLSP's prioritised
        fictitious self-play).
    competitor_every : int
        Environment steps between competitor refreshes (or snapshots).
    pool_size : int
        Snapshots kept in the pool.
    rollouts : int
        Episodes per scan at segmentation (the first from the liver's centroid, then from random
        liver voxels); the map is kept across them.
    tt_steps : int
        PPO steps per scan under the ``per_volume`` protocol.
    agent_save_every : int
        Save the agents (``agents/last.zip``) every this many environment steps, and at the end.
    val_every, save_every : int
        Classifier validation and checkpoint period, steps.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    amp : bool
        bfloat16 autocast for the classifier on CUDA.
    seed : int
        Seed of the weights, the stream, the volumes and the agents.
    threads : int, optional
        Torch CPU threads.
    out_dir : str
        Run folder: ``config.json``, ``classifier/``, ``agents/``, ``run.json``.
    """

    images: list[str] = field(default_factory=list)
    masks: list[str] = field(default_factory=list)
    organ_label: int | None = None
    n_phantoms: int = 2
    spacing_mm: float = 4.0
    window_hu: tuple[float, float] = (-175.0, 250.0)
    synth_config: str | dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_SYNTH))
    box_margin_vox: int = 2
    window_vox: Triple = (8, 8, 8)
    clf_channels: list[int] = field(default_factory=lambda: [16, 32, 64])
    clf_res_units: int = 0
    clf_steps: int = 900
    clf_batch_pairs: int = 16
    clf_lr: float = 1e-3
    clf_weight_decay: float = 0.0
    clf_warmup_steps: int = 10
    clf_bank_pairs: int = 768
    clf_val_pairs: int = 256
    clf_min_tumour_fraction: float = 0.05
    clf_pos_fraction: float = 1.0
    clf_box_negatives: float = 2.0
    clf_flip: bool = True
    scan_labels: str | None = None
    mil_weight: float = 1.0
    mil_windows: int = 32
    step_vox: int = 2
    tau: float = 0.9
    t_max: int = 32
    start: str = "random"
    obs_context: int = 1
    obs_scores: bool = True
    mask_rule: str = "max"
    mask_threshold: float = 0.9
    protocol: str = "amortised"
    n_envs: int = 4
    n_volumes: int = 8
    ppo_steps: int = 4096
    ppo_n_steps: int = 32
    ppo_batch_size: int = 64
    ppo_epochs: int = 10
    ppo_lr: float = 3e-3
    ppo_ent_coef: float = 0.0
    ppo_gamma: float = 0.5
    ppo_gae_lambda: float = 0.95
    ppo_clip_range: float = 0.2
    features_dim: int = 64
    competitor: str = "latest"
    competitor_every: int = 256
    pool_size: int = 8
    rollouts: int = 4
    tt_steps: int = 1024
    agent_save_every: int = 1024
    val_every: int = 100
    save_every: int = 100
    device: str = "auto"
    amp: bool = False
    seed: int = 0
    threads: int | None = None
    out_dir: str = "runs/spars"

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ConfigError("spars config: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict that :func:`load_spars_config` turns back into an equal config."""
        return to_jsonable(dataclasses.asdict(self))


def _choice(out: list[str], c: SparsConfig, name: str, options: Sequence[str]) -> None:
    value = getattr(c, name)
    if value not in options:
        hint = difflib.get_close_matches(str(value), options, n=1)
        maybe = f" (did you mean {hint[0]!r}?)" if hint else ""
        out.append(f"{name}: unknown {value!r}{maybe}; choose from {', '.join(options)}")


def _problems(c: SparsConfig) -> list[str]:
    """What is wrong with ``c`` that can be told without reading any volume."""
    out: list[str] = []
    for name, options in (
        ("protocol", PROTOCOLS),
        ("competitor", COMPETITORS),
        ("start", STARTS),
        ("mask_rule", MASK_RULES),
    ):
        _choice(out, c, name, options)
    if len(c.window_vox) != 3 or min(c.window_vox) < 2:
        out.append(f"window_vox: 3 ints of at least 2, got {list(c.window_vox)}")
    if not c.clf_channels or min(c.clf_channels) < 1:
        out.append(f"clf_channels: at least one positive int, got {c.clf_channels}")
    if c.masks and not c.images:
        out.append("masks: given without images")
    if not c.images and c.n_phantoms < 1:
        out.append("no hosts: set images and masks, or n_phantoms >= 1")
    if c.window_hu[0] >= c.window_hu[1]:
        out.append(f"window_hu: low must be below high, got {list(c.window_hu)}")
    positive = (
        "clf_steps", "clf_batch_pairs", "clf_val_pairs", "mil_windows", "step_vox", "t_max",
        "n_envs", "n_volumes", "ppo_steps", "ppo_n_steps", "ppo_batch_size", "ppo_epochs",
        "features_dim", "competitor_every", "pool_size", "rollouts", "tt_steps",
        "agent_save_every", "val_every", "save_every",
    )  # fmt: skip
    for name in positive:
        if getattr(c, name) < 1:
            out.append(f"{name}: at least 1, got {getattr(c, name)}")
    if c.obs_context < 1 or c.obs_context % 2 == 0:
        out.append(f"obs_context: an odd positive int, got {c.obs_context}")
    for name in ("box_margin_vox", "clf_res_units", "clf_bank_pairs", "clf_warmup_steps", "seed"):
        if getattr(c, name) < 0:
            out.append(f"{name}: at least 0, got {getattr(c, name)}")
    for name in ("clf_min_tumour_fraction", "clf_pos_fraction", "ppo_gamma", "ppo_gae_lambda"):
        if not 0.0 <= getattr(c, name) <= 1.0:
            out.append(f"{name}: in [0, 1], got {getattr(c, name)}")
    for name in ("tau", "mask_threshold"):
        if not getattr(c, name) >= 0.0:
            out.append(f"{name}: at least 0, got {getattr(c, name)}")
    for name in ("spacing_mm", "clf_lr", "ppo_lr", "ppo_clip_range"):
        if not getattr(c, name) > 0:
            out.append(f"{name}: positive, got {getattr(c, name)}")
    for name in ("clf_weight_decay", "clf_box_negatives", "mil_weight", "ppo_ent_coef"):
        if getattr(c, name) < 0:
            out.append(f"{name}: at least 0, got {getattr(c, name)}")
    out += runtime_problems(c.device, c.threads)
    try:
        load_config(c.synth_config)
    except ConfigError as err:
        out.append(f"synth_config: {err}")
    return out


_NUMBERS = (
    "spacing_mm", "clf_lr", "clf_weight_decay", "clf_min_tumour_fraction", "clf_pos_fraction",
    "clf_box_negatives",
    "mil_weight", "tau", "mask_threshold", "ppo_lr", "ppo_ent_coef", "ppo_gamma",
    "ppo_gae_lambda", "ppo_clip_range",
)  # fmt: skip


def load_spars_config(
    source: str | Path | Mapping[str, Any] | SparsConfig | None = None,
    overrides: Sequence[str] | Mapping[str, Any] = (),
) -> SparsConfig:
    """Build a :class:`SparsConfig` from a YAML/JSON file, a dict or the defaults, then overrides.

    Parameters
    ----------
    source : path, dict, SparsConfig or None
        The config file (``.yaml``, ``.yml``, ``.json``); None for the defaults.
    overrides : sequence of ``"key=value"`` or dict
        Applied on top, field by field (values read as YAML).

    Raises
    ------
    ConfigError
        Unreadable file, unknown field (with the closest valid one), value of the wrong type, or
        an inconsistent config; the message names the field.
    """
    data, where = read_fields(source, overrides, SparsConfig, "spars config")
    for key in _NUMBERS:
        if key in data:
            data[key] = as_number(data[key], ints=True)
    if "window_hu" in data and isinstance(data["window_hu"], (list, tuple)):
        data["window_hu"] = [as_number(v, ints=True) for v in data["window_hu"]]
    for key in ("images", "masks"):
        if isinstance(data.get(key), str):
            data[key] = [data[key]]
    return build_dataclass(SparsConfig, data, where)


def dumps(config: SparsConfig) -> str:
    """The config as indented JSON (what a run writes to ``config.json``)."""
    return json.dumps(config.to_dict(), indent=2)
