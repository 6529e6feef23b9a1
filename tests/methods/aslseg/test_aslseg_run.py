"""``tumorsynth aslseg run`` and ``segment`` end to end on a tiny config: the loop's mechanics, the
ablation, resuming, label maps in each CT's geometry, and bad input."""

from __future__ import annotations

import importlib.util
import itertools
import json

import numpy as np
import pytest
import SimpleITK as sitk
import yaml
from toy import data_file
from tumorsynth.cli import main

from tumorsynth.io.volume import read_volume, write_volume
from tumorsynth.methods.aslseg import data
from tumorsynth.methods.aslseg.ablation import ROWS

pytestmark = pytest.mark.skipif(importlib.util.find_spec("segment_anything") is None,
                                reason="needs segment-anything: pip install -e '.[aslseg]'")  # fmt: skip

SIZES = {"medium": 0.5, "large": 0.5}
# thresholds at which round 0 of this barely trained run accepts about half of the unlabelled
# slices (agreement 0.90-1.00, confidence 0.83-0.91 here), so that round 1 has work to do
TINY = {
    "n_host_phantoms": 1, "phantom_spacing_mm": 3.0, "synth_config": {"preset": "liver", "size_class": SIZES},
    "n_labelled_volumes": 2, "n_labelled_slices": 16, "n_unlabelled_phantoms": 1, "slice_stride": 2,
    "n_test_phantoms": 1, "phantom_synth_config": {"preset": "syntumor", "size_class": SIZES},
    "slice_size": 32, "ssl_steps": 6, "sam_steps": 4, "adapt_steps": 6, "ssl_batch_size": 4,
    "ssl_unlabelled_batch_size": 4, "sam_batch_size": 4, "adapt_batch_size": 4, "rounds": 2,
    "agreement_min": 0.97, "confidence_min": 0.85, "min_added": 1, "save_every": 3,
    "device": "cpu", "threads": 1, "amp": False,
}  # fmt: skip


