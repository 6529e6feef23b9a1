"""The ``summary.png`` of an evaluation: sensitivity per radius bin, per-case scores, false positives.

Drawn with matplotlib's object-oriented API on its Agg canvas (no pyplot, so the caller's backend
and figures are left alone).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tumorsynth.errors import TumorSynthError
from tumorsynth.evaluate.metrics import BIN_NAMES, CaseMetrics
from tumorsynth.io.volume import write_atomic

__all__ = ["require_matplotlib", "write_summary_figure"]

_BLUE, _ORANGE, _GREY = "#3b75af", "#ef8636", "#9a9a9a"
_MAX_NAMED_CASES = 40  # above this, false positives are shown as a histogram


def require_matplotlib(what: str = "drawing"):
    """matplotlib's ``Figure``, or a :class:`TumorSynthError` saying that ``what`` needs it and how
    to install it (the ``train`` extra)."""
    try:
        from matplotlib.figure import Figure
    except ImportError as err:
        raise TumorSynthError(
            f"{what} needs matplotlib ({err}); `pip install 'tumorsynth[train]'`"
        ) from None
    return Figure


def _sensitivity(ax, summary: dict) -> None:
    bins = summary["detection"]["bins"]
    x = np.arange(len(BIN_NAMES))
    heights = [bins[n]["sensitivity"] or 0.0 for n in BIN_NAMES]
    ax.bar(x, heights, color=_BLUE, width=0.7)
    for i, name in enumerate(BIN_NAMES):
        b = bins[name]
        text = f"{b['n_detected']}/{b['n_lesions']}"
        ax.text(i, heights[i] + 0.02, text, ha="center", va="bottom", fontsize=9,
                color="black" if b["n_lesions"] else _GREY)  # fmt: skip
    ax.set_xticks(x, [f"{n} mm" for n in BIN_NAMES])
    ax.set_ylim(0, 1.12)
    ax.set_xlabel("equivalent radius of the ground-truth lesion")
    ax.set_ylabel("sensitivity (detected / total)")
    ax.set_title("(a) lesion detection by size")


def _scores(ax, cases: dict[str, CaseMetrics]) -> None:
    series = [("tumour Dice", [m.dice for m in cases.values()], _BLUE)]
    series.append(("tumour NSD", [m.nsd for m in cases.values()], _ORANGE))
    tolerance = next(iter(cases.values())).tolerance_mm
    ax.boxplot([v for _, v, _ in series], positions=range(len(series)), widths=0.5,
               showfliers=False, medianprops={"color": "black"})  # fmt: skip
    for i, (_, values, colour) in enumerate(series):
        n = len(values)
        offsets = np.linspace(-0.15, 0.15, n) if n > 1 else np.zeros(1)  # a fixed spread
        ax.scatter(i + offsets, values, s=14, color=colour, alpha=0.8, zorder=3)
    ax.set_xticks(range(len(series)), [name for name, _, _ in series])
    ax.set_ylim(-0.03, 1.03)
    ax.set_ylabel("score per case")
    ax.set_title(f"(b) {len(cases)} cases (NSD at {tolerance:g} mm)")


def _false_positives(ax, cases: dict[str, CaseMetrics], summary: dict) -> None:
    counts = [m.detection.n_false_positives for m in cases.values()]
    per_case = summary["detection"]["false_positives"]["per_case"]
    if len(counts) <= _MAX_NAMED_CASES:
        ax.bar(range(len(counts)), counts, color=_GREY, width=0.7)
        ax.set_xticks(range(len(counts)), list(cases), rotation=90,
                      fontsize=7 if len(counts) > 12 else 9)  # fmt: skip
        ax.set_ylabel("false-positive components")
    else:
        ax.hist(counts, bins=np.arange(max(counts) + 2) - 0.5, color=_GREY, rwidth=0.85)
        ax.set_xlabel("false-positive components in a case")
        ax.set_ylabel("cases")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_title(f"(c) false positives: {per_case:.2f} per case")


def write_summary_figure(path: str | Path, cases: dict[str, CaseMetrics], summary: dict) -> Path:
    """Write the three-panel summary figure as a PNG, atomically.

    Parameters
    ----------
    path : str or Path
        Destination PNG.
    cases : dict of str to CaseMetrics
        Per-case metrics, by case name (at least one).
    summary : dict
        Their :func:`~tumorsynth.evaluate.summary.summarise`.

    Returns
    -------
    Path
        The written file.
    """
    figure = require_matplotlib("the summary figure")
    path = Path(path)
    fig = figure(figsize=(14, 4.6), dpi=110, layout="constrained")
    axes = fig.subplots(1, 3, width_ratios=(1.2, 0.9, 1.3))
    _sensitivity(axes[0], summary)
    _scores(axes[1], cases)
    _false_positives(axes[2], cases, summary)
    return write_atomic(path, lambda tmp: fig.savefig(tmp, format="png"))
