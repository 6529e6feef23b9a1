r"""Training the presence classifier on the :class:`~tumorsynth.train.Trainer`'s hooks.

:class:`PresenceTrainer` fills the hooks: the hosts at the working voxel size, held-out pairs
for validation, the MONAI classifier, binary cross-entropy on paired crops (each positive with its
healthy twin, :mod:`~tumorsynth.methods.spars.pairs`), and, when the config names a labels CSV,
the multiple-instance loss of one of the user's scans per step (:mod:`~tumorsynth.methods.spars.mil`).
The Trainer brings the rest: checkpoints (``best.pt`` at the best validation AUC), ``--resume``,
``metrics.csv`` and TensorBoard, the progress bar.

The run folder is ``<out_dir>/classifier``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tumorsynth.methods.spars.classifier import build_classifier, classifier_spec
from tumorsynth.methods.spars.config import SparsConfig
from tumorsynth.methods.spars.mil import mil_loss, read_scan_labels
from tumorsynth.methods.spars.pairs import (
    PairBatches,
    as_batch,
    box_negatives,
    draw_pairs,
    make_stream,
    min_tumour_vox,
)
from tumorsynth.methods.spars.volumes import held_out_hosts, load_hosts
from tumorsynth.train.trainer import RunSettings, Trainer, TrainResult

__all__ = ["ClassifierRun", "PresenceTrainer", "classifier_run", "train_classifier"]

N_VAL_PHANTOMS = 2
"""Held-out phantoms the validation pairs come from."""


@dataclass(frozen=True)
class ClassifierRun(RunSettings):
    """The :class:`~tumorsynth.train.Trainer` fields of the classifier's run, taken from a
    :class:`SparsConfig` (``spars``) by :func:`classifier_run`."""

    spars: SparsConfig


def classifier_run(config: SparsConfig) -> ClassifierRun:
    """The classifier's run settings: ``clf_*`` fields, in ``<out_dir>/classifier``."""
    return ClassifierRun(
        out_dir=str(Path(config.out_dir) / "classifier"),
        steps=config.clf_steps,
        lr=config.clf_lr,
        weight_decay=config.clf_weight_decay,
        warmup_steps=config.clf_warmup_steps,
        seed=config.seed,
        device=config.device,
        threads=config.threads,
        amp=config.amp,
        val_every=config.val_every,
        save_every=config.save_every,
        spars=config,
    )


class PresenceTrainer(Trainer):
    """Trains the presence classifier (see the module).

    Parameters
    ----------
    config : ClassifierRun
    resume, overwrite, progress
        As :class:`~tumorsynth.train.Trainer`.
    """

    metric_columns = ("loss", "lr", "data_s", "step_s", "mil_loss", "auc", "accuracy")
    best_metric = "auc"
    architecture_keys = ("classifier",)

    config: ClassifierRun

    def build_data(self) -> None:
        """Hosts, the held-out validation pairs and the labelled scans (all read before step 1)."""
        spars = self.config.spars
        show = self.progress and self.runtime.main
        self.hosts = load_hosts(spars, progress=show)
        val_hosts = held_out_hosts(spars, N_VAL_PHANTOMS)
        val_stream = make_stream(spars, val_hosts, seed=spars.seed + 1)
        val_rng = np.random.default_rng(spars.seed + 1)
        self.val_pairs = draw_pairs(
            val_stream, val_rng, spars.clf_val_pairs, min_tumour_vox(spars), spars.window_hu
        )
        n_box = round(spars.clf_box_negatives * spars.clf_val_pairs)
        self.val_box = box_negatives(val_stream, val_rng, n_box, spars) if n_box else None
        self.scans = read_scan_labels(spars.scan_labels, spars) if spars.scan_labels else []

    def build_network(self) -> torch.nn.Module:
        return build_classifier(classifier_spec(self.config.spars))

    def build_loss(self):
        return torch.nn.BCEWithLogitsLoss()

    def checkpoint_meta(self) -> dict[str, Any]:
        """The classifier's spec, HU window and voxel size (what scoring a new scan needs)."""
        spars = self.config.spars
        return {
            "classifier": classifier_spec(spars),
            "window_hu": list(spars.window_hu),
            "spacing_mm": spars.spacing_mm,
            "config": spars.to_dict(),
        }

    def build_loader(self):
        """Paired batches (a resumed run draws other ones), and the scan draws' generator."""
        spars = self.config.spars
        seed = int(np.random.SeedSequence([spars.seed, self.step]).generate_state(1)[0])
        self.mil_rng = np.random.default_rng([seed, 1])
        stream = make_stream(spars, self.hosts, seed)
        return PairBatches(stream, spars, seed, progress=self.progress and self.runtime.main)

    def prepare_batch(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        device = self.runtime.device
        return {k: v.to(device, non_blocking=True) for k, v in batch.items()}

    def compute_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Cross-entropy of the pairs, plus ``mil_weight`` x the scan-level loss of one scan."""
        loss = self.loss_fn(self.net(batch["input"]), batch["target"])
        self._mil_value = float("nan")
        if self.scans:
            spars = self.config.spars
            scan = self.scans[int(self.mil_rng.integers(len(self.scans)))]
            mil = mil_loss(self.net, scan, spars.window_vox, spars.mil_windows, self.mil_rng,
                           self.runtime.device)  # fmt: skip
            self._mil_value = float(mil.detach())
            loss = loss + spars.mil_weight * mil
        return loss

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        values = super().train_step(batch)
        return {**values, "mil_loss": self._mil_value}

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """ROC AUC and accuracy (at 0.5) on the held-out pairs and box negatives."""
        from monai.metrics import compute_roc_auc

        self.network.eval()
        pairs = self.val_pairs
        negatives = [pairs.negative] + ([] if self.val_box is None else [self.val_box])
        batch = as_batch(pairs.positive, np.concatenate(negatives))
        x, y = batch["input"], batch["target"].reshape(-1)
        scores = torch.cat(
            [torch.sigmoid(self.network(c.to(self.runtime.device))).cpu() for c in x.split(256)]
        ).reshape(-1)
        auc = float(compute_roc_auc(scores, y))
        accuracy = float(((scores > 0.5).float() == y).float().mean())
        return {"auc": auc, "accuracy": accuracy}


def train_classifier(
    config: SparsConfig, *, resume: bool = False, overwrite: bool = False, progress: bool = True
) -> TrainResult:
    """Train the presence classifier of ``config`` in ``<out_dir>/classifier``.

    Returns
    -------
    TrainResult
        ``best_score``: the best held-out AUC.
    """
    run = classifier_run(config)
    return PresenceTrainer(run, resume=resume, overwrite=overwrite, progress=progress).fit()
