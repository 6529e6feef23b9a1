"""SAR's figures: held-out restorations of a pre-trained network, and the comparison's curves.

Drawn with matplotlib's object-oriented API on its Agg canvas (no pyplot), written atomically.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from tumorsynth.evaluate.figure import require_matplotlib
from tumorsynth.io.volume import write_atomic

__all__ = ["write_comparison", "write_restorations"]

COLOURS = {"scratch": "#9a9a9a", "restoration": "#3b75af", "sar": "#ef8636"}
LABELS = {"scratch": "from scratch", "restoration": "restoration only (Models Genesis)",
          "sar": "SAR"}  # fmt: skip


@torch.no_grad()
def write_restorations(
    path: str | Path,
    network: torch.nn.Module,
    batch: Mapping[str, torch.Tensor],
    crop_sizes_mm: Sequence[Sequence[float]],
) -> Path:
    """One row per scale (the first held-out crop of that scale): the corrupted input, the
    network's restoration and the clean target, mid-axial slices.

    Parameters
    ----------
    path : str or Path
        Destination PNG.
    network : SarNet
        On the CPU.
    batch : dict
        Held-out crops (``input``, ``target``, ``scale``), as
        :func:`~tumorsynth.methods.sar.crops.fixed_crops` makes them.
    crop_sizes_mm : sequence of 3 floats
        The scales, for the row titles.
    """
    figure = require_matplotlib("the restorations figure")
    rows = [
        int(i) for s in range(len(crop_sizes_mm)) for i in np.flatnonzero(batch["scale"] == s)[:1]
    ]
    network.eval()
    restored = network(batch["input"][rows]).restored
    fig = figure(figsize=(7.5, 2.4 * max(len(rows), 1)), dpi=100, layout="constrained")
    axes = np.atleast_2d(fig.subplots(max(len(rows), 1), 3, squeeze=False))
    for r, i in enumerate(rows):
        z = batch["input"].shape[-1] // 2
        size = " x ".join(f"{v:g}" for v in crop_sizes_mm[int(batch["scale"][i])])
        panels = (
            batch["input"][i, 0, :, :, z],
            restored[r, 0, :, :, z],
            batch["target"][i, 0, :, :, z],
        )
        for c, (image, title) in enumerate(
            zip(panels, ("corrupted", "restored", "clean"), strict=True)
        ):
            axes[r, c].imshow(image.T.float().numpy(), cmap="gray", vmin=0, vmax=1, origin="lower")
            axes[r, c].set_title(f"{title} ({size} mm)" if c == 0 else title, fontsize=9)
            axes[r, c].set_axis_off()
    return write_atomic(Path(path), lambda tmp: fig.savefig(tmp, format="png"))


def _efficiency(ax, results: Sequence[Mapping], metric: str) -> None:
    for init in dict.fromkeys(r["init"] for r in results):
        mine = [r for r in results if r["init"] == init]
        budgets = sorted({r["budget"] for r in mine})
        means = [np.mean([r[metric] for r in mine if r["budget"] == b]) for b in budgets]
        sds = [np.std([r[metric] for r in mine if r["budget"] == b]) for b in budgets]
        steps = [next(r["steps"] for r in mine if r["budget"] == b) for b in budgets]
        ax.errorbar(steps, means, yerr=sds, marker="o", capsize=3, color=COLOURS.get(init),
                    label=LABELS.get(init, init))  # fmt: skip
    ax.set_xscale("log")
    ticks = sorted({r["steps"] for r in results})
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("fine-tuning steps (budget)")
    ax.set_ylabel(f"held-out tumour {metric.replace('_', ' ')}")
    ax.set_title("(a) data efficiency: final score per budget")
    ax.legend(fontsize=8)


def _convergence(ax, curves: Sequence[Mapping]) -> None:
    for init in dict.fromkeys(c["init"] for c in curves):
        mine = [c for c in curves if c["init"] == init]
        steps = sorted({c["step"] for c in mine})
        means = [np.mean([c["tumour_dice"] for c in mine if c["step"] == s]) for s in steps]
        ax.plot(steps, means, marker=".", color=COLOURS.get(init), label=LABELS.get(init, init))
    ax.set_xlabel("fine-tuning step (largest budget)")
    ax.set_ylabel("validation tumour Dice")
    ax.set_title("(b) convergence")
    ax.legend(fontsize=8)


def _pretraining(ax, curves: Sequence[Mapping]) -> None:
    twin = None
    for init in dict.fromkeys(c["init"] for c in curves):
        mine = sorted((c for c in curves if c["init"] == init), key=lambda c: c["step"])
        steps = [c["step"] for c in mine]
        ax.plot(steps, [c["restore_mse"] for c in mine], marker=".", color=COLOURS.get(init),
                label=f"{LABELS.get(init, init)}: MSE")  # fmt: skip
        if any("scale_acc" in c for c in mine):
            twin = twin or ax.twinx()
            twin.plot(steps, [c.get("scale_acc", np.nan) for c in mine], linestyle="--",
                      color=COLOURS.get(init), label=f"{LABELS.get(init, init)}: scale accuracy")  # fmt: skip
    ax.set_xlabel("pre-training step")
    ax.set_ylabel("held-out restoration MSE (solid)")
    ax.set_title("(c) pre-training, held-out crops")
    handles, labels = ax.get_legend_handles_labels()
    if twin is not None:
        twin.set_ylabel("held-out scale accuracy (dashed)")
        twin.set_ylim(0, 1)
        more = twin.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    ax.legend(handles, labels, fontsize=8)


def write_comparison(
    path: str | Path,
    results: Sequence[Mapping],
    curves: Sequence[Mapping],
    pretraining: Sequence[Mapping],
    metric: str = "dice",
) -> Path:
    """The comparison's figure: (a) final held-out score per budget and initialisation (mean
    and SD over seeds), (b) validation tumour Dice along the largest budget's runs, (c) the
    pre-training runs' held-out restoration error.

    Parameters
    ----------
    path : str or Path
        Destination PNG.
    results, curves, pretraining : sequence of dict
        The rows of ``results.csv``, ``curves.csv`` and ``pretraining.csv`` (see
        :func:`~tumorsynth.methods.sar.compare.compare`).
    metric : str
        The column of ``results`` plotted in (a).
    """
    figure = require_matplotlib("the comparison figure")
    fig = figure(figsize=(15, 4.4), dpi=110, layout="constrained")
    axes = fig.subplots(1, 3)
    _efficiency(axes[0], results, metric)
    _convergence(axes[1], curves)
    if pretraining:
        _pretraining(axes[2], pretraining)
    else:
        axes[2].set_axis_off()
    return write_atomic(Path(path), lambda tmp: fig.savefig(tmp, format="png"))
