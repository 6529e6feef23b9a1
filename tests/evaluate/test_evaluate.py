"""``tumorsynth.evaluate`` and ``tumorsynth evaluate``: metrics with known answers, files, errors."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from tumorsynth.cli import main

from tumorsynth.errors import InputError
from tumorsynth.evaluate import (
    BIN_NAMES,
    RADIUS_BINS_MM,
    bin_name,
    detection,
    dice,
    equivalent_radius_mm,
    evaluate_case,
    evaluate_files,
    lesions,
    pair_files,
    summarise,
    surface_dice,
)
from tumorsynth.evaluate.report import csv_text
from tumorsynth.io.volume import RAS_DIRECTION, write_volume

SPACING = (0.8, 1.0, 2.5)  # anisotropic on purpose
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
OUTPUTS = {"cases.csv", "lesions.csv", "summary.json", "summary.png"}


def box(shape=(24, 24, 12), *slices) -> np.ndarray:
    mask = np.zeros(shape, bool)
    for s in slices:
        mask[s] = True
    return mask


# -- metrics on arrays ---------------------------------------------------------------------------


def test_dice_of_a_known_overlap_and_empty_masks():
    a = box((10, 10, 10), np.s_[0:4, 0:4, 0:4])  # 64 voxels
    b = box((10, 10, 10), np.s_[2:6, 0:4, 0:4])  # 64 voxels, 32 shared
    assert dice(a, b) == pytest.approx(0.5)
    assert dice(a, a) == 1.0
    empty = np.zeros_like(a)
    assert dice(empty, empty) == 1.0 and dice(a, empty) == 0.0 and dice(empty, a) == 0.0


def test_radius_is_that_of_the_ball_of_equal_volume():
    mask = box((12, 12, 6), np.s_[1:6, 2:9, 1:4])  # 5 x 7 x 3 = 105 voxels
    labels, found = lesions(mask, SPACING)
    (lesion,) = found
    volume = 105 * 0.8 * 1.0 * 2.5
    assert lesion.n_voxels == 105 and lesion.volume_mm3 == pytest.approx(volume)
    assert lesion.radius_mm == pytest.approx((3 * volume / (4 * math.pi)) ** (1 / 3))
    assert lesion.centroid_vox == pytest.approx((3.0, 5.0, 2.0))
    assert labels.shape == mask.shape and set(np.unique(labels)) == {0, 1}
    assert equivalent_radius_mm(4 / 3 * math.pi * 1000) == pytest.approx(10.0)


def test_components_use_26_connectivity():
    mask = np.zeros((6, 6, 6), bool)
    mask[1, 1, 1] = mask[2, 2, 2] = True  # corner to corner: one lesion
    mask[4, 4, 4] = True
    _, found = lesions(mask, (1.0, 1.0, 1.0))
    assert [c.n_voxels for c in found] == [2, 1]


def test_bins_are_half_open():
    assert (0.0, 5.0, 10.0, 20.0, math.inf) == RADIUS_BINS_MM
    assert BIN_NAMES == ("0-5", "5-10", "10-20", ">20")
    assert bin_name(0.0) == "0-5" and bin_name(np.nextafter(5.0, 0.0)) == "0-5"
    assert bin_name(5.0) == "5-10" and bin_name(np.nextafter(10.0, 0.0)) == "5-10"
    assert bin_name(10.0) == "10-20" and bin_name(19.999) == "10-20"
    assert bin_name(20.0) == ">20" and bin_name(1e6) == ">20"
    for bad in (-1.0, math.nan):
        with pytest.raises(ValueError, match="radius"):
            bin_name(bad)


def test_detection_finds_hit_missed_and_false_positive_lesions():
    gt = box((30, 30, 12), np.s_[2:8, 2:8, 2:6], np.s_[20:24, 20:24, 2:4])  # big, small
    pred = box((30, 30, 12), np.s_[5:6, 5:6, 3:4], np.s_[2:4, 20:26, 8:10])  # 1 voxel hit, an FP
    found = detection(pred, gt, SPACING)
    assert found.n_lesions == 2 and found.detected == (True, False)
    assert found.n_detected == 1 and found.n_false_positives == 1
    (fp,) = found.false_positives
    assert fp.n_voxels == 2 * 6 * 2 and fp.centroid_vox == pytest.approx((2.5, 22.5, 8.5))
    r_big, r_small = (c.radius_mm for c in found.lesions)
    assert r_big == pytest.approx(equivalent_radius_mm(6 * 6 * 4 * 2.0))
    assert r_small == pytest.approx(equivalent_radius_mm(4 * 4 * 2 * 2.0))
    bins = found.per_bin()
    assert bins[bin_name(r_big)][0] >= 1 and sum(n for _, n in bins.values()) == 2
    nothing = detection(np.zeros_like(gt), np.zeros_like(gt), SPACING)
    assert nothing.n_lesions == nothing.n_false_positives == 0


def test_surface_dice_tolerance_in_mm():
    gt = box((30, 30, 16), np.s_[8:18, 8:18, 4:10])
    spacing = (1.0, 1.0, 2.5)
    assert surface_dice(gt, gt, spacing) == 1.0
    assert surface_dice(np.roll(gt, 2, axis=0), gt, spacing) == 1.0  # 2 mm: within tolerance
    assert surface_dice(np.roll(gt, 3, axis=0), gt, spacing) < 1.0  # 3 mm
    shifted = np.roll(gt, 1, axis=2)  # one voxel, but 2.5 mm
    assert surface_dice(shifted, gt, spacing) < 1.0
    assert surface_dice(shifted, gt, spacing, tolerance_mm=2.5) == 1.0
    empty = np.zeros_like(gt)
    assert surface_dice(empty, empty, spacing) == 1.0 and surface_dice(gt, empty, spacing) == 0.0


def test_evaluate_case_on_label_maps():
    gt = np.zeros((24, 24, 12), np.uint8)
    gt[2:22, 2:22, 1:11] = 1
    gt[4:8, 4:8, 2:5] = 2
    pred = gt.copy()
    pred[4:8, 4:8, 2:5] = 1  # tumour missed, organ right
    pred[15:17, 15:17, 6:7] = 2  # a false positive inside the organ
    m = evaluate_case(pred, gt, SPACING)
    assert m.dice == 0.0 and m.nsd == 0.0 and m.organ_dice == 1.0
    assert (m.detection.n_lesions, m.detection.n_detected, m.detection.n_false_positives) == (
        1,
        0,
        1,
    )
    row = json.loads(json.dumps(m.to_dict()))
    assert row["lesions"][0]["detected"] is False and row["false_positives"][0]["bin"] == "0-5"
    assert evaluate_case(pred, gt, SPACING, organ_label=None).organ_dice is None
    no_organ = np.where(gt == 1, 0, gt)
    assert evaluate_case(no_organ, no_organ, SPACING).organ_dice is None
    with pytest.raises(InputError, match=r"\(24, 24, 12\).*\(24, 24, 10\)"):
        evaluate_case(pred, gt[:, :, :10], SPACING)
    with pytest.raises(InputError, match="must differ"):
        evaluate_case(pred, gt, SPACING, organ_label=2)


def test_summarise_pools_bins_and_false_positives():
    gt = box((24, 24, 12), np.s_[2:4, 2:4, 2:4], np.s_[10:20, 10:20, 2:10])
    hit_small = box((24, 24, 12), np.s_[2:3, 2:3, 2:3])
    cases = [evaluate_case(gt, gt, SPACING, tumour_label=1, organ_label=None)]
    cases.append(evaluate_case(hit_small | box((24, 24, 12), np.s_[22:23, 0:1, 0:1]), gt, SPACING,
                               tumour_label=1, organ_label=None))  # fmt: skip
    s = summarise(cases)
    small, large = (bin_name(c.radius_mm) for c in cases[0].detection.lesions)
    assert s["n_cases"] == 2 and s["dice"]["n"] == 2 and s["organ_dice"]["n"] == 0
    assert s["detection"]["bins"][small] == {
        "range_mm": [RADIUS_BINS_MM[BIN_NAMES.index(small)], RADIUS_BINS_MM[BIN_NAMES.index(small) + 1]],
        "n_lesions": 2, "n_detected": 2, "sensitivity": 1.0,
    }  # fmt: skip
    assert s["detection"]["bins"][large]["sensitivity"] == 0.5
    assert s["detection"]["bins"][">20"]["sensitivity"] is None
    assert s["detection"]["all"] == {"n_lesions": 4, "n_detected": 3, "sensitivity": 0.75}
    assert s["detection"]["false_positives"] == {"total": 1, "per_case": 0.5}


# -- files and the command line ------------------------------------------------------------------


def label_map(shift: int = 0) -> np.ndarray:
    """0 background, 1 liver, 2 tumour: an 8 x 8 x 5-voxel tumour (r 5.3 mm) and a 1-voxel one."""
    label = np.zeros((24, 24, 12), np.uint8)
    label[2:22, 2:22, 1:11] = 1
    label[5 + shift : 13 + shift, 5:13, 3:8] = 2
    label[16, 16, 8] = 2
    return label


@pytest.fixture
def folders(tmp_path):
    gt, pred = tmp_path / "labelsTs", tmp_path / "predictions"
    gt.mkdir(), pred.mkdir()
    for name in ("case_000", "case_001"):
        write_volume(gt / f"{name}.nii.gz", label_map(), SPACING)
    write_volume(pred / "case_000.nii.gz", label_map(), SPACING)  # perfect
    missed = label_map(shift=1)
    missed[16, 16, 8] = 1
    write_volume(pred / "case_001_0000.nrrd", missed, SPACING)  # other format, channel suffix
    return pred, gt


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_cli_writes_reports(folders, tmp_path, capsys):
    pred, gt = folders
    out = tmp_path / "eval"
    main(["evaluate", str(pred), str(gt), "--out", str(out), "--quiet"])
    printed = capsys.readouterr().out
    assert "evaluated 2 cases" in printed and "sensitivity" in printed and "summary.png" in printed
    assert {p.name for p in out.iterdir()} == OUTPUTS
    cases = read_csv(out / "cases.csv")
    assert [c["case"] for c in cases] == ["case_000", "case_001"]
    assert float(cases[0]["dice"]) == 1.0 and float(cases[0]["nsd"]) == 1.0
    assert 0 < float(cases[1]["dice"]) < 1 and cases[1]["n_detected"] == "1"
    assert all(c["n_lesions"] == "2" and c["n_false_positives"] == "0" for c in cases)
    rows = read_csv(out / "lesions.csv")
    assert [(r["case"], r["kind"], r["detected"]) for r in rows] == [
        ("case_000", "gt", "true"), ("case_000", "gt", "true"),
        ("case_001", "gt", "true"), ("case_001", "gt", "false"),
    ]  # fmt: skip
    one_voxel = equivalent_radius_mm(0.8 * 1.0 * 2.5)
    assert float(rows[1]["radius_mm"]) == pytest.approx(one_voxel, abs=1e-3)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_cases"] == 2 and summary["dice"]["n"] == 2
    assert summary["detection"]["bins"]["0-5"]["n_lesions"] == 2
    assert summary["detection"]["bins"]["0-5"]["n_detected"] == 1
    assert summary["detection"]["bins"]["5-10"]["sensitivity"] == 1.0
    assert summary["detection"]["false_positives"]["per_case"] == 0.0
    assert summary["settings"]["tolerance_mm"] == 2.0 and summary["settings"]["connectivity"] == 26
    assert (out / "summary.png").read_bytes()[:8] == PNG_MAGIC
    assert not list(out.glob(".*tmp*")), "temporary files left behind"


def test_single_files_and_a_prediction_on_another_grid(tmp_path, capsys):
    gt = write_volume(tmp_path / "gt.nii.gz", label_map(), SPACING, direction=RAS_DIRECTION)
    # the same labels stored LPS: the array flipped in x and y, the same voxels in the world
    flipped = label_map()[::-1, ::-1, :]
    pred = write_volume(tmp_path / "pred.mha", flipped, SPACING, direction=np.eye(3).ravel())
    report = evaluate_files(pred, gt, tmp_path / "out", progress=False)
    (metrics,) = report.cases.values()
    assert list(report.cases) == ["gt"] and metrics.dice == 1.0 and metrics.nsd == 1.0
    assert len(report.notes) == 1 and "resampled" in report.notes[0]
    assert report.summary["notes"] == list(report.notes)


def test_pairing_by_name(folders):
    pred, gt = folders
    pairs = pair_files(pred, gt)
    assert [(n, p.name, g.name) for n, p, g in pairs] == [
        ("case_000", "case_000.nii.gz", "case_000.nii.gz"),
        ("case_001", "case_001_0000.nrrd", "case_001.nii.gz"),
    ]


def test_a_prediction_named_by_tumorsynth_predict_pairs_with_its_ground_truth(tmp_path):
    """``tumorsynth predict`` names its outputs with the sources naming (``case.01_0000.nii.gz``
    -> ``case_01.nii.gz``); evaluate pairs them by the same rules."""
    from tumorsynth.dataset.sources import case_name, case_names

    gt, pred = tmp_path / "labelsTs", tmp_path / "predictions"
    gt.mkdir(), pred.mkdir()
    write_volume(gt / "case.01.nii.gz", label_map(), SPACING)
    (name,) = case_names([tmp_path / "imagesTs" / "case.01_0000.nii.gz"], strip_channel=True)
    write_volume(pred / f"{name}.nii.gz", label_map(), SPACING)  # as predict_files names it
    assert name == "case_01" == case_name(gt / "case.01.nii.gz")
    assert [(n, p.name, g.name) for n, p, g in pair_files(pred, gt)] == [
        ("case_01", "case_01.nii.gz", "case.01.nii.gz")
    ]
    report = evaluate_files(pred, gt, tmp_path / "out", progress=False)
    assert report.cases["case_01"].dice == 1.0


def test_csv_text_cells():
    rows = [{"case": "a,b", "dice": 1 / 3, "hit": True, "fp": 0, "nsd": None, "extra": 1}]
    text = csv_text(rows, ["case", "dice", "hit", "fp", "nsd"])
    assert text == 'case,dice,hit,fp,nsd\n"a,b",0.333333,true,0,\n'


def expect_error(argv: list[str], capsys, *needles: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err


def test_missing_and_extra_files_are_named_and_nothing_is_written(folders, tmp_path, capsys):
    pred, gt = folders
    out = tmp_path / "eval"
    (pred / "case_001_0000.nrrd").rename(pred / "other.nrrd")
    args = ["evaluate", str(pred), str(gt), "--out", str(out), "--quiet"]
    expect_error(args, capsys, "case_001.nii.gz", "no prediction", "other.nrrd", "no ground truth")
    assert not out.exists()
    write_volume(pred / "case_001.nii.gz", label_map(), SPACING)
    (pred / "other.nrrd").unlink()
    (pred / "case_000.nii.gz").write_bytes(b"not an image")  # unreadable, found after pairing
    expect_error(args, capsys, "case_000.nii.gz")
    assert not out.exists()
    expect_error([*args[:2], str(gt / "case_000.nii.gz"), *args[3:]], capsys,
                 "a folder", "two files or two folders")  # fmt: skip
    assert not out.exists()


def test_prediction_of_another_region_or_not_a_label_map(tmp_path, capsys):
    gt = write_volume(tmp_path / "gt.nii.gz", label_map(), SPACING)
    out = tmp_path / "eval"
    small = write_volume(tmp_path / "small.nii.gz", label_map()[:, :, :10], SPACING)
    expect_error(["evaluate", str(small), str(gt), "--out", str(out), "--quiet"], capsys,
                 "(24, 24, 10)", "(24, 24, 12)", "different region")  # fmt: skip
    soft = write_volume(tmp_path / "soft.nii.gz", label_map() * np.float32(0.4), SPACING)
    args = ["evaluate", str(soft), str(gt), "--out", str(out), "--quiet"]
    expect_error(args, capsys, "not a label map")
    assert not out.exists()
    with pytest.raises(InputError, match="no such file"):
        pair_files(tmp_path / "absent.nii.gz", gt)
