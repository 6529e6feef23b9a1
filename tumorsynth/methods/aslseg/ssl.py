r"""Stage I: a semi-supervised 2-D tumour segmenter trained on labelled and unlabelled slices.

Three methods behind one trainer (:class:`SemiSupervisedTrainer`, on the
:class:`~tumorsynth.train.Trainer`'s hooks), each with MONAI's ``BasicUNet`` and the supervised
loss :math:`\tfrac12(\mathrm{CE} + \mathrm{Dice})` on labelled slices:

- ``mean_teacher`` (Tarvainen and Valpola 2017): a teacher whose weights are the exponential
  moving average of the student's (:math:`\theta' \leftarrow \alpha\theta' + (1-\alpha)\theta`,
  updated in ``after_step``); consistency :math:`\lambda(t)\,\lVert\sigma(f_\theta(x_u)) -
  \sigma(f_{\theta'}(x_u + \xi))\rVert^2` on unlabelled slices, with Gaussian noise :math:`\xi`
  and :math:`\lambda(t) = \lambda_{max} e^{-5(1 - t/T)^2}` ramped over :math:`T` steps;
- ``ua_mt`` (Yu et al. 2019): the same consistency counted only where the teacher is certain:
  the entropy of its mean prediction over 8 noisy passes below :math:`(0.75 + 0.25 r(t)) \ln 2`;
- ``cps`` (Chen et al. 2021): two networks of different initial weights, each trained on the
  other's hard pseudo-labels (cross-entropy) on every slice.

The segmenter predicts with the teacher (mean teacher, UA-MT) or the mean of both networks'
probabilities (CPS).

References
----------
Tarvainen A., Valpola H., "Mean teachers are better role models", NeurIPS 2017.
Yu L. et al., "Uncertainty-aware self-ensembling model for semi-supervised 3D left atrium
segmentation", MICCAI 2019. https://doi.org/10.1007/978-3-030-32245-8_67
Chen X. et al., "Semi-supervised semantic segmentation with cross pseudo supervision", CVPR 2021.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tumorsynth.errors import InputError
from tumorsynth.methods.aslseg.config import SSL_METHODS, ASLsegConfig
from tumorsynth.methods.aslseg.nets import basic_unet, flip_pairs, load_weights
from tumorsynth.methods.aslseg.slices import Slices
from tumorsynth.segment.checkpoint import load_checkpoint
from tumorsynth.train.trainer import RunSettings, Trainer

__all__ = [
    "UA_MT_PASSES",
    "SSLNet",
    "SemiSupervisedTrainer",
    "consistency_weight",
    "load_segmenter",
    "slice_batches",
]

UA_MT_PASSES = 8
"""Noisy teacher passes of UA-MT's uncertainty."""


class SSLNet(nn.Module):
    """The networks of one method; calling it gives the logits the segmenter predicts with.

    Parameters
    ----------
    method : str
        ``mean_teacher``, ``ua_mt`` or ``cps``.
    features : sequence of 6 int
        ``BasicUNet`` features.
    ema_decay : float
        The teacher's EMA decay (mean teacher, UA-MT).
    """

    def __init__(self, method: str, features, ema_decay: float = 0.99) -> None:
        super().__init__()
        if method not in SSL_METHODS:
            raise ValueError(f"unknown method {method!r}; choose from {SSL_METHODS}")
        self.method = method
        if method == "cps":
            self.a, self.b = basic_unet(1, features), basic_unet(1, features)
        else:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            self.student = basic_unet(1, features)
            self.teacher = AveragedModel(
                self.student, multi_avg_fn=get_ema_multi_avg_fn(ema_decay), use_buffers=True
            ).requires_grad_(False)

    def trainable(self) -> list[nn.Parameter]:
        """The parameters the optimiser updates (not the teacher's)."""
        nets = (self.a, self.b) if self.method == "cps" else (self.student,)
        return [p for net in nets for p in net.parameters()]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.method == "cps":  # the log of the mean probability: softmax gives the mean
            return torch.log((self.a(x).softmax(1) + self.b(x).softmax(1)) / 2 + 1e-8)
        return self.teacher(x)


