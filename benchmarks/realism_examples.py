"""The figures and tables of ``docs/realism.md``: the tumour's own tissue against the additive
model (same params), and ``tumorsynth realism`` on the phantom and on the shared real CT.

Usage::

    python benchmarks/realism_examples.py [--out benchmarks/results/realism] [--docs docs/images]
                                          [--only previews|phantom|ct] [--scans 16]

1. ``previews``: the same drawn tumours rendered with ``intensity.replace`` off (the additive
   model of the reference and the ``syntumor`` preset) and on (the ``liver`` preset), side by
   side, with large tumours (which vessel avoidance leaves out): phantom 3 at 1 mm, and
   TotalSegmentator's contrast-enhanced CT (3 mm), cropped to the tumours.
   ``realism_replace_{phantom,ct}.png``; and ``replace_texture.md``, the median std ratio and
   grain of such tumours (seeds 0-3) for both models, with and without the mass effect.
2. ``phantom``: "real" tumours with known params (:data:`TRUTH`, on phantoms 0 and 1 at 2 mm, as
   an nnU-Net dataset) against the ``liver`` preset on phantoms 2000-2001, calibrated.
   ``realism_phantom.png``, ``OUT/phantom/report/realism.md``.
3. ``ct``: the shared real CT holds no tumour, so its "real" side is the reference code's tumours
   (``syntumor``) rendered into it; the ``liver`` preset is drawn on the same CT, calibrated.
   ``realism_ct.png``, ``OUT/ct/report/realism.md``.

The PNGs are written to ``OUT`` and copied to ``--docs`` when given. Real CT is read from
``../shared/data`` (or ``$TUMORSYNTH_DATA``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import time
from pathlib import Path

import numpy as np

import tumorsynth as ts
from tumorsynth.bench.realism import host_sources, run_realism
from tumorsynth.dataset.preview import render_preview
from tumorsynth.evaluate.figure import require_matplotlib
from tumorsynth.io.volume import read_volume, write_atomic, write_volume

DATA = Path(
    os.environ.get("TUMORSYNTH_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
CT = "totalsegmentator_example/example_ct.nii.gz"
CT_MASK = "totalsegmentator_example/example_ct_liver_mask.nii.gz"
CT_SEED = 1  # the preview's draw on the real CT
#: The phantom's "real" tumours: medium, elongated, dark, deep, finely textured, 2-4 per scan.
TRUTH = {
    "preset": "liver",
    "size_class": {"medium": 1.0},
    "shape": {
        "classes": {"medium": {"radius_mm": 11.0, "count": [2, 4]}},
        "axis_scale": [0.55, 1.45],
    },
    "intensity": {"delta_hu": {"hypo": [-145.0, -100.0]}},
    "location": {"depth_fraction": 1.5},
    "texture": {"grain_sigma_mm": [1.0, 2.0]},
}


def read_case(image: str, mask: str) -> ts.Case:
    ct, organ = read_volume(DATA / image), read_volume(DATA / mask)
    return ts.as_case(ct.array.astype(np.float32), organ.array.astype(np.uint8), ct.spacing_mm,
                      source=image)  # fmt: skip


def additive(params: ts.TumorParams) -> ts.TumorParams:
    """The same tumours with the additive model (``intensity.replace`` off, no grain)."""
    lesions = tuple(
        dataclasses.replace(le, intensity=dataclasses.replace(le.intensity, replace=False))
        for le in params.lesions
    )
    return dataclasses.replace(params, lesions=lesions, noise_hu=0.0, noise_corr=0.0)


def _around_tumours(out, spacing_mm, margin_mm: float) -> tuple[slice, ...]:
    """The tumours' bounding box grown by ``margin_mm``."""
    where = np.argwhere(out.label == 2)
    grow = np.ceil(margin_mm / np.asarray(spacing_mm)).astype(int)
    lo = np.maximum(where.min(0) - grow, 0)
    hi = np.minimum(where.max(0) + 1 + grow, out.label.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))


def write_before_after(path: Path, case: ts.Case, params: ts.TumorParams, title: str,
                       margin_mm: float | None = None) -> Path:  # fmt: skip
    """The same params rendered additive and replacing, side by side (cropped to the tumours
    plus ``margin_mm`` when given)."""
    panels = []
    box = None
    for name, p in (("additive (syntumor's model)", additive(params)),
                    ("replacement (liver preset)", params)):  # fmt: skip
        out = ts.render(case, params=p)
        if margin_mm is not None:
            box = box or _around_tumours(out, case.spacing_mm, margin_mm)
        image, label = (out.image, out.label) if box is None else (out.image[box], out.label[box])
        rgb = render_preview(image, label, case.spacing_mm, max_tumours=2, width_px=300)
        panels.append((name, rgb))
    fig = require_matplotlib("the previews")(figsize=(12, 5.6), dpi=110, layout="constrained")
    for ax, (name, rgb) in zip(fig.subplots(1, 2), panels, strict=True):
        ax.imshow(rgb)
        ax.set_title(name, fontsize=10)
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    return write_atomic(path, lambda tmp: fig.savefig(tmp, format="png"))


