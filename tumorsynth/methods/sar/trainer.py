"""``tumorsynth sar pretrain``: SAR's pre-training on the :class:`~tumorsynth.train.Trainer`.

:class:`SarTrainer` fills the Trainer's hooks: the domains and held-out crops
(:mod:`~tumorsynth.methods.sar.domains`, :mod:`~tumorsynth.methods.sar.crops`), a
:class:`~tumorsynth.methods.sar.network.SarNet` around the segmenter ``tumorsynth train`` builds,
the loss of :mod:`~tumorsynth.methods.sar.losses`, the reversal strength ramped step by step, and
validation on the held-out crops. The Trainer brings checkpoints (``last.pt``, ``best.pt`` at the
lowest held-out restoration error), ``--resume``, ``metrics.csv`` with TensorBoard, and
``torchrun`` (DistributedDataParallel). ``best.pt`` starts a segmenter through
``tumorsynth train``'s ``init_from``.

Examples
--------
>>> from tumorsynth.methods.sar import load_sar_config, pretrain      # doctest: +SKIP
>>> result = pretrain(load_sar_config("sar.yaml").pretrain)             # doctest: +SKIP
>>> result.out_dir / "checkpoints" / "best.pt"                         # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch
from torch.utils.data import DataLoader

from tumorsynth.methods.sar.config import PretrainConfig
from tumorsynth.methods.sar.crops import SarCrops, fixed_crops
from tumorsynth.methods.sar.domains import load_domains
from tumorsynth.methods.sar.losses import SarLoss
from tumorsynth.methods.sar.network import BACKBONE_PREFIX, SarNet, SarOutput
from tumorsynth.methods.sar.reversal import dann_lambda
from tumorsynth.segment.networks import default_channels
from tumorsynth.train.data import stream_seed
from tumorsynth.train.trainer import Trainer, TrainResult

__all__ = ["VAL_SEED", "SarTrainer", "backbone_spec", "pretrain"]

log = logging.getLogger("tumorsynth.sar")

VAL_SEED = 1_000_003
"""Added to the run's seed for the held-out crops (the training stream never draws from it)."""

TERMS = ("restore_mse", "scale_ce", "scale_acc", "domain_ce", "domain_acc")


def backbone_spec(config: PretrainConfig) -> dict[str, Any]:
    """The network spec of the backbone (as :func:`~tumorsynth.segment.networks.network_spec`;
    ``patch_size`` is the input size)."""
    return {
        "network": config.network,
        "channels": list(config.channels or default_channels(config.network)),
        "swin_feature_size": config.swin_feature_size,
        "patch_size": list(config.input_size),
    }


