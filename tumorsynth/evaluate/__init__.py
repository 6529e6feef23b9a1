"""Evaluate tumour segmentations: Dice, surface Dice and lesion-wise detection by size.

- :mod:`tumorsynth.evaluate.metrics`: pure functions on (X, Y, Z) arrays with their spacing in mm
  (:func:`evaluate_case` for one case), for reuse per case.
- :mod:`tumorsynth.evaluate.summary`: :func:`summarise` pools cases (``summary.json``).
- :mod:`tumorsynth.evaluate.report`: :func:`evaluate_files` pairs and reads label maps on disk and
  writes ``cases.csv``, ``lesions.csv``, ``summary.json`` and ``summary.png``
  (``tumorsynth evaluate``).

The surface Dice needs ``torch`` and ``monai``, the figure ``matplotlib`` (the ``train`` extra);
they are imported on first use.
"""

from __future__ import annotations

from tumorsynth.evaluate.metrics import (
    BIN_NAMES,
    CONNECTIVITY,
    RADIUS_BINS_MM,
    CaseMetrics,
    Detection,
    Lesion,
    bin_name,
    detection,
    dice,
    equivalent_radius_mm,
    evaluate_case,
    lesions,
    surface_dice,
)
from tumorsynth.evaluate.report import EvaluationReport, evaluate_files, pair_files
from tumorsynth.evaluate.summary import summarise, summary_table

__all__ = [
    "BIN_NAMES",
    "CONNECTIVITY",
    "RADIUS_BINS_MM",
    "CaseMetrics",
    "Detection",
    "EvaluationReport",
    "Lesion",
    "bin_name",
    "detection",
    "dice",
    "equivalent_radius_mm",
    "evaluate_case",
    "evaluate_files",
    "lesions",
    "pair_files",
    "summarise",
    "summary_table",
    "surface_dice",
]
