"""The robustness benchmark's files: case tables (CSV, JSON), the Markdown table and the figures.

Everything is written under a temporary name and renamed (:func:`tumorsynth.io.volume.write_text_atomic`),
and only after every case has been scored: a failed run leaves no report behind.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from tumorsynth.bench.attributes import UNITS
from tumorsynth.bench.shells import SHELLS, SIGNED_SHELLS, shell_label, shell_range
from tumorsynth.bench.stats import AttributeStats
from tumorsynth.evaluate.report import csv_text
from tumorsynth.io.volume import write_text_atomic

__all__ = ["CASE_COLUMNS", "GRID_COLUMNS", "markdown_table", "write_reports"]

CASE_COLUMNS = (
    "model", "attribute", "shell", "side", "case", "host", "seed", "value", "target", "clipped",
    "dice", "nsd", "detected", "fp", "tumour_voxels", "tumour_radius_mm",
)  # fmt: skip
GRID_COLUMNS = (
    "model", "size_shell", "intensity_shell", "case", "host", "seed", "size", "intensity",
    "dice", "nsd", "detected", "fp", "tumour_voxels", "tumour_radius_mm",
)  # fmt: skip
#: What each source of the stats means, for ``robustness.md``.
_SOURCES = {
    "derived": "a Monte Carlo of the synthesis config's laws",
    "preset": "the preset's tumours placed in the phantom hosts 2000-2003 at 1 mm",
    "measured": "the config's tumours placed in this run's hosts",
    "fitted": "measured on labelled CT by tumorsynth fit-stats",
    "config": "set in the benchmark config",
}
_TABLES = (
    ("dice", "Tumour Dice (%)", 100.0),
    ("nsd", "Tumour NSD (%)", 100.0),
    ("sensitivity", "Lesion sensitivity (%)", 100.0),
    ("fp_per_case", "False positives per case", 1.0),
)


def _number(entry: dict, scale: float, interval: bool = False) -> str:
    if entry["mean"] is None:
        return "-"
    digits = 1 if scale == 100.0 else 2
    text = f"{entry['mean'] * scale:.{digits}f}"
    if interval:
        text += f" [{entry['lo'] * scale:.{digits}f}, {entry['hi'] * scale:.{digits}f}]"
    return text


def markdown_table(
    summary: dict, attributes: Sequence[str], metric: str = "dice", scale: float = 100.0,
    interval: bool = False,
) -> str:  # fmt: skip
    """One metric in the layout of the reference's Fig. 6: a row per model, a column per attribute
    and shell (both sides pooled)."""
    head = [f"{a} {shell_label(k)}" for a in attributes for k in SHELLS]
    lines = ["| model | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for model, per_attribute in summary.items():
        cells = [
            _number(per_attribute[a]["shells"][str(k)][metric], scale, interval)
            for a in attributes
            for k in SHELLS
        ]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _ranges_table(stats: dict[str, AttributeStats], attributes: Sequence[str]) -> str:
    head = [shell_label(abs(s), 1 if s > 0 else -1) for s in SIGNED_SHELLS]
    lines = [
        "| attribute | unit | μ | σ | source | " + " | ".join(head) + " |",
        "|---" * (len(head) + 5) + "|",
    ]
    for a in attributes:
        s = stats[a]
        cells = [
            "{:.3g} to {:.3g}".format(*shell_range(s, a, k)) for k in SIGNED_SHELLS
        ]  # fmt: skip
        lines.append(
            f"| {a} | {UNITS[a]} | {s.mu:.4g} | {s.sigma:.4g} | {s.source or 'config'} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)


def _markdown(result: dict, stats: dict[str, AttributeStats]) -> str:
    settings, attributes = result["settings"], result["settings"]["attributes"]
    parts = [
        "# Robustness benchmark",
        "",
        f"{len(result['cases']) // max(len(settings['models']), 1)} test tumours per model "
        f"({settings['cases_per_shell']} per attribute and shell), one per case, in "
        f"{len(settings['hosts'])} host(s); synthesis config `{settings['synthesis_name']}`, "
        f"seed {settings['seed']}. Shell k holds values between (k-1)σ and kσ from μ, half below "
        "and half above. Scores are means over cases; intervals are 95 % bootstrap intervals "
        f"({settings['bootstrap_resamples']} resamples).",
    ]
    for metric, title, scale in _TABLES:
        parts += [
            "",
            f"## {title}",
            "",
            markdown_table(result["summary"], attributes, metric, scale),
        ]
        if metric == "dice":
            parts += ["", "## Tumour Dice (%), 95 % intervals", ""]
            parts.append(markdown_table(result["summary"], attributes, metric, scale, True))
    parts += ["", "## Shells", "", _ranges_table(stats, attributes), ""]
    sources = dict.fromkeys(stats[a].source or "config" for a in attributes)
    notes = [f"{src}: {_SOURCES[src]}" for src in sources if src in _SOURCES]
    if notes:
        parts += [f"Sources of μ and σ: {'; '.join(notes)}.", ""]
    return "\n".join(parts)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "model"


def write_reports(out_dir: Path, result: dict, stats: dict[str, AttributeStats]) -> dict[str, Path]:
    """Write ``cases.csv``, ``grid.csv`` (when there is a grid), ``robustness.json``,
    ``robustness.md``, ``heatmap_<model>.png`` and ``grid_<model>.png``.

    Returns
    -------
    dict of str to Path
        The written files by kind.
    """
    from tumorsynth.bench.figures import write_grid_heatmap, write_shell_heatmap

    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    slugs: dict[str, int] = {}
    attributes = result["settings"]["attributes"]
    for model in result["summary"]:  # figures first: the tables last mark a complete report
        slug = _slug(model)
        slugs[slug] = slugs.get(slug, 0) + 1
        if slugs[slug] > 1:
            slug = f"{slug}_{slugs[slug]}"
        files[f"heatmap:{model}"] = write_shell_heatmap(
            out_dir / f"heatmap_{slug}.png", model, result["summary"][model], stats, attributes
        )
        if result["grid_cases"]:
            files[f"grid:{model}"] = write_grid_heatmap(
                out_dir / f"grid_{slug}.png", model, result["grid_summary"][model], stats
            )
    files["cases_csv"] = write_text_atomic(
        out_dir / "cases.csv", csv_text(result["cases"], CASE_COLUMNS)
    )
    if result["grid_cases"]:
        files["grid_csv"] = write_text_atomic(
            out_dir / "grid.csv", csv_text(result["grid_cases"], GRID_COLUMNS)
        )
    files["markdown"] = write_text_atomic(out_dir / "robustness.md", _markdown(result, stats))
    files["json"] = write_text_atomic(
        out_dir / "robustness.json", json.dumps(result, indent=1, allow_nan=False) + "\n"
    )
    return files
