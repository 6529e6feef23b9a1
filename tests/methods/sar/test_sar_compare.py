"""``sar compare``: every initialisation fine-tuned and scored, the table, curves and figure
written; a used folder needs a flag; ``resume`` keeps finished runs."""

from __future__ import annotations

import csv
import json

import pytest
from tumorsynth.cli import main

from tumorsynth.errors import ConfigError
from tumorsynth.methods.sar.compare import compare, results_table, steps_to_fraction
from tumorsynth.methods.sar.config import load_sar_config

TINY = [
    "pretrain.phantom_spacing_mm=4.0", "pretrain.crop_sizes_mm=[[32,32,32],[64,64,64]]",
    "pretrain.network=unet", "pretrain.channels=[4,8,16]", "pretrain.input_size=[16,16,16]",
    "pretrain.shuffle_blocks=50", "pretrain.batch_size=2", "pretrain.n_val_crops=4",
    "pretrain.steps=2", "pretrain.val_every=1", "pretrain.num_workers=0", "pretrain.device=cpu",
    "pretrain.amp=false", "pretrain.threads=1",
    "finetune.phantom_spacing_mm=4.0", "finetune.patch_size=[16,16,16]", "finetune.steps=2",
    "finetune.val_every=1", "finetune.n_val_synthetic=1", "finetune.num_workers=0",
    "finetune.batch_size=2", "finetune.device=cpu", "finetune.amp=false", "finetune.threads=1",
    "finetune.synth_config=syntumor", "compare.budgets=[1.0]",
]  # fmt: skip


def test_the_table_gives_mean_and_sd_over_seeds_and_the_steps_to_95_percent():
    results = [
        {"init": i, "budget": b, "steps": int(b * 100), "seed": s, "dice": d, "nsd": d / 2,
         "sensitivity": 1.0}
        for i, base in (("scratch", 0.2), ("sar", 0.4))
        for b in (0.5, 1.0)
        for s, d in ((0, base * b), (1, base * b + 0.1))
    ]  # fmt: skip
    curves = [{"init": "sar", "budget": 1.0, "seed": s, "step": step, "tumour_dice": dice}
              for s in (0, 1) for step, dice in ((50, 0.1), (80, 0.39), (100, 0.4))]  # fmt: skip
    table = results_table(results, curves).splitlines()
    assert table[0].startswith("| initialisation | Dice @ 50% (50 steps) | Dice @ 100% (100 steps)")
    assert (
        table[2]
        == "| scratch | 0.150 ± 0.050 | 0.250 ± 0.050 | 0.125 ± 0.025 | 1.000 ± 0.000 | - |"
    )
    assert table[3].startswith("| sar | 0.250 ± 0.050 | 0.450 ± 0.050 |") and table[3].endswith(
        "| 80 |"
    )
    assert steps_to_fraction([(1, 0.0)]) is None


def test_compare_needs_validation_cases_and_a_fresh_or_flagged_folder(tmp_path):
    with pytest.raises(ConfigError, match="set n_val_synthetic"):
        compare(load_sar_config(None, [*TINY, "finetune.n_val_synthetic=0"]), tmp_path / "a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match="holds a comparison already"):
        compare(load_sar_config(None, TINY), tmp_path / "b")
    with pytest.raises(ConfigError, match="the pretrain section differs"):
        compare(load_sar_config(None, TINY), tmp_path / "b", resume=True)


@pytest.mark.slow
def test_compare_fine_tunes_every_initialisation_and_writes_the_results(tmp_path, capsys):
    out = tmp_path / "cmp"
    args = ["sar", "compare", "--out", str(out), *[a for s in TINY for a in ("--set", s)]]
    main(args)
    printed = capsys.readouterr().out
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["init"] for r in rows] == ["scratch", "restoration", "sar"]
    assert all(0.0 <= float(r["dice"]) <= 1.0 and r["steps"] == "2" for r in rows)
    assert printed.startswith("| initialisation |") and printed.count("\n| ") == 3
    assert (out / "results.md").read_text() in printed
    assert (out / "comparison.png").stat().st_size > 0
    curves = list(csv.DictReader((out / "curves.csv").open()))
    assert sorted({(r["init"], r["step"]) for r in curves}) == sorted(
        (i, s) for i in ("restoration", "sar", "scratch") for s in ("1", "2")
    )
    pretraining = list(csv.DictReader((out / "pretraining.csv").open()))
    assert {r["init"] for r in pretraining} == {"restoration", "sar"}
    assert all(r["scale_acc"] == "" for r in pretraining if r["init"] == "restoration")
    sar_run = json.loads((out / "finetune" / "sar" / "b1_s0" / "config.json").read_text())
    assert sar_run["init_from"].endswith("pretrain/sar/checkpoints/best.pt")
    # resume: the finished runs are kept, nothing trains again
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("last.pt")}
    with pytest.raises(SystemExit):
        main(args)  # a used folder needs --resume or --overwrite
    assert "holds a comparison already" in capsys.readouterr().err
    main([*args, "--resume"])
    assert {p: p.stat().st_mtime_ns for p in out.rglob("last.pt")} == stamps
