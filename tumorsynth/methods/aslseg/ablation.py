r"""The ablation on held-out volumes: what each part of ASLseg adds, scored in 3-D.

Rows (each a segmentation of every held-out volume, assembled from its slices in the volume's
geometry and kept inside the liver):

=====================  ===============================================================
``stage1``             stage I's segmenter of round 0, alone
``sam``                + SAM (tuned in round 0) prompted by stage I's boxes
``refined``            + the adaptation network (round 0) on SAM's masks
``no_selection``       stage I retrained with every refined pseudo-label of round 0
``selection``          stage I retrained with the reliable ones (round 1)
``rounds``             stage I after all R rounds (the deliverable)
=====================  ===============================================================

Per row: tumour Dice, NSD at 2 mm and HD95 in mm (:func:`hd95_mm`), as mean over volumes, with the
count of volumes whose tumour was missed entirely and of tumour-free volumes given one.

HD95 of a missed tumour is undefined (MONAI returns NaN and its ``aggregate`` drops the case, so
the misses vanish from the mean). Here a volume where exactly one of prediction and truth is
empty scores the **diagonal of its volume in mm** (the largest distance it can hold), and two
empty masks score 0 mm; the counts of misses and false alarms are reported beside the mean.
"""

from __future__ import annotations

import csv
import io
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tumorsynth.evaluate.metrics import evaluate_case
from tumorsynth.io.volume import write_text_atomic
from tumorsynth.methods.aslseg.config import ASLsegConfig
from tumorsynth.methods.aslseg.data import Volume, volume_slices
from tumorsynth.methods.aslseg.pseudo import Models, pseudo_labels
from tumorsynth.methods.aslseg.slices import paste

__all__ = [
    "ROWS",
    "hd95_mm",
    "score_volume",
    "segment_volume",
    "summarise_rows",
    "write_ablation",
]

ROWS = {
    "stage1": "stage I alone",
    "sam": "+ SAM prompted by stage I",
    "refined": "+ adaptation network",
    "no_selection": "+ pseudo-labels, no selection",
    "selection": "+ selection (round 1)",
    "rounds": "+ rounds (all R)",
}
"""The ablation's rows, in order, with their labels."""


def _box(a: np.ndarray, b: np.ndarray) -> tuple[slice, ...]:
    hit = np.argwhere(a | b)
    lo = np.maximum(hit.min(0) - 2, 0)
    hi = np.minimum(hit.max(0) + 3, a.shape)
    return tuple(slice(int(x), int(y)) for x, y in zip(lo, hi, strict=True))


def hd95_mm(pred: np.ndarray, gt: np.ndarray, spacing_mm: Sequence[float]) -> tuple[float, str]:
    """The 95th-percentile Hausdorff distance of two (X, Y, Z) masks, mm (MONAI's).

    Returns
    -------
    value : float
        mm; the volume's diagonal in mm when exactly one mask is empty, 0 when both are.
    status : str
        ``"ok"``, ``"missed"`` (truth only), ``"false_alarm"`` (prediction only) or ``"empty"``.
    """
    import torch
    from monai.metrics import compute_hausdorff_distance

    p, g = np.asarray(pred, bool), np.asarray(gt, bool)
    has_p, has_g = bool(p.any()), bool(g.any())
    if not (has_p and has_g):
        if has_p == has_g:
            return 0.0, "empty"
        diagonal = float(np.linalg.norm(np.asarray(p.shape) * np.asarray(spacing_mm, float)))
        return diagonal, "missed" if has_g else "false_alarm"
    box = _box(p, g)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = compute_hausdorff_distance(
            torch.from_numpy(np.ascontiguousarray(p[box]))[None, None].float(),
            torch.from_numpy(np.ascontiguousarray(g[box]))[None, None].float(),
            include_background=True, percentile=95, spacing=[float(s) for s in spacing_mm],
        )  # fmt: skip
    return float(value[0, 0]), "ok"


def score_volume(pred_tumour: np.ndarray, volume: Volume) -> dict[str, Any]:
    """Tumour Dice, NSD (2 mm), HD95 and lesion detection of one held-out volume."""
    gt_label = volume.liver.astype(np.uint8) + volume.tumour.astype(np.uint8)
    pred_label = volume.liver.astype(np.uint8) + (pred_tumour & volume.liver).astype(np.uint8)
    metrics = evaluate_case(pred_label, gt_label, volume.spacing_mm, organ_label=None)
    hd95, status = hd95_mm(pred_label == 2, gt_label == 2, volume.spacing_mm)
    d = metrics.detection
    return {
        "volume": volume.name, "dice": metrics.dice, "nsd": metrics.nsd, "hd95_mm": hd95,
        "hd95_status": status, "n_lesions": d.n_lesions, "n_detected": d.n_detected,
        "n_false_positives": d.n_false_positives,
    }  # fmt: skip


