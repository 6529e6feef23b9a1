"""The reports of ``tumorsynth bench transfer``: ``transfer.md`` (tables), ``transfer.png`` (paired
plot), ``runs.csv`` (a row per run and test set) and ``transfer.json`` (everything).

The plot has a panel per score (rows: tumour Dice, sensitivity for tumours of 5 mm radius and
more, false positives per case) and test set (columns); in each, a dot per run at its config, the
runs of one seed joined by a line (the pairs of the comparison), and each config's mean as a bar.
Drawn with matplotlib's object-oriented API on its Agg canvas.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tumorsynth.evaluate.figure import require_matplotlib
from tumorsynth.evaluate.report import csv_text
from tumorsynth.io.volume import write_atomic, write_text_atomic

__all__ = ["comparison_table", "markdown", "score_table", "write_transfer_reports"]

LABELS = {
    "dice": "tumour Dice",
    "nsd": "NSD",
    "sensitivity": "sensitivity",
    "sensitivity_5mm": "sensitivity ≥5 mm",
    "fp_per_case": "FP / case",
    "raw_sensitivity_5mm": "raw sens. ≥5 mm",
    "raw_fp_per_case": "raw FP / case",
}
PLOTTED = ("dice", "sensitivity_5mm", "fp_per_case")
RUN_COLUMNS = ("config", "seed", "set", "n_cases", *LABELS)


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _spread(entry: dict, metric: str) -> str:
    digits = 2 if "fp" in metric else 3
    if entry["mean"] is None:
        return "-"
    sd = "" if entry["sd"] is None else f" ± {entry['sd']:.{digits}f}"
    return f"{entry['mean']:.{digits}f}{sd}"


def score_table(summary: dict, metrics=tuple(LABELS)) -> str:
    """Markdown: a row per test set and config, mean ± sd over seeds per score."""
    head = "| test set | config | " + " | ".join(LABELS[m] for m in metrics) + " |"
    lines = [head, "|" + "---|" * (len(metrics) + 2)]
    for set_name, by_config in summary.items():
        for config, entry in by_config.items():
            cells = " | ".join(_spread(entry[m], m) for m in metrics)
            lines.append(f"| {set_name} | {config} | {cells} |")
    return "\n".join(lines)


def _p(value: float | None) -> str:
    return "-" if value is None else (f"{value:.3f}" if value >= 0.001 else "<0.001")


def comparison_table(comparison: dict, baseline: str, metrics=PLOTTED) -> str:
    """Markdown: a row per config, test set and score: the difference to the baseline over seeds
    (mean, 95 % t interval, paired t-test p) and over cases (mean, bootstrap interval, Wilcoxon
    p)."""
    lines = [
        f"| config − {baseline} | test set | score | Δ (seeds) | 95 % CI | p (t, seeds) | "
        "Δ (cases) | 95 % CI | p (Wilcoxon, cases) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for config, by_set in comparison.items():
        for set_name, entry in by_set.items():
            for m in metrics:
                if m not in entry:
                    continue
                e = entry[m]
                ci = "-" if e["ci95"] is None else f"{e['ci95'][0]:+.3f} to {e['ci95'][1]:+.3f}"
                cci = e.get("case_ci95")
                cci = "-" if cci is None else f"{cci[0]:+.3f} to {cci[1]:+.3f}"
                case_diff = e.get("case_mean_diff")
                lines.append(
                    f"| {config} | {set_name} | {LABELS[m]} | {e['mean_diff']:+.3f} | {ci} | "
                    f"{_p(e['p_seeds'])} | {'-' if case_diff is None else f'{case_diff:+.3f}'} | "
                    f"{cci} | {_p(e.get('p_cases'))} |"
                )
    return "\n".join(lines)


def markdown(result: dict) -> str:
    """``transfer.md``: the settings in a sentence, the score table and the comparison."""
    s = result["settings"]
    configs = list(s["configs"])
    lines = [
        "# Transfer benchmark",
        "",
        f"Synthesis configs {', '.join(configs)} (baseline {configs[0]}), seeds "
        f"{', '.join(map(str, s['seeds']))}; the `{s['checkpoint']}` checkpoint of each run; "
        f"post-processing: {result['postprocess']}. Mean ± sd over seeds; `raw` columns: "
        "before the post-processing.",
        "",
        "## Scores",
        "",
        score_table(result["summary"]),
        "",
        "## Paired comparison",
        "",
        comparison_table(result["comparison"], configs[0]),
        "",
        "## Test sets",
        "",
    ]
    for set_name, info in result["test_sets"].items():
        lines.append(f"- `{set_name}`: {info['n_cases']} cases, {info['n_lesions']} lesions")
    return "\n".join(lines) + "\n"


def _panel(ax, runs: list[dict], set_name: str, metric: str, configs: list[str]) -> None:
    x = {c: i for i, c in enumerate(configs)}
    by_seed: dict[int, dict[str, float]] = {}
    for r in runs:
        if r["set"] == set_name and r[metric] is not None:
            by_seed.setdefault(r["seed"], {})[r["config"]] = r[metric]
    means = [np.mean([v[c] for v in by_seed.values() if c in v] or [np.nan]) for c in configs]
    ax.bar(range(len(configs)), means, width=0.55, color="#c9d9ea", zorder=1)
    for seed, values in sorted(by_seed.items()):
        names = [c for c in configs if c in values]
        ax.plot([x[c] for c in names], [values[c] for c in names], "o-", color="#3b75af",
                alpha=0.8, markersize=4, lw=1, zorder=2)  # fmt: skip
        ax.annotate(f"s{seed}", (x[names[-1]], values[names[-1]]), fontsize=6,
                    xytext=(4, 0), textcoords="offset points", va="center")  # fmt: skip
    ax.set_xticks(range(len(configs)), configs, fontsize=8)
    ax.set_xlim(-0.6, len(configs) - 0.4)
    if metric != "fp_per_case":
        ax.set_ylim(0, 1)
    ax.tick_params(labelsize=7)


def write_figure(path: Path, result: dict) -> Path:
    """``transfer.png``: the paired plot (see the module)."""
    configs = list(result["settings"]["configs"])
    sets = list(result["summary"])
    figure = require_matplotlib("the transfer plot")
    fig = figure(figsize=(2.4 * len(sets) + 0.6, 6.6), dpi=110, layout="constrained")
    axes = fig.subplots(len(PLOTTED), len(sets), squeeze=False)
    for j, set_name in enumerate(sets):
        axes[0, j].set_title(set_name, fontsize=9)
        for i, metric in enumerate(PLOTTED):
            _panel(axes[i, j], result["runs"], set_name, metric, configs)
            if j == 0:
                axes[i, j].set_ylabel(LABELS[metric], fontsize=8)
    fig.suptitle(f"Same recipe, {len(configs)} synthesis configs: a dot per run, a line per seed",
                 fontsize=10)  # fmt: skip
    return write_atomic(path, lambda tmp: fig.savefig(tmp, format="png"))


def write_transfer_reports(out_dir: Path, result: dict) -> dict[str, Path]:
    """Write ``transfer.png``, ``runs.csv``, ``transfer.md`` and ``transfer.json`` (last: its
    presence marks a complete report)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"figure": write_figure(out_dir / "transfer.png", result)}
    files["runs_csv"] = write_text_atomic(
        out_dir / "runs.csv", csv_text(result["runs"], RUN_COLUMNS)
    )
    files["markdown"] = write_text_atomic(out_dir / "transfer.md", markdown(result))
    files["json"] = write_text_atomic(
        out_dir / "transfer.json", json.dumps(result, indent=1, allow_nan=False) + "\n"
    )
    return files