def consistency_weight(step: int, config: ASLsegConfig) -> float:
    r""":math:`\lambda_{max} e^{-5(1 - t/T)^2}` with :math:`T` = ``consistency_ramp`` of the
    steps (the full weight from :math:`T` on)."""
    ramp = config.consistency_ramp * config.ssl_steps
    t = 1.0 if ramp <= 0 else min(step / ramp, 1.0)
    return config.consistency * math.exp(-5.0 * (1.0 - t) ** 2)


def slice_batches(
    labelled: Slices, unlabelled: Slices, n_labelled: int, n_unlabelled: int,
    rng: np.random.Generator,
) -> Iterator[dict[str, torch.Tensor]]:  # fmt: skip
    """Endless batches: ``x_l`` (B, 1, S, S) with ``y_l`` (B, 1, S, S) int64 tumour labels, and
    ``x_u`` (B', 1, S, S) unlabelled slices, drawn with replacement and flipped at random."""
    while True:
        i = rng.integers(len(labelled), size=n_labelled)
        j = rng.integers(len(unlabelled), size=n_unlabelled)
        x_l, y_l = flip_pairs([labelled.image[i], labelled.tumour[i]], rng)
        (x_u,) = flip_pairs([unlabelled.image[j]], rng)
        yield {
            "x_l": torch.from_numpy(x_l[:, None]),
            "y_l": torch.from_numpy(y_l[:, None].astype(np.int64)),
            "x_u": torch.from_numpy(x_u[:, None]),
        }


