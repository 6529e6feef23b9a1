"""Pooling the benchmark's case scores per model, attribute and shell, with bootstrap intervals.

Per group of cases: the mean tumour Dice, NSD, lesion sensitivity (the share of test tumours with
at least one predicted tumour voxel; one tumour per case) and false positives per case, each with
a 95 % percentile bootstrap interval over cases (resampled with replacement, ``resamples`` times,
from a fixed seed: the same cases always give the same interval).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tumorsynth.bench.shells import SHELLS, SIGNED_SHELLS

__all__ = ["METRICS", "bootstrap_mean", "summarise_grid", "summarise_shells"]

#: The pooled scores: name -> column of the case records.
METRICS = {"dice": "dice", "nsd": "nsd", "sensitivity": "detected", "fp_per_case": "fp"}


def bootstrap_mean(
    values: Sequence[float], resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> dict:
    """Mean of ``values`` with a percentile bootstrap interval.

    Parameters
    ----------
    values : sequence of float
    resamples : int
        Bootstrap resamples (cases drawn with replacement).
    seed : int
        Seed of the resampling.
    level : float
        Coverage of the interval.

    Returns
    -------
    dict
        ``mean``, ``lo``, ``hi`` and ``n`` (all None but ``n`` when there is no value).

    >>> bootstrap_mean([0.0, 1.0, 1.0, 1.0])["mean"]
    0.75
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return {"mean": None, "lo": None, "hi": None, "n": 0}
    mean = float(v.mean())
    if v.size == 1 or resamples < 1:
        return {"mean": mean, "lo": mean, "hi": mean, "n": int(v.size)}
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(resamples, v.size))].mean(axis=1)
    tail = 100.0 * (1.0 - level) / 2.0
    lo, hi = np.percentile(means, [tail, 100.0 - tail])
    return {"mean": mean, "lo": float(lo), "hi": float(hi), "n": int(v.size)}


def _scores(rows: list[dict], resamples: int, seed: int) -> dict:
    return {
        name: bootstrap_mean([float(r[column]) for r in rows], resamples, seed)
        for name, column in METRICS.items()
    }


def summarise_shells(
    rows: Sequence[dict],
    models: Sequence[str],
    attributes: Sequence[str],
    resamples: int,
    seed: int,
) -> dict:
    """Scores per model, attribute and shell (both sides pooled: ``"1"``, ``"2"``, ``"3"``) and per
    signed shell (``"-3"`` ... ``"+3"``): ``{model: {attribute: {"shells": {...}, "signed":
    {...}}}}``."""
    out: dict = {}
    for model in models:
        out[model] = {}
        for attribute in attributes:
            mine = [r for r in rows if r["model"] == model and r["attribute"] == attribute]
            out[model][attribute] = {
                "shells": {
                    str(k): _scores([r for r in mine if r["shell"] == k], resamples, seed)
                    for k in SHELLS
                },
                "signed": {
                    f"{s:+d}": _scores([r for r in mine if r["signed_shell"] == s], resamples, seed)
                    for s in SIGNED_SHELLS
                },
            }
    return out


def summarise_grid(rows: Sequence[dict], models: Sequence[str], resamples: int, seed: int) -> dict:
    """Scores per model and cell of the size x intensity grid: ``{model: {"<size>,<intensity>":
    scores}}`` with signed shells, e.g. ``"-3,+1"``."""
    out: dict = {}
    for model in models:
        mine = [r for r in rows if r["model"] == model]
        out[model] = {
            f"{s:+d},{i:+d}": _scores(
                [r for r in mine if r["size_shell"] == s and r["intensity_shell"] == i],
                resamples,
                seed,
            )
            for s in SIGNED_SHELLS
            for i in SIGNED_SHELLS
        }
    return out
