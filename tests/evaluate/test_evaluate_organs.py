"""``tumorsynth evaluate --organ``: one organ of per-organ label maps."""

from __future__ import annotations

import csv
import json

import numpy as np
from tumorsynth.cli import main

from tumorsynth.io.volume import write_volume


def _run(args, capsys):
    try:
        main(args)
        code = 0
    except SystemExit as err:
        code = err.code
    return code, capsys.readouterr()


def test_organ_picks_its_per_organ_codes_in_both_maps(tmp_path, capsys):
    gt = np.zeros((40, 40, 20), np.uint8)
    gt[2:18, 2:18, 2:18], gt[6:12, 6:12, 6:12] = 3, 4  # pancreas and its tumour
    gt[22:38, 22:38, 2:18], gt[26:32, 26:32, 6:12] = 5, 6  # kidney and its tumour
    pred = gt.copy()
    pred[26:32, 26:32, 6:12] = 5  # the kidney's tumour missed: the pancreas's score is perfect
    write_volume(tmp_path / "gt.nii.gz", gt, (1.0, 1.0, 1.0))
    write_volume(tmp_path / "pred.nii.gz", pred, (1.0, 1.0, 1.0))
    args = ["evaluate", str(tmp_path / "pred.nii.gz"), str(tmp_path / "gt.nii.gz"), "--quiet"]
    dice = {}
    for organ in ("pancreas", "kidney"):
        code, _ = _run([*args, "--organ", organ, "--out", str(tmp_path / organ)], capsys)
        assert code == 0
        summary = json.loads((tmp_path / organ / "summary.json").read_text())
        assert summary["settings"]["tumour_label"] == {"pancreas": 4, "kidney": 6}[organ]
        with open(tmp_path / organ / "cases.csv") as f:
            (row,) = csv.DictReader(f)
        dice[organ] = float(row["dice"]), float(row["organ_dice"])
    assert dice["pancreas"] == (1.0, 1.0)
    assert dice["kidney"][0] == 0.0 and dice["kidney"][1] == 1.0  # organ = organ or tumour
    code, out = _run([*args, "--organ", "kidney", "--tumour-label", "6", "--out", "x"], capsys)
    assert code == 1 and "give --organ or --organ-label/--tumour-label" in out.err