class SemiSupervisedTrainer(Trainer):
    """Trains stage I's segmenter (see the module).

    Parameters
    ----------
    config : RunSettings
        The run's Trainer settings (steps, learning rate, folder, ...).
    method : ASLsegConfig
        The method's settings.
    labelled, unlabelled : Slices
        The labelled set (its ``tumour`` is the label) and the unlabelled set.
    init : path, optional
        A stage I checkpoint to start from (a warm start); None: from scratch.
    """

    metric_columns = ("loss", "lr", "data_s", "step_s", "supervised", "consistency", "weight")
    architecture_keys = ("ssl_method", "features")

    def __init__(self, config: RunSettings, method: ASLsegConfig, labelled: Slices,
                 unlabelled: Slices, init: str | Path | None = None,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(config, **kwargs)
        self.init = init
        if not len(labelled) or not len(unlabelled):
            raise InputError(
                f"stage I needs labelled and unlabelled slices ({len(labelled)} and "
                f"{len(unlabelled)})"
            )
        self.method, self.labelled, self.unlabelled = method, labelled, unlabelled
        self.parts: dict[str, float] = {}

    def build_network(self) -> nn.Module:
        m = self.method
        return load_weights(SSLNet(m.ssl_method, m.ssl_features, m.ema_decay), self.init, "ssl")

    def build_optimizer(self, network: nn.Module) -> torch.optim.Optimizer:
        cfg = self.config
        return torch.optim.AdamW(network.trainable(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def build_loss(self):
        from monai.losses import DiceCELoss

        return DiceCELoss(
            to_onehot_y=True,
            softmax=True,
            include_background=False,
            batch=True,
            lambda_dice=0.5,
            lambda_ce=0.5,
        )

    def build_loader(self) -> Iterator[dict[str, torch.Tensor]]:
        m = self.method
        rng = np.random.default_rng([self.config.seed, self.step])  # fresh draws on resume
        noise_seed = int(rng.integers(2**62))
        self.noise = torch.Generator(device=self.runtime.device).manual_seed(noise_seed)
        return slice_batches(self.labelled, self.unlabelled, m.ssl_batch_size,
                             m.ssl_unlabelled_batch_size, rng)  # fmt: skip

    def prepare_batch(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.to(self.runtime.device, non_blocking=True) for k, v in batch.items()}

    def _noisy(self, x: torch.Tensor) -> torch.Tensor:
        m = self.method
        xi = torch.randn(x.shape, generator=self.noise, device=x.device) * m.noise_std
        return x + xi.clamp(-m.noise_clip, m.noise_clip)

    def compute_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x_l, y_l, x_u = batch["x_l"], batch["y_l"], batch["x_u"]
        weight = consistency_weight(self.step, self.method)
        if self.method.ssl_method == "cps":
            supervised, consistency = self._cps(x_l, y_l, x_u)
        else:
            supervised, consistency = self._teacher(x_l, y_l, x_u)
        self.parts = {"supervised": float(supervised.detach()),
                      "consistency": float(consistency.detach()), "weight": weight}  # fmt: skip
        return supervised + weight * consistency

    def _teacher(self, x_l, y_l, x_u) -> tuple[torch.Tensor, torch.Tensor]:
        net = self.network
        out = net.student(torch.cat([x_l, x_u]))
        supervised = self.loss_fn(out[: len(x_l)], y_l)
        student_u = out[len(x_l) :].softmax(1)
        with torch.no_grad():
            teacher_u = net.teacher(self._noisy(x_u)).softmax(1)
        if self.method.ssl_method == "mean_teacher":
            return supervised, ((student_u - teacher_u) ** 2).mean()
        with torch.no_grad():  # UA-MT: the teacher's uncertainty over noisy passes
            passes = torch.stack([net.teacher(self._noisy(x_u)).softmax(1)
                                  for _ in range(UA_MT_PASSES)]).mean(0)  # fmt: skip
            entropy = -(passes * torch.log(passes + 1e-6)).sum(1, keepdim=True)
            ramp = consistency_weight(self.step, self.method) / max(self.method.consistency, 1e-12)
            certain = (entropy < (0.75 + 0.25 * ramp) * math.log(2)).float()
        distance = (student_u - teacher_u) ** 2
        return supervised, (certain * distance).sum() / (2 * certain.sum() + 1e-16)

    def _cps(self, x_l, y_l, x_u) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([x_l, x_u])
        out_a, out_b = self.network.a(x), self.network.b(x)
        n = len(x_l)
        supervised = self.loss_fn(out_a[:n], y_l) + self.loss_fn(out_b[:n], y_l)
        hard_a, hard_b = out_a.detach().argmax(1), out_b.detach().argmax(1)
        return supervised, F.cross_entropy(out_a, hard_b) + F.cross_entropy(out_b, hard_a)

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        return {**super().train_step(batch), **self.parts}

    def after_step(self, batch: dict[str, torch.Tensor], values) -> None:
        if self.method.ssl_method != "cps":
            self.network.teacher.update_parameters(self.network.student)

    def checkpoint_meta(self) -> dict[str, Any]:
        m = self.method
        return {"aslseg": "ssl", "ssl_method": m.ssl_method, "features": list(m.ssl_features),
                "ema_decay": m.ema_decay, "slice_size": m.slice_size,
                "window_hu": list(m.window_hu)}  # fmt: skip


def load_segmenter(path: str | Path, device: str | torch.device = "cpu") -> SSLNet:
    """Stage I's segmenter from a :class:`SemiSupervisedTrainer` checkpoint, in eval mode.

    Raises
    ------
    InputError
        A missing or unreadable file, or a checkpoint of another kind.
    """
    state = load_checkpoint(path, map_location="cpu")
    if state.get("aslseg") != "ssl":
        raise InputError(f"{path}: not an ASLseg stage I checkpoint")
    net = SSLNet(state["ssl_method"], state["features"], state.get("ema_decay", 0.99))
    net.load_state_dict(state["model"])
    return net.to(device).eval()
