"""Pooling per-case metrics over a set of cases, and a plain-text table of the result.

:func:`summarise` gives the content of ``summary.json`` (without the settings and notes that
:func:`~tumorsynth.evaluate.report.evaluate_files` adds); :func:`summary_table` is what
``tumorsynth evaluate`` prints.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from tumorsynth.evaluate.metrics import BIN_NAMES, RADIUS_BINS_MM, CaseMetrics

__all__ = ["summarise", "summary_table"]


def _stats(values: Sequence[float]) -> dict:
    mean, median = (float(f(values)) if values else None for f in (np.mean, np.median))
    return {"mean": mean, "median": median, "n": len(values)}


def summarise(cases: Sequence[CaseMetrics]) -> dict:
    """Pool the metrics of several cases.

    Parameters
    ----------
    cases : sequence of CaseMetrics
        At least one.

    Returns
    -------
    dict
        JSON-ready: ``dice``, ``nsd`` and ``organ_dice`` as ``{mean, median, n}`` over cases (the
        organ over those with an organ); ``detection``: per radius bin ``{range_mm, n_lesions,
        n_detected, sensitivity}`` (sensitivity None for an empty bin), the same over all lesions,
        and false positives in total and per case.
    """
    if not cases:
        raise ValueError("no cases to summarise")
    bins = {name: [0, 0] for name in BIN_NAMES}
    for case in cases:
        for name, (d, n) in case.detection.per_bin().items():
            bins[name][0] += d
            bins[name][1] += n

    def entry(detected: int, total: int) -> dict:
        sensitivity = detected / total if total else None
        return {"n_lesions": total, "n_detected": detected, "sensitivity": sensitivity}

    ranges = itertools.pairwise(RADIUS_BINS_MM)
    n_fp = sum(c.detection.n_false_positives for c in cases)
    return {
        "n_cases": len(cases),
        "dice": _stats([c.dice for c in cases]),
        "nsd": _stats([c.nsd for c in cases]),
        "organ_dice": _stats([c.organ_dice for c in cases if c.organ_dice is not None]),
        "detection": {
            "bins": {
                name: {"range_mm": [lo, hi if math.isfinite(hi) else None], **entry(d, n)}
                for name, (lo, hi), (d, n) in zip(BIN_NAMES, ranges, bins.values(), strict=True)
            },
            "all": entry(sum(d for d, _ in bins.values()), sum(n for _, n in bins.values())),
            "false_positives": {"total": n_fp, "per_case": n_fp / len(cases)},
        },
    }


def summary_table(summary: dict) -> str:
    """A short plain-text table of a summary: mean scores, sensitivity per radius bin, FP per case.

    Parameters
    ----------
    summary : dict
        As returned by :func:`summarise` (or read from ``summary.json``).
    """

    def score(entry: dict) -> str:
        n = entry["n"]
        if not n:
            return "-"
        return f"{entry['mean']:.3f}  (median {entry['median']:.3f}, {n} case{'s' * (n != 1)})"

    def rate(entry: dict) -> str:
        s = entry["sensitivity"]
        share = f"{entry['n_detected']}/{entry['n_lesions']}"
        return f"{share:>9}  {'-' if s is None else f'{s:.3f}':>11}"

    det = summary["detection"]
    lines = [
        f"tumour Dice   {score(summary['dice'])}",
        f"tumour NSD    {score(summary['nsd'])}",
        f"organ Dice    {score(summary['organ_dice'])}",
        "",
        f"{'radius (mm)':<12} {'detected':>9}  {'sensitivity':>11}",
    ]
    for name in BIN_NAMES:
        lines.append(f"{name:<12} {rate(det['bins'][name])}")
    lines.append(f"{'all':<12} {rate(det['all'])}")
    fp = det["false_positives"]
    per_case = fp["per_case"]
    lines += ["", f"false positives  {per_case:.2f} per case ({fp['total']} in all)"]
    return "\n".join(lines)