def texture_table(cases: dict, seeds: range) -> str:
    """Median std ratio and grain of the large tumours each case gets from ``seeds``, for the
    additive and the replacing model, with and without the mass effect (Markdown)."""
    from tumorsynth.bench.realism_measure import measure_scan

    lines = [
        "| host | mass effect | model | tumours | std ratio | grain (mm) |",
        "|---|---|---|---|---|---|",
    ]
    for host, case in cases.items():
        for mass in (True, False):
            config = {"preset": "liver", "size_class": {"large": 1.0}}
            if not mass:
                config["mass_effect"] = {"probability": 0.0}
            found = {"additive": [], "replacement": []}
            for seed in seeds:
                params = ts.sample_params(case, config=config, rng=seed)
                for model, p in (("additive", additive(params)), ("replacement", params)):
                    out = ts.render(case, params=p)
                    found[model] += measure_scan(out.label, case.spacing_mm, out.image)
            for model, rows in found.items():
                ratio = np.median([r["std_ratio"] for r in rows if r["std_ratio"] is not None])
                grain = np.median([r["grain_mm"] for r in rows if r["grain_mm"] is not None])
                lines.append(f"| {host} | {'on' if mass else 'off'} | {model} | {len(rows)} | "
                             f"{ratio:.2f} | {grain:.2f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def previews(out: Path) -> list[Path]:
    from tumorsynth.phantom import make_phantom

    phantom = make_phantom(seed=3, spacing_mm=1.0)
    large = {"preset": "liver", "size_class": {"large": 1.0}}
    params = ts.sample_params(phantom, config=large, rng=7)
    files = [write_before_after(out / "realism_replace_phantom.png", phantom, params,
                                "phantom 3, 1 mm, liver preset, large tumours: the same params "
                                "with intensity.replace off and on")]  # fmt: skip
    ct = read_case(CT, CT_MASK)
    params = ts.sample_params(ct, config=large, rng=CT_SEED)
    files.append(write_before_after(out / "realism_replace_ct.png", ct, params,
                                    "TotalSegmentator's CT (3 mm, contrast-enhanced), liver "
                                    "preset, large tumours: intensity.replace off and on",
                                    margin_mm=25.0))  # fmt: skip
    table = texture_table({"phantom 3, 1 mm": phantom, "example_ct, 3 mm": ct}, range(4))
    (out / "replace_texture.md").write_text(table)
    print(table)
    return files


def write_dataset(root: Path, cases, config, scans: int, seed: int) -> Path:
    for folder in ("imagesTr", "labelsTr"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for c, case in enumerate(cases):
        for k in range(scans):
            out = ts.synthesize(case, config=config, seed=seed + 1000 * c + k)
            name = f"c{c}_{k}"
            write_volume(root / "imagesTr" / f"{name}_0000.nii.gz", out.image, case.spacing_mm)
            write_volume(root / "labelsTr" / f"{name}.nii.gz", out.label, case.spacing_mm)
    return root


def phantom_report(out: Path, scans: int) -> Path:
    from tumorsynth.phantom import make_phantom

    cases = [make_phantom(seed=s, spacing_mm=2.0) for s in (0, 1)]
    real = write_dataset(out / "phantom" / "real", cases, TRUTH, scans, seed=0)
    report = run_realism([real], out / "phantom" / "report", scans_per_host=scans,
                         calibrate=True)  # fmt: skip
    shutil.copyfile(report.files["figure"], out / "realism_phantom.png")
    return out / "realism_phantom.png"


def ct_report(out: Path, scans: int) -> Path:
    case = read_case(CT, CT_MASK)
    real = write_dataset(out / "ct" / "real", [case], "syntumor", scans, seed=5000)
    hosts = host_sources([str(DATA / CT)], [str(DATA / CT_MASK)], None)
    report = run_realism([real], out / "ct" / "report", hosts=hosts, scans_per_host=scans,
                         calibrate=True)  # fmt: skip
    shutil.copyfile(report.files["figure"], out / "realism_ct.png")
    return out / "realism_ct.png"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/realism"))
    parser.add_argument("--docs", type=Path, default=None, help="Copy the PNGs here too.")
    parser.add_argument("--only", choices=("previews", "phantom", "ct"), default=None)
    parser.add_argument("--scans", type=int, default=16, help="Scans per host and real scans.")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = {"previews": lambda: previews(args.out),
            "phantom": lambda: [phantom_report(args.out, args.scans // 2)],
            "ct": lambda: [ct_report(args.out, args.scans)]}  # fmt: skip
    for name, job in jobs.items():
        if args.only not in (None, name):
            continue
        start = time.process_time()
        files = job()
        print(f"{name}: {time.process_time() - start:.1f} s of CPU; wrote "
              f"{', '.join(str(f) for f in files)}")  # fmt: skip
        for f in files:
            if args.docs is not None:
                shutil.copyfile(f, args.docs / f.name)


if __name__ == "__main__":
    main()
