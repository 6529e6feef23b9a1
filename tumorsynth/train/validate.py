"""Validation during training: sliding-window inference on whole labelled volumes, Dice per class."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from tumorsynth.train.config import TrainConfig
from tumorsynth.train.data import ValCase, window

__all__ = ["predict_volume", "validate"]


@torch.no_grad()
def predict_volume(
    model: nn.Module,
    image_hu: np.ndarray | torch.Tensor,
    *,
    patch_size: Sequence[int],
    window_hu: Sequence[float],
    device: torch.device | str = "cpu",
    overlap: float = 0.5,
    sw_batch_size: int = 4,
    amp: bool = False,
) -> torch.Tensor:
    """Labels (0 background, 1 organ, 2 tumour) of one (X, Y, Z) CT in HU, by sliding windows of
    ``patch_size`` with Gaussian blending; a (X, Y, Z) uint8 tensor on the CPU."""
    from monai.inferers import sliding_window_inference

    x = torch.as_tensor(image_hu)[None, None].to(device)
    x = window(x, tuple(window_hu))
    model.eval()
    ctx = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if amp
        else torch.autocast("cpu", enabled=False)
    )
    with ctx:
        logits = sliding_window_inference(
            x, tuple(patch_size), sw_batch_size, model, overlap=overlap, mode="gaussian"
        )
    return logits.argmax(1)[0].to(torch.uint8).cpu()


def _dice(pred: torch.Tensor, gt: torch.Tensor) -> float:
    """Dice of two boolean masks; 1 when both are empty."""
    total = int(pred.sum()) + int(gt.sum())
    return 1.0 if total == 0 else 2.0 * int((pred & gt).sum()) / total


@torch.no_grad()
def validate(
    model: nn.Module,
    cases: Sequence[ValCase],
    config: TrainConfig,
    device: torch.device,
    amp: bool = False,
) -> dict[str, float]:
    """Mean tumour and organ Dice of ``model`` over ``cases`` (organ = organ or tumour, as
    LiTS scores the liver)."""
    tumour, organ = [], []
    for case in cases:
        pred = predict_volume(
            model, case.image, patch_size=config.patch_size, window_hu=config.window_hu,
            device=device, overlap=config.sw_overlap, sw_batch_size=config.sw_batch_size, amp=amp,
        )  # fmt: skip
        gt = torch.from_numpy(case.label)
        tumour.append(_dice(pred == 2, gt == 2))
        organ.append(_dice(pred >= 1, gt >= 1))
    return {"tumour_dice": float(np.mean(tumour)), "organ_dice": float(np.mean(organ))}
