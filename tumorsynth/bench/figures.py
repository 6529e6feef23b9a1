"""Heat maps of the robustness benchmark: Dice by attribute and shell, and over size x intensity.

Drawn with matplotlib's object-oriented API on its Agg canvas (no pyplot, so the caller's backend
and figures are left alone), as :mod:`tumorsynth.evaluate.figure`, whose import guard it uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tumorsynth.bench.attributes import UNITS
from tumorsynth.bench.shells import SIGNED_SHELLS, shell_label, shell_range
from tumorsynth.bench.stats import AttributeStats
from tumorsynth.evaluate.figure import require_matplotlib
from tumorsynth.io.volume import write_atomic

__all__ = ["write_grid_heatmap", "write_shell_heatmap"]


def _figure(size: tuple[float, float]):
    return require_matplotlib("the heat map")(figsize=size, dpi=110, layout="constrained")


def _save(fig, path: Path) -> Path:
    return write_atomic(path, lambda tmp: fig.savefig(tmp, format="png"))


def _label(signed: int) -> str:
    return shell_label(abs(signed), 1 if signed > 0 else -1)


def _range(stats: AttributeStats, attribute: str, signed: int) -> str:
    lo, hi = shell_range(stats, attribute, signed)
    return f"{lo:.3g}" if lo == hi else f"{lo:.3g} to {hi:.3g}"


def _heatmap(ax, values: np.ndarray, counts: np.ndarray, notes: list[list[str]]):
    from matplotlib import colormaps

    cmap = colormaps["viridis"].with_extremes(bad="#d0d0d0")  # grey: no case in the cell
    masked = np.ma.masked_invalid(values)
    image = ax.imshow(masked, cmap=cmap, vmin=0.0, vmax=100.0, aspect="auto")
    for (i, j), v in np.ndenumerate(values):
        dark = np.isfinite(v) and v < 55
        text = "-" if not np.isfinite(v) else f"{v:.0f}"
        note = notes[i][j]
        ax.text(j, i - 0.12, text, ha="center", va="center", fontsize=11,
                color="white" if dark else "black")  # fmt: skip
        ax.text(j, i + 0.22, f"{note}\nn={counts[i, j]}" if note else f"n={counts[i, j]}",
                ha="center", va="center", fontsize=6.5, color="white" if dark else "black")  # fmt: skip
    return image


def write_shell_heatmap(
    path: str | Path,
    model: str,
    summary: dict,
    stats: dict[str, AttributeStats],
    attributes: Sequence[str],
) -> Path:
    """Mean tumour Dice (%) of one model per attribute (rows) and signed shell (columns), each cell
    with its value range and number of cases; written as a PNG, atomically."""
    values = np.full((len(attributes), len(SIGNED_SHELLS)), np.nan)
    counts = np.zeros(values.shape, int)
    notes = []
    for i, a in enumerate(attributes):
        notes.append([_range(stats[a], a, s) for s in SIGNED_SHELLS])
        for j, s in enumerate(SIGNED_SHELLS):
            entry = summary[a]["signed"][f"{s:+d}"]["dice"]
            counts[i, j] = entry["n"]
            if entry["mean"] is not None:
                values[i, j] = 100.0 * entry["mean"]
    fig = _figure((9.5, 1.0 + 0.9 * len(attributes)))
    ax = fig.subplots()
    image = _heatmap(ax, values, counts, notes)
    ax.set_xticks(range(len(SIGNED_SHELLS)), [_label(s) for s in SIGNED_SHELLS])
    ax.set_yticks(range(len(attributes)), [f"{a} ({UNITS[a]})" for a in attributes])
    ax.set_xlabel("shell (below μ on the left, above on the right)")
    ax.set_title(f"{model}: tumour Dice (%) by attribute and shell")
    fig.colorbar(image, ax=ax, label="Dice (%)", shrink=0.9)
    return _save(fig, Path(path))


def write_grid_heatmap(
    path: str | Path, model: str, grid: dict, stats: dict[str, AttributeStats]
) -> Path:
    """Mean tumour Dice (%) of one model over size shells (rows) x intensity shells (columns);
    written as a PNG, atomically."""
    n = len(SIGNED_SHELLS)
    values, counts = np.full((n, n), np.nan), np.zeros((n, n), int)
    for i, s in enumerate(SIGNED_SHELLS):
        for j, c in enumerate(SIGNED_SHELLS):
            entry = grid[f"{s:+d},{c:+d}"]["dice"]
            counts[i, j] = entry["n"]
            if entry["mean"] is not None:
                values[i, j] = 100.0 * entry["mean"]
    fig = _figure((9.0, 7.0))
    ax = fig.subplots()
    image = _heatmap(ax, values, counts, [[""] * n for _ in range(n)])
    xt = [f"{_label(s)}\n{_range(stats['intensity'], 'intensity', s)}" for s in SIGNED_SHELLS]
    yt = [f"{_label(s)}\n{_range(stats['size'], 'size', s)}" for s in SIGNED_SHELLS]
    ax.set_xticks(range(n), xt, fontsize=8)
    ax.set_yticks(range(n), yt, fontsize=8)
    ax.set_xlabel(f"intensity: core contrast ({UNITS['intensity']})")
    ax.set_ylabel(f"size: equivalent radius ({UNITS['size']})")
    ax.set_title(f"{model}: tumour Dice (%) over size x intensity shells")
    fig.colorbar(image, ax=ax, label="Dice (%)", shrink=0.9)
    return _save(fig, Path(path))
