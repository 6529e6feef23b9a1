"""The SPARS results table: SPARS and every baseline in one run and one evaluation.

Usage::

    python benchmarks/spars_results.py [--config examples/configs/spars_tiny.yaml] [--run DIR]
                                       [--segmenter CKPT] [--phantoms 6] [--seed 500]
                                       [--out benchmarks/results/spars]

1. The SPARS run: ``--run`` (a ``tumorsynth spars train`` folder), else one trained here from
   ``--config`` into ``OUT/run`` (continued with ``resume`` when it is there).
2. The supervised baseline: ``--segmenter`` (a ``tumorsynth train`` checkpoint), else a small
   UNet trained here on phantom crops with the same synthetic tumours (the recipe of
   ``tests/train/test_learning.py``, 2 mm, 500 steps) into ``OUT/segmenter``.
3. Labelled volumes, none used to learn: ``--phantoms`` held-out phantoms (seeds 1100, ...) at 2 mm,
   and the real CTs of ``../shared/data`` with their liver masks (``example_ct.nii.gz``, 3 mm;
   ``example_ct_dicom.nii.gz``, 0.98 x 0.98 x 2 mm), each with synthetic tumours inserted from
   ``--seed`` (tumours of the run's ``synth_config``).
4. :func:`tumorsynth.methods.spars.compare.compare_methods` on each set;
   ``OUT/{phantoms,real_ct}/results.{md,json,png}``; the tables are printed.

On a 2-core CPU with the tiny config this takes about ten minutes (most of it the two trainings).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from tumorsynth.methods.spars.compare import (
    compare_methods,
    ct_cases,
    phantom_cases,
    table,
    write_comparison,
)
from tumorsynth.methods.spars.config import load_spars_config
from tumorsynth.methods.spars.model import load_run
from tumorsynth.methods.spars.run import train_spars

DATA = Path(
    os.environ.get("TUMORSYNTH_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
REAL = [
    ("totalsegmentator_example/example_ct.nii.gz",
     "totalsegmentator_example/example_ct_liver_mask.nii.gz"),
    ("totalsegmentator_example/example_ct_dicom.nii.gz",
     "totalsegmentator_example/example_ct_dicom_liver_mask.nii.gz"),
]  # fmt: skip
SEGMENTER_RECIPE = [
    "phantom_spacing_mm=2.0", "patch_size=[48,48,48]", "channels=[8,16,32,64]", "batch_size=4",
    "steps=500", "lr=3e-3", "warmup_steps=20", "synth_prob=0.8", "pos_fraction=0.5",
    "num_workers=1", "val_every=500", "save_every=500", "device=cpu", "threads=1",
]  # fmt: skip


def spars_run(args) -> Path:
    if args.run:
        return args.run
    out = args.out / "run"
    cfg = load_spars_config(args.config, {"out_dir": str(out)})
    train_spars(cfg, resume=(out / "config.json").is_file())
    return out


def segmenter(args, synth_config) -> Path:
    if args.segmenter:
        return args.segmenter
    from tumorsynth.train import load_train_config, train

    out = args.out / "segmenter"
    checkpoint = out / "checkpoints" / "last.pt"
    if not checkpoint.is_file():
        torch.manual_seed(0)
        cfg = load_train_config(None, [*SEGMENTER_RECIPE, f"out_dir={out}"])
        cfg = load_train_config(cfg, {"synth_config": synth_config})
        train(cfg, overwrite=True)
    return checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("examples/configs/spars_tiny.yaml"))
    parser.add_argument("--run", type=Path)
    parser.add_argument("--segmenter", type=Path)
    parser.add_argument("--phantoms", type=int, default=6)
    parser.add_argument("--seed", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/spars"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_run(spars_run(args))
    cfg = model.config
    checkpoint = segmenter(args, cfg.synth_config)
    sets = {"phantoms": phantom_cases(cfg, args.phantoms, args.seed, spacing_mm=2.0)}
    real = [(DATA / ct, DATA / mask) for ct, mask in REAL if (DATA / ct).exists()]
    if real:
        sets["real_ct"] = ct_cases(cfg, *zip(*real, strict=True), seed=args.seed)
    for name, cases in sets.items():
        results = compare_methods(model, cases, segmenter=checkpoint, seed=args.seed)
        note = (f"{len(cases)} {name} volumes with synthetic tumours (seed {args.seed}); "
                f"SPARS run {cfg.out_dir}; supervised: {checkpoint}")  # fmt: skip
        write_comparison(args.out / name, results, note)
        print(f"\n{name}: {note}\n{table(results)}")


if __name__ == "__main__":
    main()
