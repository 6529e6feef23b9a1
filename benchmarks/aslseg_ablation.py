"""ASLseg's ablation in one run, timed: the tiny CPU config by default.

Usage::

    python benchmarks/aslseg_ablation.py [--config examples/configs/aslseg_tiny.yaml]
                                         [--out benchmarks/results/aslseg_tiny] [--set KEY=VALUE ...]
                                         [--resume]

Runs ``tumorsynth aslseg run`` (every stage, round, the no-selection row and the ablation on the
held-out volumes), then prints the wall time of each stage (from each Trainer run's
``metrics.csv``), the rounds' records and the ablation table, and writes them to
``<out>/benchmark.json``. With the full GPU config (``aslseg_vit_b_gpu.yaml``) it needs the ViT-B
weights and a GPU.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import platform
import time
from pathlib import Path

import torch

from tumorsynth.methods.aslseg import load_aslseg_config, run_aslseg
from tumorsynth.methods.aslseg.ablation import table_markdown


def stage_seconds(out: Path) -> dict[str, float]:
    """Seconds of training per stage folder (the sum of ``step_s`` in its ``metrics.csv``)."""
    times = {}
    for metrics in sorted(out.glob("**/metrics.csv")):
        rows = [r for r in csv.DictReader(metrics.open()) if r["split"] == "train"]
        times[str(metrics.parent.relative_to(out))] = sum(float(r["step_s"]) for r in rows)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="examples/configs/aslseg_tiny.yaml")
    parser.add_argument("--out", default="benchmarks/results/aslseg_tiny")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = load_aslseg_config(args.config, [*args.overrides, f"out_dir={args.out}"])
    if config.threads:
        torch.set_num_threads(config.threads)
    start = time.perf_counter()
    result = run_aslseg(config, resume=args.resume, overwrite=not args.resume, progress=True)
    wall_s = time.perf_counter() - start
    out = Path(args.out)
    stages = stage_seconds(out)
    report = {
        "config": args.config, "overrides": args.overrides, "wall_s": wall_s,
        "stage_train_s": stages, "rounds": result.rounds, "ablation": result.ablation,
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "machine": platform.platform(), "processor": platform.processor(),
    }  # fmt: skip
    (out / "benchmark.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"wall time {wall_s:.0f} s ({torch.get_num_threads()} thread(s))")
    for name, seconds in stages.items():
        print(f"  {name:<20} {seconds:7.1f} s training")
    for r in result.rounds:
        acc = r["accepted"]
        print(f"round {r['round']}: {r['n_accepted']} of {r['n_candidates']} accepted "
              f"({r['n_accepted_tumour']} with tumour); accepted pseudo-label Dice "
              f"{acc['dice_mean']}, rejected {r['rejected']['dice_mean']}")  # fmt: skip
    if result.ablation:
        print(table_markdown(result.ablation))


if __name__ == "__main__":
    main()
