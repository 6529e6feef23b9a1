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
    codes: Sequence[tuple[int, int]] = ((1, 2),),
) -> dict[str, float]:
    """Mean tumour and organ Dice of ``predictor`` over ``cases`` (organ = organ or tumour, as
    LiTS scores the liver; both empty counts 1). ``total`` sums the (tumour, organ, count) sums
    over the ranks of a run, each of which validated its share of the cases. ``codes``: the
    (organ, tumour) label codes of the trained organs; the tumour is any of their tumours, the
    organ any organ or tumour code."""
    tumours = [t for _, t in codes]
    organs = [c for pair in codes for c in pair]
    sums = np.zeros(3)
    for case in cases:
        pred = predictor(case.image, case.spacing_mm)
        tumour_dice = dice(np.isin(pred, tumours), np.isin(case.label, tumours))
        organ_dice = dice(np.isin(pred, organs), np.isin(case.label, organs))
        sums += (tumour_dice, organ_dice, 1.0)
    if total is not None:
        sums = total(sums)
    n = max(sums[2], 1.0)
    return {"tumour_dice": float(sums[0] / n), "organ_dice": float(sums[1] / n)}