class SarTrainer(Trainer):
    """SAR's pre-training: the hooks of ``tumorsynth sar pretrain`` (see the module).

    Parameters
    ----------
    config : PretrainConfig
    resume, overwrite, progress
        As :class:`~tumorsynth.train.trainer.Trainer`.
    """

    metric_columns = ("loss", "lr", "data_s", "step_s", *TERMS, "reversal")
    best_metric = "restore_mse"
    higher_is_better = False
    architecture_keys = ("backbone", "heads")

    config: PretrainConfig

    def build_data(self) -> None:
        """The domains' volumes (checked) and the held-out crops."""
        cfg = self.config
        self.domains = load_domains(cfg, progress=self.progress and self.runtime.main)
        held_out = SarCrops(self.domains, cfg, seed=cfg.seed + VAL_SEED)
        self.val_batch = fixed_crops(held_out, cfg.n_val_crops, cfg.seed + VAL_SEED)

    def heads(self) -> dict[str, int]:
        """Classes of the scale and domain heads (0: not built, its weight is 0)."""
        cfg = self.config
        return {
            "n_scales": cfg.n_scales if cfg.scale_weight > 0 else 0,
            "n_domains": len(cfg.domains) if cfg.domain_weight > 0 else 0,
        }

    def build_network(self) -> SarNet:
        heads = self.heads()
        return SarNet(backbone_spec(self.config), heads["n_scales"], heads["n_domains"])

    def build_loss(self) -> SarLoss:
        cfg = self.config
        return SarLoss(cfg.restore_weight, cfg.scale_weight, cfg.domain_weight)

    def build_loader(self) -> DataLoader:
        """Corrupted crops from a stream seeded by (seed, start step): fresh ones on resume."""
        cfg = self.config
        crops = SarCrops(self.domains, cfg, seed=stream_seed(cfg.seed, self.step))
        return DataLoader(
            crops, batch_size=cfg.batch_size, num_workers=cfg.num_workers,
            pin_memory=torch.cuda.is_available(), persistent_workers=cfg.num_workers > 0,
        )  # fmt: skip

    def prepare_batch(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        device = self.runtime.device
        return {k: v.to(device, non_blocking=True) for k, v in batch.items()}

    def reversal_strength(self) -> float:
        """Lambda at this step (DANN's ramp over the run, or constant)."""
        cfg = self.config
        return dann_lambda(self.step / max(cfg.steps - 1, 1), cfg.reversal_strength,
                           cfg.reversal_ramp)  # fmt: skip

    def compute_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        self.network.reversal.strength = self.reversal_strength()
        loss, self.terms = self.loss_fn(self.forward(self.net, batch), batch)
        return loss

    def forward(self, net: torch.nn.Module, batch: dict[str, torch.Tensor]):
        """``net`` on a batch: the heads on the clean crops or the corrupted ones
        (``heads_input``; restoration-only runs need neither)."""
        clean = self.config.heads_input == "clean" and any(self.heads().values())
        return net(batch["input"], batch["target"] if clean else None)

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        values = super().train_step(batch)
        return {**values, **self.terms, "reversal": self.network.reversal.strength}

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """The loss terms on the held-out crops, run in batches and scored together (every rank
        scores all of them: they are few)."""
        self.network.eval()
        device, size = self.runtime.device, self.config.batch_size
        n = len(self.val_batch["input"])
        parts = []
        for lo in range(0, n, size):
            part = {k: v[lo : lo + size].to(device) for k, v in self.val_batch.items()}
            with self.autocast():
                out = self.forward(self.network, part)
            parts.append([None if t is None else t.float().cpu() for t in out])
        output = SarOutput(
            *[None if ts[0] is None else torch.cat(ts) for ts in zip(*parts, strict=True)]
        )
        _, terms = self.loss_fn(output, self.val_batch)
        self.network.train()
        return {k: v for k, v in terms.items() if not math.isnan(v)}

    def checkpoint_meta(self) -> dict[str, Any]:
        """The backbone's spec (``init_from`` checks and strips ``backbone_prefix``), the heads,
        the HU window, the scales and domains, and the config."""
        cfg = self.config
        return {
            "backbone": backbone_spec(cfg),
            "backbone_prefix": BACKBONE_PREFIX,
            "heads": self.heads(),
            "window_hu": list(cfg.window_hu),
            "crop_sizes_mm": [list(s) for s in cfg.crop_sizes_mm],
            "domains": [d.name for d in cfg.domains],
            "config": cfg.to_dict(),
        }


def pretrain(
    config: PretrainConfig, *, resume: bool = False, overwrite: bool = False, progress: bool = True
) -> TrainResult:
    """Pre-train a segmentation backbone with SAR's tasks, and draw its restorations.

    Parameters
    ----------
    config : PretrainConfig
        See :func:`~tumorsynth.methods.sar.config.load_sar_config` (its ``pretrain`` section).
    resume : bool
        Continue the run in ``config.out_dir`` from ``checkpoints/last.pt``.
    overwrite : bool
        Start again in an ``out_dir`` that holds a run.
    progress : bool
        Show progress bars.

    Returns
    -------
    TrainResult
        ``best_score``: the lowest held-out restoration MSE; ``checkpoints/best.pt`` is the
        ``init_from`` of a segmenter. ``restorations.png`` shows held-out crops of each scale:
        corrupted, restored, clean.

    Raises
    ------
    ConfigError, InputError
        At start-up, before any step: a source with no readable CT, a crop larger than a volume,
        an ``out_dir`` that holds a run without ``resume`` / ``overwrite``.
    """
    from tumorsynth.methods.sar.figures import write_restorations

    trainer = SarTrainer(config, resume=resume, overwrite=overwrite, progress=progress)
    result = trainer.fit()
    if trainer.runtime.main:
        write_restorations(result.out_dir / "restorations.png", trainer.network.cpu(),
                           trainer.val_batch, config.crop_sizes_mm)  # fmt: skip
    return result
