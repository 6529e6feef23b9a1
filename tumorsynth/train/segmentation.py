r"""``tumorsynth train``: a label-free segmenter trained on healthy CT with tumours made on the fly.

:class:`SegmentationTrainer` fills the :class:`~tumorsynth.train.trainer.Trainer`'s hooks: healthy
hosts and validation cases (:mod:`~tumorsynth.train.data`), a MONAI network by name, DiceCE over
background, organ and tumour (or, with several organs and ``label_scheme: per_organ``, each organ
and its tumour), crops from :class:`~tumorsynth.stream.TumorStream` (on a GPU the
tumours are rendered into the batch inside the step, :func:`~tumorsynth.stream.insert_tumours`),
the reference's augmentation, and validation as ``tumorsynth predict`` segments. Under ``torchrun``
every rank has its own synthesis stream and records the crops and tumours it trained on in
``streams/rank{r}.jsonl`` (replayable with :meth:`tumorsynth.stream.TumorStream.replay`).

Examples
--------
>>> from tumorsynth.train import load_train_config, train              # doctest: +SKIP
>>> result = train(load_train_config("train.yaml", ["steps=2000"]))    # doctest: +SKIP
>>> result.best_score, result.out_dir                                  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from torch import nn

from tumorsynth.engine.label_maps import label_codes
from tumorsynth.errors import ConfigError, InputError, TumorSynthError
from tumorsynth.segment.checkpoint import load_checkpoint
from tumorsynth.segment.networks import build_network, network_spec
from tumorsynth.segment.postprocess import DEFAULT_POSTPROCESS
from tumorsynth.segment.predict import Predictor, window
from tumorsynth.stream import insert_tumours
from tumorsynth.train.config import TrainConfig
from tumorsynth.train.data import (
    augment,
    compose_targets,
    load_hosts,
    load_val_cases,
    make_loader,
)
from tumorsynth.train.logs import StreamLog
from tumorsynth.train.mix import load_mixed, make_mixed_loader, source_fractions
from tumorsynth.train.trainer import Trainer, TrainResult
from tumorsynth.train.validate import validate

__all__ = ["SegmentationTrainer", "init_network", "load_matching", "read_init", "train"]

log = logging.getLogger("tumorsynth.train")

ARCHITECTURE = ("network", "channels", "swin_feature_size")
"""Fields of :func:`~tumorsynth.segment.networks.network_spec` a resumed run must keep."""


def _common_spacing(hosts) -> list[float] | None:
    """The hosts' voxel size if they share one (to 1 %), else None (native spacing)."""
    spacings = np.array([h.spacing_mm for h in hosts], dtype=float)
    if np.allclose(spacings, spacings[0], rtol=0.01, atol=0):
        return [float(s) for s in spacings[0]]
    return None