def _cli(capsys, *args: str) -> tuple[int, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("aslseg")
    config = folder / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    out = folder / "run"
    main(["aslseg", "run", str(config), "--out", str(out), "--quiet"])
    return out


@pytest.mark.slow
def test_the_loop_grows_the_labelled_set_within_its_thresholds(run_dir):
    rounds = json.loads((run_dir / "rounds.json").read_text())
    assert [r["round"] for r in rounds] == [0, 1]
    assert rounds[0]["n_accepted"] >= 1  # the labelled set grows
    for before, after in itertools.pairwise(rounds):
        assert after["n_labelled"] == before["n_labelled_after"] > before["n_labelled"]
        assert after["n_unlabelled"] == before["n_unlabelled"] - before["n_accepted"]
    seen_accepted: set[str] = set()
    for r in rounds:
        with np.load(run_dir / f"round{r['round']}" / "selection.npz") as sel:
            ids, accepted = sel["ids"].tolist(), sel["accepted"]
            passed = (sel["agreement"] >= TINY["agreement_min"]) & (
                sel["confidence"] >= TINY["confidence_min"]
            )
        assert not (accepted & ~passed).any()  # no slice below a threshold was accepted
        assert accepted.sum() == r["n_accepted"] and len(ids) == r["n_candidates"]
        assert not seen_accepted & set(ids)  # an accepted slice is never a candidate again
        seen_accepted |= {i for i, a in zip(ids, accepted, strict=True) if a}
        assert r["accepted"]["n_known"] == r["n_accepted"]  # phantoms: every pseudo-label checked
    labelled = {json.dumps(x) for x in json.loads((run_dir / "labelled.json").read_text())}
    assert len(labelled) == 2
    assert not any(i.startswith("synthetic") for i in seen_accepted)  # only unlabelled slices move


@pytest.mark.slow
def test_the_ablation_has_every_row_with_misses_counted(run_dir):
    table = json.loads((run_dir / "ablation.json").read_text())
    assert [r["row"] for r in table["rows"]] == list(ROWS)
    for row in table["rows"]:
        assert row["n_volumes"] == 1 and 0 <= row["dice_mean"] <= 1
        assert np.isfinite(row["hd95_mean_mm"])  # a miss counts the diagonal, it never vanishes
    for name in ("ablation.md", "ablation.png", "rounds.png", "montage.png", "rounds.csv"):
        assert (run_dir / name).stat().st_size > 0
    assert "| stage I alone |" in (run_dir / "ablation.md").read_text()
    assert not list(run_dir.rglob(".*tmp*")), "temporary files left behind"


@pytest.mark.slow
def test_resume_redoes_only_what_is_missing_and_refuses_another_config(run_dir, capsys):
    config = run_dir.parent / "tiny.yaml"
    ssl_metrics = (run_dir / "round0" / "ssl" / "metrics.csv").read_text()
    (run_dir / "final" / "ssl" / "checkpoints" / "best.pt").unlink()
    (run_dir / "ablation.md").unlink()
    code, out = _cli(
        capsys, "aslseg", "run", str(config), "--out", str(run_dir), "--resume", "--quiet"
    )
    assert code == 0, out
    assert (run_dir / "final" / "ssl" / "checkpoints" / "best.pt").is_file()
    assert (run_dir / "ablation.md").is_file()
    assert (run_dir / "round0" / "ssl" / "metrics.csv").read_text() == ssl_metrics  # not retrained
    code, out = _cli(capsys, "aslseg", "run", str(config), "--out", str(run_dir), "--quiet")
    assert code == 1 and "holds an ASLseg run already" in out
    code, out = _cli(capsys, "aslseg", "run", str(config), "--out", str(run_dir), "--resume",
                     "--set", "rounds=3")  # fmt: skip
    assert (
        code == 1 and "rounds differ" in out and out.startswith("error:") and out.count("\n") == 1
    )


def _write_case(folder, volume):
    (folder / "truth").mkdir(parents=True, exist_ok=True)
    geometry = (volume.spacing_mm, volume.origin_mm, volume.direction)
    write_volume(folder / "ct.nii.gz", volume.image_hu.astype(np.int16), *geometry)
    write_volume(folder / "liver.nii.gz", volume.liver.astype(np.uint8), *geometry)
    labels = volume.liver.astype(np.uint8) + volume.tumour.astype(np.uint8)
    write_volume(folder / "truth" / "ct.nii.gz", labels, *geometry)


@pytest.mark.slow
def test_segment_writes_label_maps_in_the_cts_geometry(run_dir, tmp_path, capsys):
    (volume,) = data.phantom_volumes([300], 3.0, "syntumor", tumour_seed=4, prefix="case")
    _write_case(tmp_path / "in", volume)
    ct, liver = tmp_path / "in" / "ct.nii.gz", tmp_path / "in" / "liver.nii.gz"
    for use in ("segmenter", "refined"):
        pred = tmp_path / use
        code, out = _cli(capsys, "aslseg", "segment", str(run_dir), str(ct), "--masks", str(liver),
                         "--out", str(pred), "--use", use, "--quiet")  # fmt: skip
        assert code == 0, out
        written, source = sitk.ReadImage(str(pred / "ct.nii.gz")), sitk.ReadImage(str(ct))
        assert written.GetSize() == source.GetSize()
        assert np.allclose(written.GetSpacing(), source.GetSpacing())
        assert np.allclose(written.GetOrigin(), source.GetOrigin(), atol=1e-4)
        assert written.GetDirection() == source.GetDirection()
        labels = read_volume(pred / "ct.nii.gz").array
        assert set(np.unique(labels)) <= {0, 1, 2} and np.array_equal(labels >= 1, volume.liver)
    code, out = _cli(capsys, "evaluate", str(tmp_path / "refined"), str(tmp_path / "in" / "truth"),
                     "--out", str(tmp_path / "eval"), "--quiet")  # fmt: skip
    assert code == 0, out
    assert json.loads((tmp_path / "eval" / "summary.json").read_text())["n_cases"] == 1
    write_volume(
        tmp_path / "empty.nii.gz", np.zeros(volume.liver.shape, np.uint8), volume.spacing_mm
    )
    code, out = _cli(capsys, "aslseg", "segment", str(run_dir), str(ct), "--masks",
                     str(tmp_path / "empty.nii.gz"), "--out", str(tmp_path / "none"))  # fmt: skip
    assert code == 1 and "the organ mask is empty" in out and not (tmp_path / "none").exists()


@pytest.mark.slow
def test_segment_a_real_ct_keeps_its_geometry(run_dir, tmp_path, capsys):
    ct = data_file("totalsegmentator_example/example_ct_sm.nii.gz")
    mask = data_file("totalsegmentator_example/example_ct_sm_liver_mask.nii.gz")
    code, out = _cli(capsys, "aslseg", "segment", str(run_dir), str(ct), "--masks", str(mask),
                     "--out", str(tmp_path / "pred"), "--quiet")  # fmt: skip
    assert code == 0, out
    labels, source = read_volume(tmp_path / "pred" / "example_ct_sm.nii.gz"), read_volume(ct)
    assert labels.array.shape == source.array.shape
    assert np.allclose(labels.direction, source.direction) and np.allclose(
        labels.origin_mm, source.origin_mm, atol=1e-3
    )
    assert np.array_equal(labels.array >= 1, read_volume(mask).array > 0)


def test_bad_input_is_one_line_and_nothing_is_written(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({**TINY, "n_unlabelled_phantoms": 0}))
    out = tmp_path / "run"
    code, text = _cli(capsys, "aslseg", "run", str(config), "--out", str(out))
    assert (
        code == 1
        and text.startswith("error: aslseg config: no unlabelled scans")
        and not out.exists()
    )
    config.write_text(yaml.safe_dump({**TINY, "sam_checkpoint": str(tmp_path / "sam_vit_b.pth")}))
    code, text = _cli(capsys, "aslseg", "run", str(config), "--out", str(out))
    assert code == 1 and "sam_vit_b.pth: no such SAM checkpoint" in text and not out.exists()
    ct = np.full((30, 30, 8), 50.0, np.float32)
    write_volume(tmp_path / "ct.nii.gz", ct, (3.0, 3.0, 3.0))
    write_volume(tmp_path / "empty.nii.gz", np.zeros(ct.shape, np.uint8), (3.0, 3.0, 3.0))
    config.write_text(yaml.safe_dump({**TINY, "unlabelled_images": [str(tmp_path / "ct.nii.gz")],
                                      "unlabelled_masks": [str(tmp_path / "empty.nii.gz")]}))  # fmt: skip
    code, text = _cli(capsys, "aslseg", "run", str(config), "--out", str(out), "--quiet")
    assert code == 1 and "ct.nii.gz: the organ mask is empty" in text and not out.exists()
    assert [line for line in text.splitlines() if "error" in line] == text.splitlines()[-1:]
    # segment: a CT without its liver mask, and one whose liver is empty
    pred = tmp_path / "pred"
    code, text = _cli(capsys, "aslseg", "segment", str(tmp_path), str(tmp_path / "ct.nii.gz"),
                      "--out", str(pred))  # fmt: skip
    assert code == 1 and "no liver mask given" in text and not pred.exists()
    code, text = _cli(capsys, "aslseg", "segment", str(tmp_path), str(tmp_path / "ct.nii.gz"),
                      "--masks", str(tmp_path / "empty.nii.gz"), "--out", str(pred))  # fmt: skip
    assert code == 1 and "not a finished ASLseg run" in text and not pred.exists()
    code, text = _cli(capsys, "aslseg", "segment", str(tmp_path), str(tmp_path / "ct.nii.gz"),
                      "--masks", str(tmp_path / "empty.nii.gz"), "--out", str(tmp_path))  # fmt: skip
    assert code == 1 and "ct.nii.gz: is an input" in text