def segment_volume(models: Models, volume: Volume, config: ASLsegConfig) -> dict[str, np.ndarray]:
    """The volume's tumour masks (X, Y, Z) by stage I, SAM and the adaptation network (the last
    two only where ``models`` has them), in its geometry, inside its liver."""
    slices, box = volume_slices(volume, config, min_liver_px=1)
    pseudo = pseudo_labels(models, slices, config.min_area_px)
    maps = {"stage1": pseudo.stage1}
    if models.adapter is not None:
        maps.update(sam=pseudo.sam, refined=pseudo.refined)
    shape = volume.liver.shape
    return {k: (paste(v.astype(np.float32), box, shape) >= 0.5) & volume.liver
            for k, v in maps.items()}  # fmt: skip


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def summarise_rows(per_case: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """One summary row per ablation row: means over volumes (HD95 with the misses at the
    diagonal), its median, and the counts of misses and false alarms."""
    rows = []
    for key, cases in per_case.items():
        dice = [c["dice"] for c in cases]
        lesions = sum(c["n_lesions"] for c in cases)
        detected = sum(c["n_detected"] for c in cases)
        rows.append({
            "row": key, "label": ROWS[key], "n_volumes": len(cases),
            "dice_mean": _mean(dice), "dice_sd": float(np.std(dice)) if dice else None,
            "nsd_mean": _mean([c["nsd"] for c in cases]),
            "hd95_mean_mm": _mean([c["hd95_mm"] for c in cases]),
            "hd95_median_mm": float(np.median([c["hd95_mm"] for c in cases])) if cases else None,
            "n_missed": sum(c["hd95_status"] == "missed" for c in cases),
            "n_false_alarm": sum(c["hd95_status"] == "false_alarm" for c in cases),
            "lesion_sensitivity": detected / lesions if lesions else None,
            "fp_per_volume": _mean([c["n_false_positives"] for c in cases]),
        })  # fmt: skip
    return rows


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def table_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """The ablation as a Markdown table."""
    lines = [
        "| row | tumour Dice | NSD @ 2 mm | HD95 mm (mean / median) | missed | false alarms "
        "| lesion sensitivity | FP / volume |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        hd95 = f"{_fmt(r['hd95_mean_mm'], 1)} / {_fmt(r['hd95_median_mm'], 1)}"
        lines.append(
            f"| {r['label']} | {_fmt(r['dice_mean'])} ± {_fmt(r['dice_sd'])} | "
            f"{_fmt(r['nsd_mean'])} | {hd95} | {r['n_missed']} | {r['n_false_alarm']} | "
            f"{_fmt(r['lesion_sensitivity'])} | {_fmt(r['fp_per_volume'], 2)} |"
        )
    return "\n".join(lines) + "\n"


def write_ablation(
    rows: Sequence[Mapping[str, Any]],
    per_case: Mapping[str, Sequence[Mapping[str, Any]]],
    out_dir: str | Path,
    note: str = "",
) -> list[Path]:
    """Write ``ablation.json`` (rows and per-volume scores), ``ablation.csv``, ``ablation.md``
    and ``ablation.png`` in ``out_dir``; returns their paths."""
    from tumorsynth.methods.aslseg.figures import ablation_figure

    out_dir = Path(out_dir)
    data = {"rows": list(rows), "per_volume": {k: list(v) for k, v in per_case.items()},
            "hd95_rule": "a missed tumour or a false alarm scores the volume's diagonal in mm; "
                         "two empty masks score 0", "note": note}  # fmt: skip
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    text = (note + "\n\n" if note else "") + table_markdown(rows)
    paths = [
        write_text_atomic(out_dir / "ablation.json", json.dumps(data, indent=2) + "\n"),
        write_text_atomic(out_dir / "ablation.csv", buffer.getvalue()),
        write_text_atomic(out_dir / "ablation.md", text),
    ]
    paths.append(ablation_figure(rows, out_dir / "ablation.png"))
    return paths


def run_ablation(
    round0: Models,
    segmenters: Mapping[str, Models],
    volumes: Sequence[Volume],
    config: ASLsegConfig,
    *,
    progress: bool = True,
) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]], dict[str, np.ndarray]]:
    """Score every ablation row on the held-out volumes.

    Parameters
    ----------
    round0 : Models
        Round 0's three networks (rows ``stage1``, ``sam``, ``refined``).
    segmenters : dict of str to Models
        The other rows' stage I segmenters (``no_selection``, ``selection``, ``rounds``).
    volumes : sequence of Volume
        Held-out volumes with their tumours.
    config : ASLsegConfig
    progress : bool

    Returns
    -------
    rows : list of dict
        :func:`summarise_rows`.
    per_case : dict of str to list of dict
        :func:`score_volume` per row and volume.
    first : dict of str to (X, Y, Z) bool
        Every row's tumour mask of the first volume (for the montage).
    """
    from tqdm.auto import tqdm

    per_case: dict[str, list[dict[str, Any]]] = {
        k: [] for k in ROWS if k in ("stage1", "sam", "refined") or k in segmenters
    }
    first: dict[str, np.ndarray] = {}
    for volume in tqdm(volumes, desc="ablation", unit="volume", disable=not progress):
        masks = segment_volume(round0, volume, config)
        for key, models in segmenters.items():
            masks[key] = segment_volume(models, volume, config)["stage1"]
        for key in per_case:
            per_case[key].append(score_volume(masks[key], volume))
        if not first:
            first = masks
    return summarise_rows(per_case), per_case, first
