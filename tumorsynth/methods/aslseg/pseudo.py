r"""The pipeline on slices: stage I's mask, SAM prompted by it, the adaptation network's repair.

For a slice :math:`u` with liver :math:`\ell`:

- :math:`p = \sigma(f(u))`, :math:`\hat y_f = [p > 0.5] \wedge \ell` without components under
  ``min_area_px``;
- :math:`s = \mathrm{SAM}(u, \mathrm{boxes}(\hat y_f))` (0 where :math:`\hat y_f` is empty);
- :math:`q = \sigma(g([u, s, \hat y_f]))`, :math:`\hat y_{ref} = [q > 0.5] \wedge \ell`, small
  components removed;
- agreement :math:`a(u) = \mathrm{Dice}(\hat y_f, \hat y_{ref})` (1 when both are empty) and
  confidence :math:`c(u)`, the mean of :math:`\max(q, 1 - q)` over the liver.

The same function serves the loop (pseudo-labels of the unlabelled set), the ablation and
``tumorsynth aslseg segment``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from tumorsynth.methods.aslseg.adapt import adapter_inputs
from tumorsynth.methods.aslseg.nets import tumour_probability
from tumorsynth.methods.aslseg.prompts import remove_small
from tumorsynth.methods.aslseg.sam import SamPrompter
from tumorsynth.methods.aslseg.slices import Slices

__all__ = ["CHUNK", "Models", "Pseudo", "dice_per_slice", "pseudo_labels"]

CHUNK = 256
"""Slices whose SAM embeddings are held at once."""


@dataclass(frozen=True, eq=False)
class Models:
    """The networks of one round: stage I's segmenter, the tuned SAM, the adaptation network
    (the last two None when only stage I is used)."""

    segmenter: nn.Module
    prompter: SamPrompter | None
    adapter: nn.Module | None
    device: torch.device


@dataclass(frozen=True, eq=False)
class Pseudo:
    """Per slice: the masks and scores of the pipeline (see the module); (N, S, S) arrays and
    (N,) scores (NaN where SAM and the adaptation network were not run)."""

    stage1: np.ndarray
    sam: np.ndarray
    refined: np.ndarray
    refined_prob: np.ndarray
    agreement: np.ndarray
    confidence: np.ndarray


def dice_per_slice(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N,) Dice of two (N, S, S) mask stacks, 1.0 where both are empty."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    inter = (a & b).sum(axis=(1, 2))
    total = a.sum(axis=(1, 2)) + b.sum(axis=(1, 2))
    return np.where(total > 0, 2.0 * inter / np.maximum(total, 1), 1.0)


def pseudo_labels(
    models: Models, slices: Slices, min_area_px: int, *, progress: bool = False
) -> Pseudo:
    """Run the pipeline on ``slices`` (see the module), ``CHUNK`` slices at a time (with a
    progress bar over them when ``progress``)."""
    from tqdm.auto import tqdm

    n, shape = len(slices), slices.image.shape
    stage1 = np.zeros(shape, bool)
    sam = np.zeros(shape, np.float32)
    q = np.full(shape, np.nan, np.float32)
    starts = range(0, n, CHUNK)
    for start in tqdm(starts, desc="pseudo-label", unit="chunk", disable=not progress):
        part = slices.take(np.arange(start, min(start + CHUNK, n)))
        p = tumour_probability(models.segmenter, part.image, models.device)
        y_f = remove_small((p > 0.5) & part.liver, min_area_px)
        stage1[start : start + len(part)] = y_f
        if models.prompter is None or models.adapter is None:
            continue
        emb = models.prompter.embed(part.image)
        s = models.prompter.probabilities(emb, y_f, min_area_px)
        sam[start : start + len(part)] = s
        inputs = adapter_inputs(part.image, s, y_f.astype(np.float32))
        q[start : start + len(part)] = tumour_probability(models.adapter, inputs, models.device)
    if models.adapter is None:
        nan = np.full(n, np.nan)
        return Pseudo(stage1, sam > 0.5, stage1, q, nan, nan)
    refined = remove_small((q > 0.5) & slices.liver, min_area_px)
    certainty = np.where(slices.liver, np.maximum(q, 1.0 - q), 0.0).sum(axis=(1, 2))
    confidence = certainty / np.maximum(slices.liver.sum(axis=(1, 2)), 1)
    return Pseudo(stage1, (sam > 0.5) & slices.liver, refined, q,
                  dice_per_slice(stage1, refined), confidence)  # fmt: skip
