"""The 2-D networks of ASLseg (MONAI's ``BasicUNet``) and their use on stacks of slices."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = ["basic_unet", "flip_pairs", "load_weights", "tumour_probability"]


def basic_unet(in_channels: int, features: Sequence[int]) -> nn.Module:
    """A 2-D MONAI ``BasicUNet`` with 2 output classes (background, tumour); it is built quietly
    (MONAI prints its features)."""
    from monai.networks.nets import BasicUNet

    with contextlib.redirect_stdout(io.StringIO()):
        return BasicUNet(spatial_dims=2, in_channels=in_channels, out_channels=2,
                         features=tuple(int(f) for f in features))  # fmt: skip


def load_weights(net: nn.Module, checkpoint: str | Path | None, kind: str) -> nn.Module:
    """``net`` with the weights of a stage checkpoint of ``kind`` (``ssl``, ``sam``, ``adapt``;
    a warm start), or as it is when ``checkpoint`` is None."""
    if checkpoint is None:
        return net
    from tumorsynth.errors import InputError
    from tumorsynth.segment.checkpoint import load_checkpoint

    state = load_checkpoint(checkpoint, map_location="cpu")
    if state.get("aslseg") != kind:
        raise InputError(f"{checkpoint}: not an ASLseg {kind} checkpoint")
    net.load_state_dict(state["model"])
    return net


@torch.no_grad()
def tumour_probability(
    net: nn.Module, inputs: np.ndarray, device: torch.device, batch_size: int = 32
) -> np.ndarray:
    """The tumour probability (softmax, class 1) of ``net`` on (N, C, S, S) or (N, S, S) inputs:
    (N, S, S) float32, in eval mode, batch by batch."""
    net.eval()
    x_all = np.asarray(inputs, np.float32)
    if x_all.ndim == 3:
        x_all = x_all[:, None]
    out = np.zeros((len(x_all), *x_all.shape[2:]), np.float32)
    for start in range(0, len(x_all), batch_size):
        x = torch.from_numpy(x_all[start : start + batch_size]).to(device)
        out[start : start + len(x)] = torch.softmax(net(x).float(), 1)[:, 1].cpu().numpy()
    return out


def flip_pairs(arrays: Sequence[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """The same random flips (each in-plane axis with probability 0.5) of every sample across
    ``arrays`` (each (B, ..., S, S))."""
    n = len(arrays[0])
    flips = rng.random((n, 2)) < 0.5
    out = [np.array(a, copy=True) for a in arrays]
    for i in range(n):
        axes = [ax for ax, f in zip((-2, -1), flips[i], strict=True) if f]
        if axes:
            for a in out:
                a[i] = np.flip(a[i], axis=axes)
    return out
