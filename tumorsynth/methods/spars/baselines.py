r"""The baselines SPARS is compared with, from the same classifier on the same volumes.

- :func:`sliding_window_map`: the classifier's exhaustive map, every window at every ``step_vox``
  offset of the liver's box (what the agents could find if they visited everything); each voxel
  gets the maximum and the mean score of the windows over it.
- :func:`gradcam_map`: Grad-CAM (MONAI's :class:`~monai.visualize.GradCAM`) of the same classifier
  over a half-overlapping tiling of the box, each window's map (normalised to [0, 1] by MONAI)
  weighted by the window's score, the maximum kept per voxel.
- Random-walk agents are :func:`~tumorsynth.methods.spars.infer.play` with
  :func:`~tumorsynth.methods.spars.infer.random_actor` for both agents.

The supervised segmenter of ``tumorsynth train`` is the fourth baseline
(:mod:`~tumorsynth.methods.spars.compare` runs its checkpoint through
:class:`~tumorsynth.segment.Predictor`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from tumorsynth.methods.spars.volumes import WorkVolume

__all__ = ["gradcam_map", "grid_corners", "sliding_window_map"]

BATCH = 256
"""Windows per classifier call."""


def grid_corners(shape: Sequence[int], window: Sequence[int], stride: Sequence[int]) -> np.ndarray:
    """First voxels of windows at ``stride`` over a box of ``shape``, the last flush with its end:
    (K, 3) int64."""
    axes = []
    for n, w, s in zip(shape, window, stride, strict=True):
        hi = int(n) - int(w)
        axes.append(np.unique(np.r_[np.arange(0, hi + 1, max(int(s), 1)), hi]))
    return np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3).astype(np.int64)


def _crops(volume: WorkVolume, corners: np.ndarray, window: Sequence[int]) -> np.ndarray:
    return np.stack(
        [
            volume.image[tuple(slice(a, a + w) for a, w in zip(c, window, strict=False))]
            for c in corners
        ]
    )[:, None]


def sliding_window_map(
    volume: WorkVolume,
    scorer: Callable[[np.ndarray], np.ndarray],
    window_vox: Sequence[int],
    step_vox: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The exhaustive map: the maximum and the mean score of the windows over each voxel.

    Returns
    -------
    map_max, map_mean : numpy.ndarray
        (X, Y, Z) float32 on the box.
    """
    corners = grid_corners(volume.shape, window_vox, [step_vox] * 3)
    scores = np.concatenate(
        [scorer(_crops(volume, corners[i : i + BATCH], window_vox))
         for i in range(0, len(corners), BATCH)]
    )  # fmt: skip
    map_max = np.zeros(volume.shape, np.float32)
    total = np.zeros(volume.shape, np.float32)
    count = np.zeros(volume.shape, np.float32)
    for corner, score in zip(corners, scores, strict=True):
        box = tuple(slice(a, a + w) for a, w in zip(corner, window_vox, strict=False))
        np.maximum(map_max[box], score, out=map_max[box])
        total[box] += score
        count[box] += 1
    return map_max, total / np.maximum(count, 1)


def gradcam_map(
    volume: WorkVolume,
    classifier: nn.Module,
    window_vox: Sequence[int],
    target_layer: str,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Score-weighted Grad-CAM of ``classifier`` over a half-overlapping tiling of the box, the
    maximum per voxel: (X, Y, Z) float32 in [0, 1].

    Parameters
    ----------
    target_layer : str
        The layer whose activations Grad-CAM weighs (e.g. ``"net.layer_1"`` of MONAI's
        ``Classifier``).
    """
    from monai.visualize import GradCAM

    net = classifier.to(device).eval()
    needed = [p.requires_grad for p in net.parameters()]
    net.requires_grad_(True)  # Grad-CAM needs gradients of the activations
    try:
        cam = GradCAM(nn_module=net, target_layers=target_layer)
        corners = grid_corners(volume.shape, window_vox, [max(w // 2, 1) for w in window_vox])
        out = np.zeros(volume.shape, np.float32)
        for i in range(0, len(corners), BATCH):
            part = corners[i : i + BATCH]
            x = torch.from_numpy(_crops(volume, part, window_vox)).to(device)
            with torch.no_grad():
                score = torch.sigmoid(net(x)).reshape(-1, 1, 1, 1).cpu().numpy()
            maps = cam(x=x, class_idx=0).detach().cpu().numpy()[:, 0] * score
            for corner, m in zip(part, maps, strict=True):
                box = tuple(slice(a, a + w) for a, w in zip(corner, window_vox, strict=False))
                np.maximum(out[box], m, out=out[box])
    finally:
        for p, flag in zip(net.parameters(), needed, strict=True):
            p.requires_grad_(flag)
    return out
