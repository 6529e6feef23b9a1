"""ASLseg's pictures: the ablation (``ablation.png``), the rounds (``rounds.png``) and a montage
of held-out slices through the pipeline (``montage.png``).

Drawn with matplotlib's object-oriented API on its Agg canvas (no pyplot), written atomically.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tumorsynth.evaluate.figure import require_matplotlib
from tumorsynth.io.volume import write_atomic

__all__ = ["ablation_figure", "montage_figure", "rounds_figure"]

_BLUE, _ORANGE, _GREEN, _RED = "#3b75af", "#ef8636", "#519e3e", "#c53a32"


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    return write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))


def ablation_figure(rows: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Tumour Dice and NSD per ablation row, and HD95 (misses at the diagonal) with the count of
    missed tumours written on each bar."""
    Figure = require_matplotlib("the ablation figure")
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    x = np.arange(len(rows))
    labels = [r["label"] for r in rows]
    for offset, key, name, colour in ((-0.2, "dice_mean", "tumour Dice", _BLUE),
                                      (0.2, "nsd_mean", "NSD @ 2 mm", _ORANGE)):  # fmt: skip
        left.bar(x + offset, [r[key] or 0.0 for r in rows], 0.4, label=name, color=colour)
    left.set_xticks(x, labels, rotation=25, ha="right")
    left.set_ylim(0, 1.05)
    left.legend(loc="upper left", fontsize=8)
    left.set_title("overlap (held-out volumes)")
    heights = [r["hd95_mean_mm"] or 0.0 for r in rows]
    right.bar(x, heights, 0.6, color=_GREEN)
    for i, r in enumerate(rows):
        right.text(i, heights[i], f"{r['n_missed']} missed", ha="center", va="bottom", fontsize=8)
    right.set_xticks(x, labels, rotation=25, ha="right")
    right.set_ylabel("HD95, mm (a miss counts the diagonal)")
    right.set_title("boundary distance")
    return _save(fig, path)


def rounds_figure(records: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Per round: the labelled set's size, the slices accepted, and (where hidden labels exist)
    the accepted and rejected pseudo-labels' mean Dice."""
    Figure = require_matplotlib("the rounds figure")
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    left, right = fig.subplots(1, 2)
    r = [rec["round"] for rec in records]
    left.plot(
        r,
        [rec["n_labelled"] for rec in records],
        "o-",
        color=_BLUE,
        label="labelled set (start of round)",
    )
    left.bar(r, [rec["n_accepted"] for rec in records], 0.5, color=_ORANGE, label="accepted")
    left.set_xlabel("round")
    left.set_ylabel("slices")
    left.set_xticks(r)
    left.legend(fontsize=8)
    drawn = False
    for key, colour in (("accepted", _GREEN), ("rejected", _RED)):
        values = [rec[key]["dice_mean"] for rec in records]
        if any(v is not None for v in values):
            right.plot(r, [np.nan if v is None else v for v in values], "o-", color=colour,
                       label=f"{key} (vs hidden labels)")  # fmt: skip
            drawn = True
    right.set_ylim(0, 1.05)
    right.set_xticks(r)
    right.set_xlabel("round")
    right.set_ylabel("mean Dice of pseudo-labels")
    if drawn:
        right.legend(fontsize=8)
    else:
        right.text(0.5, 0.5, "no hidden labels", ha="center", transform=right.transAxes)
    return _save(fig, path)


def montage_figure(images: np.ndarray, columns: Mapping[str, np.ndarray], path: str | Path) -> Path:
    """A grid: one row per slice, the CT then one column per mask (outlined in the CT).

    Parameters
    ----------
    images : (N, S, S) array
        Windowed slices.
    columns : dict of str to (N, S, S) bool arrays
        Titled masks (ground truth, stage I, SAM, refined, ...).
    """
    Figure = require_matplotlib("the montage")
    n, k = len(images), len(columns) + 1
    fig = Figure(figsize=(1.8 * k, 1.8 * max(n, 1)), layout="constrained")
    axes = np.atleast_2d(fig.subplots(max(n, 1), k, squeeze=False))
    for i in range(n):
        for j, (title, masks) in enumerate([("CT", None), *columns.items()]):
            ax = axes[i, j]
            ax.imshow(images[i], cmap="gray", vmin=0, vmax=1)
            if masks is not None and masks[i].any():
                ax.contour(masks[i].astype(float), levels=[0.5], colors=[_RED], linewidths=1)
            ax.set_axis_off()
            if i == 0:
                ax.set_title(title, fontsize=9)
    return _save(fig, path)
