"""Validation during training: whole labelled volumes segmented as ``tumorsynth predict`` would
(the same :class:`~tumorsynth.predict.Predictor`: the checkpoint's voxel size, sliding windows),
so that ``best.pt`` is chosen under the preprocessing it is used with."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tumorsynth.evaluate.metrics import dice
from tumorsynth.predict import Predictor
from tumorsynth.train.data import ValCase

__all__ = ["validate"]


def validate(predictor: Predictor, cases: Sequence[ValCase]) -> dict[str, float]:
    """Mean tumour and organ Dice of ``predictor`` over ``cases`` (organ = organ or tumour, as
    LiTS scores the liver; both empty counts 1)."""
    tumour, organ = [], []
    for case in cases:
        pred = predictor(case.image, case.spacing_mm)
        tumour.append(dice(pred == 2, case.label == 2))
        organ.append(dice(pred >= 1, case.label >= 1))
    return {"tumour_dice": float(np.mean(tumour)), "organ_dice": float(np.mean(organ))}
