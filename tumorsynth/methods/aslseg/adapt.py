r"""Stage III: the adaptation network, which repairs SAM's masks, trained on synthetic pseudo-labels.

For a labelled slice :math:`(x, y)` a step makes a synthetic pseudo-label :math:`\tilde y = C(y)`
(:func:`~tumorsynth.methods.aslseg.corrupt.corrupt`: the errors a segmenter makes), prompts the
tuned SAM with one box per component of :math:`\tilde y` to get :math:`s`, and trains the network
:math:`g` (MONAI ``BasicUNet``, 3 input channels) to map :math:`[x, s, \tilde y]` to :math:`y` with
Dice + CE. On an unlabelled slice :math:`\tilde y` is stage I's prediction, so :math:`g` meets
there the situation it was trained on.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tumorsynth.errors import InputError
from tumorsynth.methods.aslseg.config import ASLsegConfig
from tumorsynth.methods.aslseg.corrupt import corrupt
from tumorsynth.methods.aslseg.nets import basic_unet, flip_pairs, load_weights
from tumorsynth.methods.aslseg.sam import SamPrompter
from tumorsynth.methods.aslseg.slices import Slices
from tumorsynth.segment.checkpoint import load_checkpoint
from tumorsynth.train.trainer import RunSettings, Trainer

__all__ = ["AdaptTrainer", "Refiner", "adapter_inputs", "load_adapter", "synthetic_pseudo_labels"]

PROMPT_LOGIT = 2.0
"""Initial weight of the prompt in the tumour logit (:class:`Refiner`)."""


class Refiner(nn.Module):
    r"""The adaptation network: a ``BasicUNet`` on :math:`[x, s, \tilde y]` whose tumour logit
    starts from the prompt's, :math:`z = u(x, s, \tilde y) + \beta (2\tilde y - 1)` with a learnt
    :math:`\beta` (initially :data:`PROMPT_LOGIT`): it learns corrections of the pseudo-label, and
    an untrained one returns it rather than noise."""

    def __init__(self, features, prompt_logit: float = PROMPT_LOGIT) -> None:
        super().__init__()
        self.net = basic_unet(3, features)
        self.prompt_weight = nn.Parameter(torch.tensor(float(prompt_logit)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shift = self.prompt_weight * (2.0 * x[:, 2:3] - 1.0)
        return self.net(x) + torch.cat([torch.zeros_like(shift), shift], dim=1)


def adapter_inputs(image: np.ndarray, sam_prob: np.ndarray, prompt: np.ndarray) -> np.ndarray:
    """(N, 3, S, S) float32 input of the adaptation network: slice, SAM probability, prompt."""
    return np.stack([image, sam_prob, prompt], axis=1).astype(np.float32)


def synthetic_pseudo_labels(
    tumour: np.ndarray, liver: np.ndarray, rng: np.random.Generator, operations
) -> np.ndarray:
    """(N, S, S) bool: each true mask of ``tumour`` (N, S, S) corrupted once inside its
    ``liver`` (see :func:`~tumorsynth.methods.aslseg.corrupt.corrupt`)."""
    out = np.zeros(tumour.shape, bool)
    for i in range(len(tumour)):
        out[i], _ = corrupt(tumour[i], liver[i], rng, operations)
    return out


class AdaptTrainer(Trainer):
    """Trains the adaptation network (see the module).

    Parameters
    ----------
    config : RunSettings
    method : ASLsegConfig
    labelled : Slices
        The labelled set (with and without tumour).
    prompter : SamPrompter
        The round's tuned SAM (frozen).
    init : path, optional
        A stage III checkpoint to start from (a warm start); None: from scratch.
    """

    metric_columns = ("loss", "lr", "data_s", "step_s")
    architecture_keys = ("features",)

    def __init__(self, config: RunSettings, method: ASLsegConfig, labelled: Slices,
                 prompter: SamPrompter, init: str | Path | None = None,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(config, **kwargs)
        self.init = init
        if not len(labelled):
            raise InputError("stage III: the labelled set is empty")
        self.method, self.labelled, self.prompter = method, labelled, prompter

    def build_data(self) -> None:
        self.prompter.sam.requires_grad_(False)
        self.embeddings = self.prompter.embed(self.labelled.image)

    def build_network(self) -> nn.Module:
        return load_weights(Refiner(self.method.adapt_features), self.init, "adapt")

    def build_loss(self):
        from monai.losses import DiceCELoss

        return DiceCELoss(to_onehot_y=True, softmax=True, include_background=False, batch=True)

    def build_loader(self) -> Iterator[dict[str, torch.Tensor]]:
        rng = np.random.default_rng([self.config.seed, self.step])
        m, data = self.method, self.labelled
        while True:
            i = rng.integers(len(data), size=m.adapt_batch_size)
            prompt = synthetic_pseudo_labels(data.tumour[i], data.liver[i], rng, m.corruptions)
            sam_prob = self.prompter.probabilities(self.embeddings[i], prompt, m.min_area_px)
            x, y = flip_pairs(
                [adapter_inputs(data.image[i], sam_prob, prompt), data.tumour[i]], rng
            )
            yield {"input": torch.from_numpy(x),
                   "target": torch.from_numpy(y[:, None].astype(np.int64))}  # fmt: skip

    def prepare_batch(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.to(self.runtime.device, non_blocking=True) for k, v in batch.items()}

    def checkpoint_meta(self) -> dict[str, Any]:
        return {"aslseg": "adapt", "features": list(self.method.adapt_features)}


def load_adapter(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """The adaptation network of an :class:`AdaptTrainer` checkpoint, in eval mode.

    Raises
    ------
    InputError
        A missing or unreadable file, or a checkpoint of another kind.
    """
    state = load_checkpoint(path, map_location="cpu")
    if state.get("aslseg") != "adapt":
        raise InputError(f"{path}: not an ASLseg stage III checkpoint")
    net = Refiner(state["features"])
    net.load_state_dict(state["model"])
    return net.to(device).eval()
