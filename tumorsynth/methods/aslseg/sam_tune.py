r"""Stage II: SAM's mask decoder fine-tuned on labelled slices with jittered box prompts.

The image encoder and the prompt encoder stay frozen, so each labelled slice's image embedding is
computed once; a step draws ``sam_batch_size`` tumour components (one box each, every side moved
by up to ``box_jitter`` of the box size) and fits the decoder's mask to the component with
:math:`\mathrm{Dice} + \mathrm{BCE}` on the logits. Checkpoints hold the prompt encoder and mask
decoder (:class:`PromptHead`): the tuned SAM is the base checkpoint plus them
(:func:`load_tuned_sam`).
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
from tumorsynth.methods.aslseg.nets import load_weights
from tumorsynth.methods.aslseg.prompts import boxes as boxes_of
from tumorsynth.methods.aslseg.prompts import components, jitter
from tumorsynth.methods.aslseg.sam import SamPrompter, load_sam
from tumorsynth.methods.aslseg.slices import Slices
from tumorsynth.segment.checkpoint import load_checkpoint
from tumorsynth.train.trainer import RunSettings, Trainer

__all__ = ["PromptHead", "SamTuner", "load_tuned_sam", "prompter_for"]


class PromptHead(nn.Module):
    """The prompt encoder and mask decoder of a SAM (the same modules, not copies): what stage II
    trains and saves."""

    def __init__(self, sam: nn.Module) -> None:
        super().__init__()
        self.prompt_encoder = sam.prompt_encoder
        self.mask_decoder = sam.mask_decoder


def prompter_for(config: ASLsegConfig, sam: nn.Module, device: torch.device) -> SamPrompter:
    """The config's preprocessing around ``sam``."""
    return SamPrompter(sam, config.sam_preprocess, device, config.amp)


def load_tuned_sam(
    config: ASLsegConfig, base: str | Path | None, head: str | Path | None, device: torch.device
) -> nn.Module:
    """The base SAM (``base``: its checkpoint; None: ``tiny`` with random weights) with the
    prompt encoder and mask decoder of a stage II checkpoint (``head``; None: untuned)."""
    sam = load_sam(config.sam_model, base, device)
    if head is not None:
        state = load_checkpoint(head, map_location="cpu")
        if state.get("aslseg") != "sam":
            raise InputError(f"{head}: not an ASLseg stage II checkpoint")
        PromptHead(sam).load_state_dict(state["model"])
    return sam.eval()


class SamTuner(Trainer):
    """Fine-tunes the mask decoder (see the module).

    Parameters
    ----------
    config : RunSettings
    method : ASLsegConfig
    labelled : Slices
        The labelled set; its slices with tumour give the prompts.
    sam_checkpoint : path or None
        The base SAM's weights (None: ``tiny`` with random weights).
    init : path, optional
        A stage II checkpoint whose prompt encoder and mask decoder to start from (a warm start).
    """

    metric_columns = ("loss", "lr", "data_s", "step_s")
    architecture_keys = ("sam_model",)

    def __init__(self, config: RunSettings, method: ASLsegConfig, labelled: Slices,
                 sam_checkpoint: str | Path | None, init: str | Path | None = None,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(config, **kwargs)
        self.method, self.sam_checkpoint, self.init = method, sam_checkpoint, init
        self.labelled = labelled.take(labelled.tumour.any(axis=(1, 2)))
        if not len(self.labelled):
            raise InputError("stage II: no labelled slice holds tumour (no box to prompt with)")

    def build_data(self) -> None:
        device = self.runtime.device
        self.sam = load_sam(self.method.sam_model, self.sam_checkpoint, device)
        self.sam.requires_grad_(False)
        self.prompter = prompter_for(self.method, self.sam, device)
        self.embeddings = self.prompter.embed(self.labelled.image)
        self.items = [(i, c) for i, mask in enumerate(self.labelled.tumour)
                      for c in components(mask, 1)]  # fmt: skip

    def build_network(self) -> nn.Module:
        head = load_weights(PromptHead(self.sam), self.init, "sam")
        head.mask_decoder.requires_grad_(True)
        return head

    def build_optimizer(self, network: nn.Module) -> torch.optim.Optimizer:
        cfg = self.config
        return torch.optim.AdamW(network.mask_decoder.parameters(), lr=cfg.lr,
                                 weight_decay=cfg.weight_decay)  # fmt: skip

    def build_loss(self):
        from monai.losses import DiceCELoss

        return DiceCELoss(sigmoid=True, batch=True)

    def build_loader(self) -> Iterator[list[tuple[int, np.ndarray, np.ndarray]]]:
        rng = np.random.default_rng([self.config.seed, self.step])
        size, jit = self.labelled.size, self.method.box_jitter
        while True:
            picks = rng.integers(len(self.items), size=self.method.sam_batch_size)
            yield [(self.items[k][0], jitter(boxes_of(self.items[k][1]), jit, size, rng),
                    self.items[k][1]) for k in picks]  # fmt: skip

    def compute_loss(self, batch: list[tuple[int, np.ndarray, np.ndarray]]) -> torch.Tensor:
        size = self.labelled.size
        logits = torch.stack([self.prompter.decode(self.embeddings[i : i + 1], box, size)
                              for i, box, _ in batch])  # fmt: skip
        target = torch.as_tensor(np.stack([m for _, _, m in batch])[:, None],
                                 dtype=torch.float32, device=logits.device)  # fmt: skip
        return self.loss_fn(logits.float(), target)

    def checkpoint_meta(self) -> dict[str, Any]:
        m = self.method
        base = None if self.sam_checkpoint is None else str(self.sam_checkpoint)
        return {"aslseg": "sam", "sam_model": m.sam_model, "sam_preprocess": m.sam_preprocess,
                "base_checkpoint": base}  # fmt: skip
