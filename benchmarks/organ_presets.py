"""What the pancreas and kidney presets draw on the phantom and on TotalSegmentator's real CT: the
measured tables of docs/organs.md.

For each preset and host, ``--seeds`` cases (one tumour each): equivalent diameters of the drawn
shapes, contrast of each kind (the organ's level minus the median of the tumour's own tissue,
beyond its edge blur and necrotic core, divided by the preset's enhancement scale for this scan, so
that it reads at the reference enhancement), the exophytic share and how far outside the organ
those reach (the largest distance of a changed voxel to the organ, mm), the pancreatic head's
share (phantom), and the CPU time per case (draw and render)::

    python benchmarks/organ_presets.py [--seeds 40]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

import tumorsynth as ts
from tumorsynth.engine.label_maps import select_organ
from tumorsynth.engine.packing import pack_lesion
from tumorsynth.io.case import read_case
from tumorsynth.kernels import layout as L
from tumorsynth.kernels.reference import lesion_fields
from tumorsynth.phantom import make_phantom, organ_case
from tumorsynth.phantom.pancreas import PARTS

DATA = Path(
    os.environ.get("TUMORSYNTH_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
REFERENCE_HU = {"pancreas": 100.0, "kidney": 180.0}


def tissue_median(case: ts.Case, result: ts.Synthesis, lesion) -> float | None:
    """Median HU of the tumour's labelled voxels beyond its edge blur and necrotic core."""
    row, _, extent = pack_lesion(lesion, result.params.organ_hu)
    centre, spacing = np.asarray(lesion.center_mm), np.asarray(case.spacing_mm)
    lo = np.maximum(np.floor((centre - extent) / spacing).astype(int), 0)
    hi = np.minimum(np.ceil((centre + extent) / spacing).astype(int) + 1, case.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    axes = [np.arange(a, b) for a, b in zip(lo, hi, strict=True)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1)
    f = lesion_fields(row, grid * spacing - centre)
    own = (f["sd"] <= -L.EDGE_REACH * row[L.EDGE_SIGMA]) & (
        f["rho"] > row[L.NECRO_RHO] + 5 * L.NECRO_SOFT
    )
    values = result.image[box][own & (result.label[box] == 2)]
    return float(np.median(values)) if values.size >= 5 else None


def measure(organ: str, case: ts.Case, seeds: int) -> dict:
    outside = np.asarray(case.organ) == 0
    distance = ndimage.distance_transform_edt(outside, sampling=case.spacing_mm)
    rows = {"diameter": [], "contrast": {}, "exophytic": [], "outside": [], "reach": [], "head": []}
    parts = case.extras.get("pancreas_parts")
    cpu = 0.0
    for seed in range(seeds):
        start = time.process_time()
        result = ts.synthesize(case, config=organ, seed=seed)
        cpu += time.process_time() - start
        (lesion,) = result.params.lesions
        rows["diameter"].append(2 * np.prod(lesion.shape.semi_axes_mm) ** (1 / 3))
        median = tissue_median(case, result, lesion)
        if median is not None:
            scale = np.clip(result.params.organ_hu / REFERENCE_HU[organ], 0.25, 2.0)
            contrast = (result.params.organ_hu - median) / scale
            rows["contrast"].setdefault(lesion.intensity.kind, []).append(contrast)
        tumour = result.label == 2
        rows["exophytic"].append(lesion.exophytic)
        if lesion.exophytic:
            rows["outside"].append((tumour & outside).sum() / tumour.sum())
            rows["reach"].append(distance[(result.image != case.image) & outside].max())
        if parts is not None and organ == "pancreas":
            voxel = tuple(np.round(np.asarray(lesion.center_mm) / case.spacing_mm).astype(int))
            rows["head"].append(parts[voxel] == PARTS["head"])
    rows["cpu_ms"] = 1000 * cpu / seeds
    return rows


def _range(values) -> str:
    if not len(values):
        return "-"
    v = np.asarray(values, float)
    return f"{np.median(v):.0f} ({v.min():.0f}-{v.max():.0f}), n {len(v)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=40)
    seeds = parser.parse_args().seeds
    folder = DATA / "totalsegmentator_example"
    phantom = make_phantom(seed=0, spacing_mm=2.0)
    print("| preset | host | diameter, mm | contrast at the reference, HU (per kind) | exophytic: "
          "share, % outside, reach mm | head share | CPU ms/case |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for organ in ("pancreas", "kidney"):
        hosts = {
            "phantom 2 mm": organ_case(phantom, organ),
            "TotalSegmentator CT 3 mm": read_case(
                folder / "example_ct.nii.gz", folder / "example_seg_fast_force_split.nii.gz",
                select_organ(organ),
            ).case,
        }  # fmt: skip
        for where, case in hosts.items():
            r = measure(organ, case, seeds)
            kinds = "; ".join(f"{k} {_range(v)}" for k, v in sorted(r["contrast"].items()))
            exo = "-"
            if organ == "kidney":
                share = np.mean(r["exophytic"])
                exo = (f"{share:.2f}; {_range(100 * np.asarray(r['outside']))}; "
                       f"max {max(r['reach']):.1f}")  # fmt: skip
            head = f"{np.mean(r['head']):.2f}" if r["head"] else "-"
            print(f"| {organ} | {where} | {_range(r['diameter'])} | {kinds} | {exo} | {head} | "
                  f"{r['cpu_ms']:.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
