"""``generate --organ``: pancreas and kidney datasets from TotalSegmentator's real CT and from the
phantom, their labels and names, per-organ codes, replay, and one line for a missing organ."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner
from scipy import ndimage
from toy import data_file
from tumorsynth.cli import cli, main

from tumorsynth.dataset.replay import replay_case
from tumorsynth.io.volume import read_volume

FOLDER = "totalsegmentator_example/"


def _generate(*args: str) -> None:
    result = CliRunner().invoke(cli, ["generate", "--quiet", *args])
    assert result.exit_code == 0, (result.output, result.exception)


def test_kidney_tumours_from_totalsegmentator_labels_by_name(tmp_path):
    ct, seg = (
        data_file(FOLDER + "example_ct.nii.gz"),
        data_file(FOLDER + "example_seg_fast_force_split.nii.gz"),
    )
    out = tmp_path / "Dataset601"
    _generate("--images", str(ct), "--masks", str(seg), "--organ", "kidney", "--n-per-case",
              "3", "--seed", "1", "--out", str(out))  # fmt: skip
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["labels"] == {"background": 0, "kidney": 1, "kidney_tumor": 2}
    assert "Synthetic kidney tumours" in meta["description"]
    kidneys = np.isin(read_volume(seg).array, [2, 3])
    distance = ndimage.distance_transform_edt(~kidneys, sampling=read_volume(ct).spacing_mm)
    records = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert records[0]["config"]["name"] == "kidney"
    assert records[0]["source"]["organ_label"]["values"] == [2, 3]
    for record in records:
        label = read_volume(out / record["label"]).array
        assert np.array_equal(label == 1, kidneys & (label != 2))
        assert (label == 2).any() and distance[label == 2].max() <= 45.0  # the preset's margin
    replayed = replay_case(out, records[0]["case_id"], tmp_path / "again")
    assert replayed.identical


def test_pancreas_tumours_in_the_phantom_with_per_organ_codes(tmp_path):
    out = tmp_path / "Dataset602"
    _generate("--organ", "pancreas", "--n-cases", "2", "--spacing", "3", "--label-scheme",
              "per_organ", "--out", str(out))  # fmt: skip
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["labels"] == {"background": 0, "pancreas": 3, "pancreas_tumor": 4}
    records = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r["case_id"] for r in records] == ["pancreas_0000", "pancreas_0001"]
    assert records[0]["source"]["organ"] == "pancreas" and records[0]["label_codes"] == [3, 4]
    for record in records:
        label = read_volume(out / record["label"]).array
        assert set(np.unique(label)) == {0, 3, 4}
    assert replay_case(out, "pancreas_0001", tmp_path / "again").identical


def test_an_organ_the_label_map_does_not_hold_is_one_line(tmp_path, capsys):
    ct, seg = (
        data_file(FOLDER + "example_ct_dicom.nii.gz"),
        data_file(FOLDER + "example_seg_dicom.nii.gz"),
    )
    try:
        main(["generate", "--images", str(ct), "--masks", str(seg), "--organ", "kidney",
              "--strict", "--quiet", "--out", str(tmp_path / "out")])  # fmt: skip
    except SystemExit as exit_:
        assert exit_.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        f"error: {seg}: the label map has no kidney (TotalSegmentator labels 2, 3) (labels "
        "present: 0, 1, 5, 6, 7, 8, 20, 32, 33, 52, 63, 64, ...); is it another label map? "
        "(--label-map)"
    )
