"""Throughput of ``tumorsynth generate`` on the built-in phantom, including all file I/O.

Usage::

    python benchmarks/generate_speed.py [--n-cases 16] [--spacing 1.0] [--workers 1 2]
                                        [--config liver] [--out results.json]

For each worker count, a fresh dataset of ``--n-cases`` cases is written to a temporary folder (int16
NIfTI, gzip level 1, label, record; manifest and dataset.json at the end) and timed:

- ``cases_per_s``: cases over the whole run's wall time (start-up included: building the phantom in
  every process, starting the workers);
- ``steady_cases_per_s``: cases after the first one over the time after the first one (what a long
  run approaches);
- ``first_case_s``: time to the first finished case.

The 320 x 320 x 240 phantom at 1 mm is a typical abdominal CT size (24.6 M voxels, 49 MB as int16).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import tumorsynth as ts
from tumorsynth.dataset.generate import generate_dataset


def bench(n_cases: int, spacing_mm: float, workers: int, config: str) -> dict:
    """One timed run into a fresh folder."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = generate_dataset(
            Path(tmp) / "Dataset900_Bench",
            n_cases,
            config=config,
            seed=0,
            spacing_mm=spacing_mm,
            workers=workers,
            progress=False,
        )
        wall = time.perf_counter() - start
        size = sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file())
    assert summary.n_cases == n_cases, summary
    first = summary.first_case_seconds or 0.0
    return {
        "workers": workers,
        "n_cases": n_cases,
        "wall_s": round(wall, 2),
        "cases_per_s": round(n_cases / wall, 3),
        "first_case_s": round(first, 2),
        "steady_cases_per_s": round((n_cases - 1) / (wall - first), 3) if n_cases > 1 else None,
        "tumours": summary.n_tumours,
        "bytes_written": size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-cases", type=int, default=16)
    parser.add_argument("--spacing", type=float, default=1.0, help="phantom voxel size, mm")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--config", default="liver")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()

    bench(2, 4.0, 1, args.config)  # warm the numba cache and the imports, untimed
    results = {
        "tumorsynth": ts.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
        "spacing_mm": args.spacing,
        "config": args.config,
        "runs": [bench(args.n_cases, args.spacing, w, args.config) for w in args.workers],
    }
    print(
        f"generate on the phantom at {args.spacing:g} mm, config {args.config}, {results['machine']}"
    )
    print(f"{'workers':>7} {'cases':>5} {'wall s':>7} {'cases/s':>8} {'steady/s':>9} {'1st s':>6}")
    for r in results["runs"]:
        print(
            f"{r['workers']:>7} {r['n_cases']:>5} {r['wall_s']:>7.1f} {r['cases_per_s']:>8.2f} "
            f"{r['steady_cases_per_s'] or 0:>9.2f} {r['first_case_s']:>6.1f}"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
