"""The previews of docs/organs.md: pancreas and kidney tumours on the phantom and on
TotalSegmentator's real CT, and the phantom's pancreas in its parts.

Run from the repository root (reads ``../shared/data``, or ``$TUMORSYNTH_DATA``; a few seconds of
CPU)::

    python examples/organ_previews.py [--out docs/images]

Writes ``organs_pancreas.png``, ``organs_kidney.png`` and ``organs_phantom.png``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

import tumorsynth as ts
from tumorsynth.dataset.preview import render_preview
from tumorsynth.engine.label_maps import select_organ
from tumorsynth.io.case import read_case
from tumorsynth.phantom import make_phantom, organ_case
from tumorsynth.phantom.pancreas import PARTS

DATA = Path(
    os.environ.get("TUMORSYNTH_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
FOLDER = DATA / "totalsegmentator_example"
SEEDS = {"pancreas": (3, 0, 4), "kidney": (3, 7, 13)}  # small, medium, large


def _hosts(organ: str, phantom: ts.Case) -> dict[str, ts.Case]:
    ct = FOLDER / "example_ct.nii.gz"
    seg = FOLDER / "example_seg_fast_force_split.nii.gz"
    return {
        "phantom (1.5 mm)": organ_case(phantom, organ),
        "TotalSegmentator example CT (3 mm)": read_case(ct, seg, select_organ(organ)).case,
    }


def _caption(case: ts.Case, result: ts.Synthesis) -> str:
    (lesion,) = result.params.lesions
    diameter = 2 * np.prod(lesion.shape.semi_axes_mm) ** (1 / 3)
    tumour = result.label == 2
    outside = tumour & (np.asarray(case.organ) == 0)
    parts = [f"{lesion.shape.size_class}, {diameter:.0f} mm", lesion.intensity.kind]
    if lesion.intensity.necrosis_core > 0:
        parts.append("necrotic core")
    if lesion.exophytic:
        parts.append(f"exophytic: {100 * outside.sum() / tumour.sum():.0f} % outside the kidney")
    return ", ".join(parts)


def organ_figure(organ: str, phantom: ts.Case, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = []
    for where, case in _hosts(organ, phantom).items():
        for seed in SEEDS[organ]:
            result = ts.synthesize(case, config=organ, seed=seed)
            rgb = render_preview(
                result.image, result.label, case.spacing_mm, case.direction,
                margin_mm=45.0 if organ == "kidney" else 25.0, width_px=420, max_tumours=1,
            )  # fmt: skip
            rows.append((f"{where}, seed {seed}: {_caption(case, result)}", rgb))
    fig, axes = plt.subplots(len(rows), 1, figsize=(7.5, 2.9 * len(rows)))
    for ax, (title, rgb) in zip(axes, rows, strict=True):
        ax.imshow(rgb)
        ax.set_title(title, fontsize=8.5)
        ax.axis("off")
    fig.suptitle(f"tumorsynth '{organ}' preset: tumour red, {organ} green (axial, coronal, "
                 "sagittal)", fontsize=10)  # fmt: skip
    fig.tight_layout()
    path = out / f"organs_{organ}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def phantom_figure(phantom: ts.Case, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    parts = phantom.extras["pancreas_parts"]
    kidneys = np.asarray(organ_case(phantom, "kidney").organ) > 0
    overlay = parts.astype(float)
    overlay[kidneys] = 5
    colours = ListedColormap(["#e6550d", "#31a354", "#3182bd", "#f0e442", "#c51b8a"])
    head = np.argwhere(parts == PARTS["head"]).mean(0).astype(int)
    body = np.argwhere(parts == PARTS["body"]).mean(0).astype(int)
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.4))
    views = [
        ("axial through the head", phantom.image[:, :, head[2]], overlay[:, :, head[2]]),
        ("axial through the body", phantom.image[:, :, body[2]], overlay[:, :, body[2]]),
        ("coronal through the head", phantom.image[:, head[1], :], overlay[:, head[1], :]),
    ]
    for ax, (title, ct, lab) in zip(axes, views, strict=True):
        ct, lab = ct.T[::-1, ::-1], lab.T[::-1, ::-1]  # patient's right on the left, up: A or S
        ax.imshow(ct, cmap="gray", vmin=-160, vmax=240)
        ax.imshow(np.ma.masked_equal(lab, 0), cmap=colours, vmin=0.5, vmax=5.5, alpha=0.55,
                  interpolation="nearest")  # fmt: skip
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    names = ["pancreatic head", "body", "tail", "main duct", "kidneys"]
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours(i)) for i in range(5)]
    fig.legend(handles, names, loc="lower center", ncol=5, fontsize=9, frameon=False)
    fig.suptitle("The phantom (seed 0, 1.5 mm): pancreas in its parts, kidneys; patient's right on "
                 "the left", fontsize=10)  # fmt: skip
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    path = out / "organs_phantom.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    phantom = make_phantom(seed=0, spacing_mm=1.5)
    for path in (organ_figure("pancreas", phantom, out), organ_figure("kidney", phantom, out),
                 phantom_figure(phantom, out)):  # fmt: skip
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
