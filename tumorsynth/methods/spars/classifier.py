r"""The presence classifier: a MONAI 3-D CNN that scores a window for "tumour in it", and the
scorer the environments call.

The network is MONAI's :class:`~monai.networks.nets.Classifier` (stride-2 convolution blocks with
batch norm, as the paper's conv / BN / ReLU / pool blocks, then one linear layer to a logit); its
input is exactly the agents' window, so the classifier is trained at the scale it is used at (the
authors' code trains on 96 x 96 x 64 crops and scores 48 x 48 x 24 windows, both resized).

Examples
--------
>>> net = build_classifier(classifier_spec(SparsConfig()))
>>> scorer = WindowScorer(net)
>>> scorer(np.zeros((2, 1, 8, 8, 8), np.float32)).shape
(2,)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tumorsynth.errors import InputError
from tumorsynth.methods.spars.config import SparsConfig
from tumorsynth.segment.checkpoint import load_checkpoint

__all__ = ["WindowScorer", "build_classifier", "classifier_spec", "load_classifier"]


def classifier_spec(config: SparsConfig) -> dict[str, Any]:
    """How to build the classifier of ``config`` (recorded in its checkpoints)."""
    return {
        "network": "monai.Classifier",
        "in_shape": [1, *config.window_vox],
        "channels": list(config.clf_channels),
        "strides": [2] * len(config.clf_channels),
        "norm": "batch",
        "num_res_units": config.clf_res_units,
    }


def build_classifier(spec: dict[str, Any]) -> nn.Module:
    """The classifier a :func:`classifier_spec` describes: one logit per window."""
    from monai.networks.nets import Classifier

    return Classifier(
        in_shape=tuple(spec["in_shape"]),
        classes=1,
        channels=tuple(spec["channels"]),
        strides=tuple(spec["strides"]),
        norm=spec["norm"],
        num_res_units=spec["num_res_units"],
    )


def load_classifier(
    path: str | Path, config: SparsConfig | None = None, device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """A trained classifier (eval mode, on ``device``) and its checkpoint's metadata.

    Parameters
    ----------
    path : str or Path
        ``classifier/checkpoints/best.pt`` (or ``last.pt``) of a SPARS run.
    config : SparsConfig, optional
        When given, the checkpoint must hold the classifier this config describes.

    Raises
    ------
    InputError
        A missing or unreadable file, a checkpoint that holds no SPARS classifier, or a
        classifier of another architecture than ``config``'s (both named).
    """
    state = load_checkpoint(path)
    spec = state.get("classifier")
    if not isinstance(spec, dict) or spec.get("network") != "monai.Classifier":
        raise InputError(f"{path}: not a SPARS classifier checkpoint (no classifier spec in it)")
    if config is not None and spec != classifier_spec(config):
        want = classifier_spec(config)
        diff = {k: (spec.get(k), want[k]) for k in want if spec.get(k) != want[k]}
        raise InputError(
            f"{path}: a classifier of another architecture than the config's "
            f"(checkpoint vs config: {diff})"
        )
    net = build_classifier(spec)
    try:
        net.load_state_dict(state["model"])
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise InputError(f"{path}: the weights do not fit the classifier ({first})") from None
    net.to(device).eval()
    meta = {k: v for k, v in state.items() if k not in ("model", "optimizer", "scheduler")}
    return net, meta


class WindowScorer:
    """Scores windows with a classifier: (N, 1, X, Y, Z) float32 crops in [0, 1] in, (N,) float32
    probabilities of tumour out, in one forward pass (inference mode, eval-mode batch norm).

    Attributes
    ----------
    calls : int
        Forward passes so far (the environments' batching is tested through it).
    """

    def __init__(self, net: nn.Module, device: str | torch.device = "cpu") -> None:
        self.net = net.to(device).eval().requires_grad_(False)
        self.device = torch.device(device)
        self.calls = 0

    @torch.inference_mode()
    def __call__(self, crops: np.ndarray) -> np.ndarray:
        self.calls += 1
        x = torch.as_tensor(np.asarray(crops, np.float32), device=self.device)
        return torch.sigmoid(self.net(x).reshape(-1)).float().cpu().numpy()
