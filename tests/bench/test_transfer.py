"""``tumorsynth bench transfer``: settings, statistics, and a tiny run that resumes."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from scipy import stats
from tumorsynth.cli import main

import tumorsynth as ts
from tumorsynth.bench import transfer as transfer_module
from tumorsynth.bench.transfer import run_transfer
from tumorsynth.bench.transfer_config import load_transfer_config
from tumorsynth.bench.transfer_stats import aggregate, compare
from tumorsynth.errors import ConfigError
from tumorsynth.io.volume import write_volume
from tumorsynth.phantom import make_phantom

RECIPE = {"phantom_spacing_mm": 3.0, "patch_size": [32, 32, 32], "channels": [4, 8, 16],
          "batch_size": 2, "num_workers": 0, "warmup_steps": 1, "steps": 2, "val_every": 2,
          "save_every": 1, "device": "cpu", "threads": 1}  # fmt: skip


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"configs": {"liver": "liver"}}, "at least two synthesis configs"),
        ({"recipe": {"synth_config": "liver"}}, "recipe: sets ['synth_config']"),
        ({"recipe": {"stesp": 3}}, "did you mean 'steps'"),
        ({"test_synthesis": ["calibrated"]}, "['calibrated'] are not among configs"),
        ({"configs": {"a": "liver", "b": "nope"}}, "configs.b"),
        ({"seeds": [0, 0]}, "each once"),
        ({"test_phantoms": []}, "no test scans"),
    ],
)
def test_settings_that_cannot_work_are_one_message(settings, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        load_transfer_config(settings)


def test_a_recipe_file_and_dotted_overrides_are_read(tmp_path):
    (tmp_path / "recipe.yaml").write_text("steps: 40\nlr: 1.0e-3\n")
    (tmp_path / "t.yaml").write_text("recipe: recipe.yaml\nseeds: [3, 4]\n")
    cfg = load_transfer_config(tmp_path / "t.yaml", {"recipe.steps": 7, "test_seed": 2})
    run = cfg.train_config("liver", 4, tmp_path / "run")
    assert (run.steps, run.lr, run.seed, run.synth_config) == (7, 1e-3, 4, "liver")
    assert cfg.seeds == (3, 4) and cfg.test_seed == 2


@pytest.mark.parametrize("name", ["transfer_cpu.yaml", "transfer_gpu.yaml"])
def test_example_settings_are_valid(name):
    from toy import REPO

    cfg = load_transfer_config(REPO / "examples" / "configs" / name)
    assert list(cfg.configs) == ["syntumor", "liver"] and cfg.seeds == (0, 1, 2)
    recipe = cfg.train_config("liver", 2, "run")
    assert recipe.synth_config == "liver" and recipe.seed == 2
    if name == "transfer_gpu.yaml":  # the reference's recipe
        assert (recipe.patch_size, recipe.lr, recipe.batch_size) == ((96, 96, 96), 4e-4, 2)


def test_the_paired_comparison_is_scipys_on_known_numbers():
    dice = {"a": [0.50, 0.60, 0.55], "b": [0.58, 0.61, 0.66]}
    per_case = {"a": [[0.2, 0.5, 0.9, 0.4]] * 3, "b": [[0.3, 0.5, 1.0, 0.6]] * 3}
    scores = {c: {s: {"t": {m: None for m in ("nsd", "sensitivity", "raw_sensitivity_5mm",
                                               "raw_fp_per_case", "sensitivity_5mm")}
                       | {"dice": dice[c][s], "fp_per_case": 1.0 + s}}
                  for s in range(3)} for c in "ab"}  # fmt: skip
    cases = {c: {s: {"t": [{"dice": v, "fp": 1} for v in per_case[c][s]]} for s in range(3)}
             for c in "ab"}  # fmt: skip
    result = compare(scores, cases, "a")["b"]["t"]
    d = np.subtract(dice["b"], dice["a"])
    assert result["dice"]["mean_diff"] == pytest.approx(d.mean())
    assert result["dice"]["p_seeds"] == pytest.approx(stats.ttest_rel(dice["b"], dice["a"]).pvalue)
    half = stats.t.ppf(0.975, 2) * d.std(ddof=1) / np.sqrt(3)
    assert result["dice"]["ci95"] == pytest.approx([d.mean() - half, d.mean() + half])
    wilcoxon = stats.wilcoxon(per_case["b"][0], per_case["a"][0], zero_method="zsplit").pvalue
    assert result["dice"]["p_cases"] == pytest.approx(wilcoxon)
    assert result["dice"]["case_mean_diff"] == pytest.approx(0.1)
    assert result["fp_per_case"]["mean_diff"] == 0.0 and result["fp_per_case"]["p_seeds"] is None
    summary = aggregate(scores)["t"]["b"]["dice"]
    assert summary["mean"] == pytest.approx(np.mean(dice["b"]))
    assert summary["sd"] == pytest.approx(np.std(dice["b"], ddof=1))


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    folder = tmp_path_factory.mktemp("labelled")
    case = make_phantom(seed=3005, spacing_mm=3.0)
    result = ts.synthesize(case, config="liver", seed=1)
    write_volume(folder / "scan.nii.gz", result.image, case.spacing_mm)
    write_volume(folder / "scan_label.nii.gz", result.label, case.spacing_mm)
    return folder


@pytest.mark.slow
def test_a_tiny_experiment_writes_its_tables_and_resumes(tmp_path, labelled, monkeypatch, capsys):
    settings = tmp_path / "transfer.yaml"
    settings.write_text(json.dumps({
        "recipe": RECIPE, "seeds": [0, 1], "test_phantoms": [2000], "test_cases_per_host": 1,
        "labelled_images": [str(labelled / "scan.nii.gz")],
        "labelled_labels": [str(labelled / "scan_label.nii.gz")],
    }))  # fmt: skip
    out = tmp_path / "out"
    main(["bench", "transfer", str(settings), "--out", str(out), "--device", "cpu", "--quiet"])
    printed = capsys.readouterr().out
    sets = ["phantom/syntumor", "phantom/liver", "labelled"]
    assert all(f"| {s} | {c} |" in printed for s in sets for c in ("syntumor", "liver"))
    for name in ("syntumor_seed0", "liver_seed0", "syntumor_seed1", "liver_seed1"):
        assert (out / "runs" / name / "checkpoints" / "last.pt").is_file()
    result = json.loads((out / "transfer.json").read_text())
    rows = list(csv.DictReader((out / "runs.csv").open()))
    assert len(rows) == 2 * 2 * len(sets) and (out / "transfer.png").stat().st_size > 10_000
    assert set(result["comparison"]["liver"]) == set(sets)
    assert result["summary"]["labelled"]["liver"]["dice"]["n"] == 2
    markdown = (out / "transfer.md").read_text()
    assert "| liver | labelled | tumour Dice |" in markdown

    # run again: nothing is trained nor scored again, and the tables are the same
    monkeypatch.setattr(transfer_module, "train", lambda *a, **k: pytest.fail("trained again"))
    monkeypatch.setattr(transfer_module.Predictor, "from_checkpoint",
                        lambda *a, **k: pytest.fail("scored again"))  # fmt: skip
    again = run_transfer(settings, out, device="cpu", progress=False)
    assert again.result["summary"] == result["summary"]
    assert {t["status"] for t in again.result["timing"].values()} == {"done"}
    monkeypatch.undo()

    # more steps: the runs resume from their last.pt and are scored again
    more = run_transfer(settings, out, overrides={"recipe.steps": 3, "seeds": [0]},
                        device="cpu", progress=False)  # fmt: skip
    assert {t["status"] for t in more.result["timing"].values()} == {"resumed"}
    # another recipe in the same folder is refused before anything runs
    with pytest.raises(ConfigError, match=r"holds a run of another recipe .*lr"):
        run_transfer(settings, out, overrides={"recipe.lr": 0.1}, progress=False)
