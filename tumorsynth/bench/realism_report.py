"""The files of ``tumorsynth realism``: ``realism.json``, ``realism.md``, ``tumours.csv``,
``realism.png`` (histograms side by side) and, calibrated, ``calibrated_config.json``.

Each is written under a temporary name and renamed (:mod:`tumorsynth.io.volume`), and only once
every side has been measured: a failed run leaves no report behind. The figure is drawn with
matplotlib's object-oriented API on its Agg canvas (no pyplot), as :mod:`tumorsynth.evaluate.figure`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tumorsynth.bench.realism_measure import ATTRIBUTES, DESCRIPTIONS, UNITS, Side
from tumorsynth.evaluate.figure import require_matplotlib
from tumorsynth.evaluate.report import csv_text
from tumorsynth.io.volume import write_atomic, write_text_atomic

__all__ = ["COLOURS", "markdown_table", "output_paths", "write_figure", "write_realism"]

#: Colour of each side in the figure.
COLOURS = {"real": "#3b75af", "synthetic": "#ef8636", "calibrated": "#519e3e"}
_COLUMNS = ("side", "scan", "component", "n_voxels", *ATTRIBUTES[:-1])
_BINS = 16


def output_paths(out_dir: Path, calibrate: bool) -> dict[str, Path]:
    """The files a run writes into ``out_dir``, by kind."""
    names = {"json": "realism.json", "markdown": "realism.md", "csv": "tumours.csv",
             "figure": "realism.png"}  # fmt: skip
    if calibrate:
        names["config"] = "calibrated_config.json"
    return {kind: out_dir / name for kind, name in names.items()}


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def _spread(summary: Mapping[str, Any]) -> str:
    if not summary["n"]:
        return "- (0)"
    q10, q50, q90 = (_number(summary[k]) for k in ("q10", "median", "q90"))
    return f"{q50} [{q10}, {q90}] ({summary['n']})"


def markdown_table(result: Mapping[str, Any]) -> str:
    """One row per attribute: each side's median [10th, 90th percentile] (n), and each synthetic
    side's Kolmogorov-Smirnov statistic and 1-Wasserstein distance to the real side."""
    compared = result["compared"]
    header = ["attribute", "unit", "real"]
    for name in compared:
        header += [name, f"KS {name}", f"W1 {name}"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for a in ATTRIBUTES:
        row = [DESCRIPTIONS[a], UNITS[a], _spread(result["real"][a])]
        for entry in compared.values():
            e = entry[a]
            row += [_spread(e), _number(e["ks"], 2), _number(e["wasserstein"])]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def _markdown(result: Mapping[str, Any]) -> str:
    s = result["settings"]
    text = [
        "# Realism: synthetic against real tumours\n",
        f"Config `{s['config']}`, {s['scans_per_host']} scans on each of {len(s['hosts'])} hosts "
        f"(seed {s['seed']}), against {s['real_scans']} labelled real scans. Median "
        "[10th, 90th percentile] (n); KS: two-sample Kolmogorov-Smirnov statistic; W1: "
        "1-Wasserstein distance, in the attribute's unit.\n",
        markdown_table(result),
    ]
    if result["notes"]:
        text.append("Notes:\n\n" + "".join(f"- {n}\n" for n in result["notes"]))
    if "calibration" in result:
        text.append("\nCalibrated config: `calibrated_config.json` (the steps: `realism.json`).\n")
    return "\n".join(text)


def _rows(sides: Mapping[str, Side]) -> list[dict]:
    return [{"side": name, **t} for name, side in sides.items() for t in side.tumours]


def _histogram(ax, attribute: str, sides: Mapping[str, Side], compared: Mapping) -> None:
    series = {n: s.values(attribute) for n, s in sides.items() if s.values(attribute).size}
    if not series:
        ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes)
    else:
        pooled = np.concatenate(list(series.values()))
        lo, hi = np.percentile(pooled, [1, 99])
        if attribute == "count":
            bins = np.arange(np.floor(lo), np.ceil(hi) + 2) - 0.5
        else:
            bins = np.linspace(lo, hi if hi > lo else lo + 1.0, _BINS + 1)
        ax.hist([np.clip(v, bins[0], bins[-1]) for v in series.values()], bins=bins,
                density=True, color=[COLOURS[n] for n in series], label=list(series))  # fmt: skip
    lines = [
        f"{n}: KS {_number(c[attribute]['ks'], 2)}, W1 {_number(c[attribute]['wasserstein'])}"
        for n, c in compared.items()
    ]
    ax.set_title(DESCRIPTIONS[attribute] + "\n" + "\n".join(lines), fontsize=8)
    ax.set_xlabel(f"{attribute} ({UNITS[attribute]})", fontsize=8)
    ax.tick_params(labelsize=7)


def write_figure(path: Path, result: Mapping[str, Any], sides: Mapping[str, Side]) -> Path:
    """Histograms of every attribute, the sides side by side in each bin (densities)."""
    fig = require_matplotlib("the realism figure")(figsize=(13, 6.4), dpi=110,
                                                    layout="constrained")  # fmt: skip
    axes = fig.subplots(2, 4).ravel()
    for ax, attribute in zip(axes, ATTRIBUTES, strict=False):
        _histogram(ax, attribute, sides, result["compared"])
    legend = axes[-1]
    legend.axis("off")
    for name in sides:
        legend.bar(0, 0, color=COLOURS[name], label=f"{name} ({len(sides[name].tumours)} tumours, "
                   f"{len(sides[name].counts)} scans)")  # fmt: skip
    legend.legend(loc="center", fontsize=9, frameon=False)
    fig.suptitle(f"tumorsynth realism: config {result['settings']['config']}", fontsize=10)
    return write_atomic(path, lambda tmp: fig.savefig(tmp, format="png"))


def write_realism(
    paths: Mapping[str, Path], result: Mapping[str, Any], sides: Mapping[str, Side]
) -> dict[str, Path]:
    """Write every file of :func:`output_paths` (the folder is made); returns them."""
    next(iter(paths.values())).parent.mkdir(parents=True, exist_ok=True)
    if "config" in paths:
        text = json.dumps(result["calibrated_config"], indent=2, allow_nan=False) + "\n"
        write_text_atomic(paths["config"], text)
    write_text_atomic(paths["csv"], csv_text(_rows(sides), _COLUMNS))
    write_figure(paths["figure"], result, sides)
    write_text_atomic(paths["markdown"], _markdown(result))
    doc = {**result, "files": {k: p.name for k, p in paths.items()}}
    write_text_atomic(paths["json"], json.dumps(doc, indent=2, allow_nan=False) + "\n")
    return dict(paths)
