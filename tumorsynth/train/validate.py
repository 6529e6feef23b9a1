"""Validation during training: whole labelled volumes segmented as ``tumorsynth predict`` would
(the same :class:`~tumorsynth.segment.predict.Predictor`: the checkpoint's voxel size, sliding windows),
so that ``best.pt`` is chosen under the preprocessing it is used with; every rank of a run
validates its share of the cases."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from tumorsynth.evaluate.metrics import dice
from tumorsynth.segment.predict import Predictor
from tumorsynth.train.data import ValCase

__all__ = ["validate"]


def validate(
    predictor: Predictor,
    cases: Sequence[ValCase],
    total: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict[str, float]:
    """Mean tumour and organ Dice of ``predictor`` over ``cases`` (organ = organ or tumour, as
    LiTS scores the liver; both empty counts 1). ``total`` sums the (tumour, organ, count) sums
    over the ranks of a run, each of which validated its share of the cases."""
    sums = np.zeros(3)
    for case in cases:
        pred = predictor(case.image, case.spacing_mm)
        sums += (dice(pred == 2, case.label == 2), dice(pred >= 1, case.label >= 1), 1.0)
    if total is not None:
        sums = total(sums)
    n = max(sums[2], 1.0)
    return {"tumour_dice": float(sums[0] / n), "organ_dice": float(sums[1] / n)}
