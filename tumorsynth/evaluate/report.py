"""Evaluate predicted label maps on disk against their ground truth, and write the reports.

A prediction and its ground truth are two files, or two folders of image files paired by case
name, as ``tumorsynth predict`` names its outputs (:func:`tumorsynth.dataset.sources.case_name`): the
file name without its format ending and a trailing ``_0000`` channel suffix, other characters
than letters, digits, ``_`` and ``-`` replaced by ``_``. So ``labelsTs/case_001.nii.gz`` pairs
with ``predictions/case_001.nii.gz``, and ``labelsTs/case.01.nii.gz`` with ``case_01.nii.gz``.
A prediction on another grid than its ground truth (another orientation, resolution or crop of
the same region) is resampled onto the ground-truth grid by world position, nearest neighbour,
with a note.

Every input is paired and read before anything is written, so a missing, unmatched or unreadable
file stops the run with an :class:`~tumorsynth.errors.InputError` and no output. The reports are
written atomically: ``cases.csv``, ``lesions.csv``, ``summary.json`` and ``summary.png``.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
from tqdm.auto import tqdm

from tumorsynth.dataset.sources import case_name
from tumorsynth.errors import InputError
from tumorsynth.evaluate.figure import write_summary_figure
from tumorsynth.evaluate.metrics import CaseMetrics, evaluate_case
from tumorsynth.evaluate.summary import summarise
from tumorsynth.io.case import grid_text, nearest_onto, same_grid
from tumorsynth.io.volume import (
    IMAGE_SUFFIXES,
    image_suffix,
    read_image,
    to_array,
    write_text_atomic,
)

__all__ = ["EvaluationReport", "csv_text", "evaluate_files", "pair_files"]

log = logging.getLogger("tumorsynth.evaluate")

CASE_COLUMNS = ("case", "dice", "nsd", "organ_dice", "n_lesions", "n_detected", "n_false_positives")
LESION_COLUMNS = (
    "case", "kind", "component", "n_voxels", "volume_mm3", "radius_mm", "bin", "detected",
    "centroid_x_vox", "centroid_y_vox", "centroid_z_vox",
)  # fmt: skip


@dataclass(frozen=True)
class EvaluationReport:
    """What :func:`evaluate_files` measured and wrote.

    Attributes
    ----------
    cases : dict of str to CaseMetrics
        Per case, in name order.
    summary : dict
        The content of ``summary.json``.
    files : dict of str to Path
        ``cases_csv``, ``lesions_csv``, ``summary_json`` and ``summary_png``.
    notes : tuple of str
        What was done to the inputs (predictions resampled onto the ground-truth grid).
    """

    cases: dict[str, CaseMetrics]
    summary: dict
    files: dict[str, Path] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def _listing(folder: Path, what: str) -> dict[str, Path]:
    files = sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and image_suffix(p)
    )
    if not files:
        endings = ", ".join(IMAGE_SUFFIXES)
        raise InputError(f"{folder}: no {what} image files ({endings}) in this folder")
    out: dict[str, Path] = {}
    for path in files:
        name = case_name(path)
        if name in out:
            raise InputError(f"{out[name]} and {path.name}: two {what} files for case {name!r}")
        out[name] = path
    return out


def _some(names: list[str], limit: int = 6) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def pair_files(pred: str | Path, gt: str | Path) -> list[tuple[str, Path, Path]]:
    """Pair predictions with ground truths: two files, or two folders matched by case name
    (:func:`tumorsynth.dataset.sources.case_name`, as ``tumorsynth predict`` names its outputs).

    Returns
    -------
    list of (name, prediction path, ground-truth path)
        Sorted by name.

    Raises
    ------
    InputError
        A missing path, a file paired with a folder, a folder without image files, two files for one
        case, or ground truths without a prediction and predictions without a ground truth (all of
        them named).
    """
    pred, gt = Path(pred), Path(gt)
    for path in (pred, gt):
        if not path.exists():
            raise InputError(f"{path}: no such file or folder")
    if pred.is_dir() != gt.is_dir():
        folder, file = (pred, gt) if pred.is_dir() else (gt, pred)
        raise InputError(f"{folder} is a folder but {file} a file; give two files or two folders")
    if not gt.is_dir():
        return [(case_name(gt), pred, gt)]
    preds, gts = _listing(pred, "prediction"), _listing(gt, "ground-truth")
    missing = sorted(set(gts) - set(preds))
    extra = sorted(set(preds) - set(gts))
    problems = []
    if missing:
        problems.append(
            f"{len(missing)} ground truth(s) in {gt} have no prediction in {pred}: "
            + _some([gts[k].name for k in missing])
        )
    if extra:
        problems.append(
            f"{len(extra)} prediction(s) in {pred} have no ground truth in {gt}: "
            + _some([preds[k].name for k in extra])
        )
    if problems:
        raise InputError("; ".join(problems))
    return [(name, preds[name], gts[name]) for name in sorted(gts)]


def _label_array(image: sitk.Image, path: Path) -> np.ndarray:
    array = to_array(image)
    if not np.issubdtype(array.dtype, np.integer) and not (np.mod(array, 1) == 0).all():
        raise InputError(f"{path}: not a label map (it holds non-integer values)")
    return array


def _read_case(pred_path: Path, gt_path: Path) -> tuple[np.ndarray, np.ndarray, tuple, str | None]:
    """Both label maps on the ground-truth grid, its spacing, and a note if the prediction moved."""
    gt_image, pred_image = read_image(gt_path), read_image(pred_path)
    gt, spacing = _label_array(gt_image, gt_path), tuple(float(s) for s in gt_image.GetSpacing())
    if same_grid(pred_image, gt_image):
        return _label_array(pred_image, pred_path), gt, spacing, None
    moved = nearest_onto(pred_image, gt_image)
    if moved is None:

        def grid(image: sitk.Image) -> str:
            spacing = " x ".join(f"{s:.4g}" for s in image.GetSpacing())
            return f"shape {image.GetSize()}, {spacing} mm voxels"

        raise InputError(
            f"{pred_path} ({grid(pred_image)}) covers a different region than its ground truth "
            f"{gt_path} ({grid(gt_image)}); is it the prediction for this case?"
        )
    note = (
        f"{pred_path}: on another grid than its ground truth ({grid_text(pred_image)} vs "
        f"{grid_text(gt_image)}); resampled onto it by world position (nearest neighbour)"
    )
    return _label_array(moved, pred_path), gt, spacing, note


def evaluate_files(
    pred: str | Path,
    gt: str | Path,
    out_dir: str | Path,
    *,
    tumour_label: int = 2,
    organ_label: int | None = 1,
    tolerance_mm: float = 2.0,
    progress: bool = True,
) -> EvaluationReport:
    """Evaluate predicted label maps against the ground truth and write the reports.

    Parameters
    ----------
    pred, gt : str or Path
        One prediction and one ground-truth file, or two folders of them paired by name (see
        :func:`pair_files`); NIfTI, NRRD or MHA label maps.
    out_dir : str or Path
        Folder for ``cases.csv``, ``lesions.csv``, ``summary.json`` and ``summary.png``; created
        when needed, only after every case has been read and evaluated.
    tumour_label, organ_label : int
        Label values (``organ_label`` None: no organ Dice).
    tolerance_mm : float
        NSD tolerance, mm.
    progress : bool
        Show a progress bar over cases.

    Returns
    -------
    EvaluationReport

    Raises
    ------
    InputError
        Unpaired, missing or unreadable files, or a prediction covering another region than its
        ground truth; raised before anything is written.
    """
    if organ_label is not None and organ_label == tumour_label:
        raise InputError(f"organ and tumour labels are both {tumour_label}; they must differ")
    pairs = pair_files(pred, gt)
    cases: dict[str, CaseMetrics] = {}
    notes: list[str] = []
    for name, pred_path, gt_path in tqdm(pairs, desc="evaluate", unit="case", disable=not progress):
        pred_label, gt_label, spacing, note = _read_case(pred_path, gt_path)
        if note:
            notes.append(note)
            log.info("note: %s", note)
        cases[name] = evaluate_case(
            pred_label, gt_label, spacing,
            tumour_label=tumour_label, organ_label=organ_label, tolerance_mm=tolerance_mm,
        )  # fmt: skip
    summary = summarise(list(cases.values()))
    summary["settings"] = {
        "prediction": str(Path(pred).resolve()),
        "ground_truth": str(Path(gt).resolve()),
        "tumour_label": tumour_label,
        "organ_label": organ_label,
        "tolerance_mm": float(tolerance_mm),
        "connectivity": 26,
        "radius_bins_mm": {name: v["range_mm"] for name, v in summary["detection"]["bins"].items()},
        "empty_masks": "Dice and NSD are 1 when prediction and ground truth are both empty",
    }
    summary["notes"] = notes
    files = _write(Path(out_dir), cases, summary)
    return EvaluationReport(cases, summary, files, tuple(notes))


def _number(value: float | None, digits: int = 6) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def csv_text(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """CSV text of ``rows`` under a header of ``columns`` (other keys are left out), ``\\n`` line
    ends. Cells: None is empty, booleans are ``true``/``false``, floats have 6 significant digits,
    anything else (e.g. a number formatted beforehand) is written as ``str`` gives it.

    >>> row = {"case": "a", "dice": 0.25, "hit": True, "nsd": None}
    >>> print(csv_text([row], ["case", "dice", "hit", "nsd"]), end="")
    case,dice,hit,nsd
    a,0.25,true,
    """

    def cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, (bool, np.bool_)):
            return str(bool(value)).lower()
        if isinstance(value, (float, np.floating)):
            return f"{value:.6g}"
        return str(value)

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([cell(row[k]) for k in columns] for row in rows)
    return buffer.getvalue()


def _write(out_dir: Path, cases: dict[str, CaseMetrics], summary: dict) -> dict[str, Path]:
    case_rows, lesion_rows = [], []
    for name, m in cases.items():
        d = m.detection
        case_rows.append({
            "case": name, "dice": _number(m.dice), "nsd": _number(m.nsd),
            "organ_dice": _number(m.organ_dice), "n_lesions": d.n_lesions,
            "n_detected": d.n_detected, "n_false_positives": d.n_false_positives,
        })  # fmt: skip
        kinds = [("gt", c, hit) for c, hit in zip(d.lesions, d.detected, strict=True)]
        for kind, c, hit in [*kinds, *(("fp", c, None) for c in d.false_positives)]:
            lesion_rows.append({
                "case": name, "kind": kind, "component": c.index, "n_voxels": c.n_voxels,
                "volume_mm3": _number(c.volume_mm3, 3), "radius_mm": _number(c.radius_mm, 3),
                "bin": c.bin, "detected": hit,
                **{f"centroid_{a}_vox": _number(v, 2) for a, v in zip("xyz", c.centroid_vox, strict=True)},
            })  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "cases_csv": write_text_atomic(out_dir / "cases.csv", csv_text(case_rows, CASE_COLUMNS)),
        "lesions_csv": write_text_atomic(
            out_dir / "lesions.csv", csv_text(lesion_rows, LESION_COLUMNS)
        ),
        "summary_json": write_text_atomic(
            out_dir / "summary.json", json.dumps(summary, indent=2, allow_nan=False) + "\n"
        ),
    }
    files["summary_png"] = write_summary_figure(out_dir / "summary.png", cases, summary)
    return files