class SegmentationTrainer(Trainer):
    """Trains a tumour segmenter: the hooks of ``tumorsynth train`` (see the module).

    Parameters
    ----------
    config : TrainConfig
    resume, overwrite, progress
        As :class:`~tumorsynth.train.trainer.Trainer`.
    """

    metric_columns = ("loss", "lr", "data_s", "step_s", "tumour_dice", "organ_dice")
    best_metric = "tumour_dice"
    run_folders = ("checkpoints", "tensorboard", "streams")

    config: TrainConfig

    def build_data(self) -> None:
        """Hosts, validation cases (this rank's share), the device that renders the tumours."""
        cfg, rt = self.config, self.runtime
        self.init_state = None  # checked before the (slow) hosts are read
        if cfg.init_from and not self.resume:
            self.init_state = read_init(cfg.init_from, network_spec(cfg), cfg.window_hu)
        self.gpu_synth = self._gpu_synthesis()
        if cfg.mix:  # phantoms, healthy CT and labelled scans together (train/mix.py)
            self.host_groups, self.scans = load_mixed(cfg, progress=self.progress and rt.main)
            self.hosts = [h for group in self.host_groups.values() for h in group] + self.scans
        else:
            self.hosts = load_hosts(cfg, progress=self.progress and rt.main)
        self.val_cases = load_val_cases(cfg, self.progress and rt.main, (rt.rank, rt.world))
        self.has_val = bool(cfg.val_images or cfg.n_val_synthetic)

    def _gpu_synthesis(self) -> bool:
        """Whether the step renders the tumours on the GPU (else the DataLoader workers do)."""
        cfg, device = self.config, self.runtime.device
        if device.type != "cuda" or cfg.synth_device == "cpu":
            if cfg.synth_device == "gpu":
                raise ConfigError("synth_device 'gpu' needs a CUDA device (device is the CPU)")
            return False
        from tumorsynth.backend import get_backend

        try:
            get_backend("cuda")
        except TumorSynthError as err:
            if cfg.synth_device == "gpu":
                raise ConfigError(f"synth_device 'gpu': {err}") from None
            log.info("tumours are rendered in the DataLoader workers: %s", err)
            return False
        return True

    def build_network(self) -> nn.Module:
        """The config's network; with ``init_from`` (and not resuming), started from it."""
        network = build_network(self.config)
        if self.init_state is not None:
            load_matching(network, self.init_state, self.config.init_from)
        return network

    def build_loss(self):
        from monai.losses import DiceCELoss

        return DiceCELoss(to_onehot_y=True, softmax=True)

    def checkpoint_meta(self) -> dict[str, Any]:
        """How ``predict`` rebuilds and feeds the network: its spec, HU window, voxel size."""
        cfg = self.config
        return {
            "network": network_spec(cfg),
            "window_hu": list(cfg.window_hu),
            "spacing_mm": _common_spacing(self.hosts),
            "config": cfg.to_dict(),
            "label_scheme": cfg.label_scheme,
            "organs": list(cfg.organs),
        }

    def check_resumable(self, state: dict[str, Any]) -> None:
        """The checkpoint's network must be the config's (the patch size may change: it does not
        shape the weights)."""
        have = {k: state["network"].get(k) for k in ARCHITECTURE}
        want = {k: self.meta["network"][k] for k in ARCHITECTURE}
        if have != want:
            raise ConfigError(
                f"--resume: the checkpoint's network {have} differs from the config's {want}"
            )

    def build_loader(self):
        """Crops from the synthesis stream (fresh ones on resume), and the augmentation's draws."""
        cfg = self.config
        seed = np.random.SeedSequence([cfg.seed, self.runtime.rank, self.step]).generate_state(1)
        self.aug_rng = torch.Generator().manual_seed(int(seed[0]))
        if cfg.mix:
            return make_mixed_loader(
                cfg, self.host_groups, self.scans, self.step, render=not self.gpu_synth
            )
        return make_loader(cfg, self.hosts, self.step, render=not self.gpu_synth)

    def prepare_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Crops on the device (tumours rendered there on a GPU), windowed and augmented."""
        device = self.runtime.device
        image = batch["image"].to(device, non_blocking=True)
        label = batch["label"].to(device, non_blocking=True)
        if self.gpu_synth:
            image, label = insert_tumours(image, label, batch["params"])
        if "context" in batch:  # several organs, or per-organ codes: the host's map of organs
            label = compose_targets(label, batch["context"], batch["codes"])
        x, y = window(image, self.config.window_hu), label.long()
        if self.config.augment:
            x, y = augment(x, y, self.aug_rng)
        return {**batch, "input": x, "target": y}

    def after_step(self, batch: dict[str, Any], values) -> None:
        self.streams.write(self.step, batch)

    def validate(self) -> dict[str, float] | None:
        """Mean tumour and organ Dice of whole validation volumes, segmented as ``predict`` does
        (the checkpoint's voxel size, sliding windows, its default post-processing); every rank
        scores its share."""
        if not self.has_val:
            return None
        cfg, rt = self.config, self.runtime
        predictor = Predictor(
            self.network, cfg.patch_size, cfg.window_hu, self.meta["spacing_mm"], rt.device,
            cfg.sw_overlap, cfg.sw_batch_size, cfg.amp and rt.device.type == "cuda",
            label_scheme=cfg.label_scheme, postprocess=DEFAULT_POSTPROCESS,
        )  # fmt: skip
        codes = [label_codes(organ, cfg.label_scheme) for organ in cfg.organs]
        return validate(predictor, self.val_cases, rt.sum, codes)

    def open_logs(self, resume_step: int | None) -> None:
        super().open_logs(resume_step)
        self.streams = StreamLog(self.out_dir, self.runtime.rank, resume_step=resume_step)

    def close_logs(self) -> None:
        super().close_logs()
        self.streams.close()
        if self.config.mix and self.runtime.main:
            fractions = source_fractions(self.out_dir)
            log.info(
                "crop sources: %s (mix %s)",
                ", ".join(f"{k} {100 * v:.1f} %" for k, v in sorted(fractions.items())),
                ", ".join(f"{k} {v:g}" for k, v in self.config.mix.items()),
            )


def _architecture(spec: dict[str, Any]) -> dict[str, Any]:
    """The fields of a network spec that shape its weights (SwinUNETR ignores ``channels``,
    the UNets ``swin_feature_size``)."""
    key = "swin_feature_size" if spec.get("network") == "swin_unetr" else "channels"
    return {"network": spec.get("network"), key: spec.get(key)}


def read_init(path: str, spec: dict[str, Any], window_hu: Any = None) -> dict[str, Any]:
    """The checkpoint of ``init_from`` (``path``), checked against the network ``spec``: a
    ``train`` checkpoint (its ``network``) or a method's (its ``backbone``, a network spec that
    ``predict`` does not take for a segmenter).

    Raises
    ------
    InputError
        A missing or unreadable checkpoint, or one that records no network.
    ConfigError
        A checkpoint of another network than ``spec``'s.
    """
    state = load_checkpoint(path)
    theirs = state.get("backbone", state.get("network"))
    if not isinstance(theirs, dict):
        raise InputError(
            f"init_from {path}: records no network (not a train or pretrain checkpoint)"
        )
    if _architecture(theirs) != _architecture(spec):
        raise ConfigError(
            f"init_from {path}: a checkpoint of {_architecture(theirs)}, but this run trains "
            f"{_architecture(spec)}: pre-train the same network or change network/channels"
        )
    if window_hu is not None and state.get("window_hu") not in (None, list(window_hu)):
        log.warning("init_from %s: pre-trained with window_hu %s, this run uses %s", path,
                    state["window_hu"], list(window_hu))  # fmt: skip
    return state


def load_matching(network: nn.Module, state: dict[str, Any], path: str) -> dict[str, list[str]]:
    """Load into ``network`` the tensors of checkpoint ``state`` (read from ``path``) whose names
    and shapes match. A method's checkpoint that holds more than the network (e.g. SAR's heads)
    names the network's part with a ``backbone_prefix`` entry; only the tensors under it count.

    Returns
    -------
    dict
        ``loaded``: the network's tensors taken from the checkpoint; ``kept``: those left at their
        initialisation (no tensor of that name and shape in it); ``unused``: the checkpoint's
        tensors the network has no place for. The counts (and the names of ``kept``) are logged.
    """
    prefix = str(state.get("backbone_prefix", ""))
    own = network.state_dict()
    weights = {k[len(prefix) :]: v for k, v in state["model"].items() if k.startswith(prefix)}
    loaded = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
    network.load_state_dict(loaded, strict=False)
    report = {
        "loaded": sorted(loaded),
        "kept": sorted(set(own) - set(loaded)),
        "unused": sorted(set(state["model"]) - {prefix + k for k in loaded}),
    }
    log.info("init_from %s: loaded %d of the network's %d tensors; kept at initialisation: %s; "
             "%d tensors of the checkpoint unused", path, len(loaded), len(own),
             ", ".join(report["kept"]) or "none", len(report["unused"]))  # fmt: skip
    return report


def init_network(
    network: nn.Module, path: str, spec: dict[str, Any], window_hu: Any = None
) -> dict[str, list[str]]:
    """:func:`read_init` then :func:`load_matching`: ``network`` started from checkpoint ``path``."""
    return load_matching(network, read_init(path, spec, window_hu), path)


def train(
    config: TrainConfig, *, resume: bool = False, overwrite: bool = False, progress: bool = True
) -> TrainResult:
    """Train a segmenter on healthy hosts with on-the-fly synthetic tumours.

    Parameters
    ----------
    config : TrainConfig
        See :func:`tumorsynth.train.load_train_config`.
    resume : bool
        Continue the run in ``config.out_dir`` from ``checkpoints/last.pt`` (weights, optimiser,
        schedule and step; the synthesis stream goes on with fresh crops).
    overwrite : bool
        Start again in an ``out_dir`` that holds a run (its checkpoints and logs are replaced).
    progress : bool
        Show a progress bar (rank 0).

    Returns
    -------
    TrainResult
        ``best_score`` is the best mean validation tumour Dice (None without validation).

    Raises
    ------
    ConfigError, InputError
        At start-up, before any step: a bad config, missing or unreadable files, a patch larger
        than a volume, an ``out_dir`` that holds a run without ``resume`` / ``overwrite``.
    """
    return SegmentationTrainer(config, resume=resume, overwrite=overwrite, progress=progress).fit()
