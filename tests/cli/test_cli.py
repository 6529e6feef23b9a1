"""``tumorsynth generate``: files, layout, manifest replay and errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from tumorsynth.cli import cli, main

import tumorsynth as ts
from tumorsynth.dataset.generate import to_int16
from tumorsynth.io.volume import read_volume
from tumorsynth.phantom import make_phantom

ARGS = ["--n-cases", "2", "--spacing", "3", "--config", "syntumor", "--seed", "5", "--quiet"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "Dataset501_Synth"
    result = CliRunner().invoke(cli, ["generate", "--out", str(out), *ARGS])
    assert result.exit_code == 0, result.output
    assert "wrote 2 cases" in result.output
    return out


def test_layout_and_dataset_json(dataset):
    assert sorted(p.name for p in (dataset / "imagesTr").iterdir()) == [
        "liver_0000_0000.nii.gz",
        "liver_0001_0000.nii.gz",
    ]
    assert sorted(p.name for p in (dataset / "labelsTr").iterdir()) == [
        "liver_0000.nii.gz",
        "liver_0001.nii.gz",
    ]
    meta = json.loads((dataset / "dataset.json").read_text())
    assert meta["channel_names"] == {"0": "CT"}
    assert meta["labels"] == {"background": 0, "liver": 1, "tumor": 2}
    assert meta["numTraining"] == 2 and meta["file_ending"] == ".nii.gz"
    assert not list(dataset.rglob(".*tmp*")), "temporary files left behind"


def test_manifest_replays_every_case(dataset):
    lines = [json.loads(x) for x in (dataset / "manifest.jsonl").read_text().splitlines()]
    assert [x["case_id"] for x in lines] == ["liver_0000", "liver_0001"]
    host = make_phantom(seed=0, spacing_mm=3.0)
    for line in lines:
        image = read_volume(dataset / line["image"])
        label = read_volume(dataset / line["label"])
        assert image.spacing_mm == pytest.approx((3.0, 3.0, 3.0))
        assert image.array.dtype == np.int16 and label.array.dtype == np.uint8
        assert (label.array == 2).any()
        params = ts.TumorParams.from_dict(line["params"])
        assert params.seed == line["seed"]
        replay = ts.render(host, params=params)
        np.testing.assert_array_equal(to_int16(replay.image), image.array)
        np.testing.assert_array_equal(replay.label, label.array)


def test_replay_command_on_the_phantom(dataset, tmp_path):
    result = CliRunner().invoke(
        cli,
        ["replay", str(dataset / "manifest.jsonl"), "--case", "liver_0001", "--out", str(tmp_path)],
    )
    assert result.exit_code == 0, result.output
    assert "bit-identical to the dataset's files" in result.output
    assert (tmp_path / "liver_0001.nii.gz").read_bytes() == (
        dataset / "labelsTr" / "liver_0001.nii.gz"
    ).read_bytes()


def test_same_command_resumes_other_settings_need_overwrite(dataset):
    before = {p: p.stat().st_mtime_ns for p in dataset.rglob("*.nii.gz")}
    result = CliRunner().invoke(cli, ["generate", "--out", str(dataset), *ARGS])
    assert result.exit_code == 0, result.output
    assert "wrote 0 cases" in result.output and "2 already done" in result.output
    assert {p: p.stat().st_mtime_ns for p in dataset.rglob("*.nii.gz")} == before
    other = [*ARGS[:-3], "--seed", "6", "--quiet"]
    result = CliRunner().invoke(cli, ["generate", "--out", str(dataset), *other])
    assert result.exit_code != 0
    assert "already holds a dataset made with other settings (seed)" in str(result.exception)


def test_a_folder_with_a_foreign_dataset_is_refused_even_with_overwrite(tmp_path):
    (tmp_path / "dataset.json").write_text("{}")
    for extra in ([], ["--overwrite"]):
        result = CliRunner().invoke(cli, ["generate", "--out", str(tmp_path), *ARGS, *extra])
        assert result.exit_code != 0 and "did not make" in str(result.exception)
        assert "--overwrite" not in str(result.exception)
    assert (tmp_path / "dataset.json").read_text() == "{}"


def test_errors_are_one_line_and_exit_nonzero(tmp_path, capsys):
    blocked = tmp_path / "file"
    blocked.write_text("")
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "--out", str(blocked / "sub"), *ARGS])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "cannot write the output folder" in err
    assert len(err.splitlines()) == 1
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "--out", str(tmp_path / "x"), "--config", "nope", "--quiet"])
    assert exit_info.value.code == 1
    assert "neither a preset" in capsys.readouterr().err


def test_console_script_is_installed():
    exe = os.path.join(os.path.dirname(sys.executable), "tumorsynth")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True)
    assert ts.__version__ in out.stdout


def test_phantom_command_writes_image_and_mask(tmp_path):
    result = CliRunner().invoke(
        cli, ["phantom", "--out", str(tmp_path), "--seed", "1", "--spacing", "4", "--preview"]
    )
    assert result.exit_code == 0, result.output
    ct = read_volume(tmp_path / "phantom1_ct.nii.gz")
    liver = read_volume(tmp_path / "phantom1_liver.nii.gz")
    labels = read_volume(tmp_path / "phantom1_labels.nii.gz")
    expected = make_phantom(seed=1, spacing_mm=4.0)
    np.testing.assert_array_equal(ct.array, to_int16(expected.image))
    np.testing.assert_array_equal(liver.array, expected.organ)
    assert labels.array.max() > 10 and ct.spacing_mm == (4.0, 4.0, 4.0)
    assert liver.origin_mm == ct.origin_mm and (tmp_path / "phantom1.png").stat().st_size > 1000


def test_images_and_masks_take_several_values(tmp_path, monkeypatch):
    """``--images a b`` (what a shell glob expands to) reaches the command as a list."""
    seen = {}

    def fake(out_dir, n_cases, **kwargs):
        seen.update(kwargs)
        raise ts.InputError("stop here")

    monkeypatch.setattr(sys.modules["tumorsynth.cli.generate"], "generate_dataset", fake)
    for name in ("b_ct.nii.gz", "a_ct.nii.gz", "a_liver.nii.gz", "b_liver.nii.gz"):
        (tmp_path / name).write_bytes(b"")
    args = ["generate", "--images", str(tmp_path / "b_ct.nii.gz"), str(tmp_path / "a_ct.nii.gz")]
    args += ["--masks", str(tmp_path / "*_liver.nii.gz"), "--out", str(tmp_path / "o"), "--quiet"]
    result = CliRunner().invoke(cli, args)
    assert "stop here" in str(result.exception), result.output
    pairs = [(s.name, os.path.basename(s.mask)) for s in seen["sources"]]
    assert pairs == [("b_ct", "a_liver.nii.gz"), ("a_ct", "b_liver.nii.gz")]  # in order, as given
    result = CliRunner().invoke(cli, ["generate", "--images", "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and "--images" in result.output


def test_mixed_inputs_are_refused(tmp_path):
    result = CliRunner().invoke(
        cli, ["generate", "--out", str(tmp_path), "--n-per-case", "2", "--quiet"]
    )
    assert "--n-per-case is for input files" in str(result.exception)
    result = CliRunner().invoke(cli, ["generate", "--out", str(tmp_path), "--masks", "x"])
    assert "--masks needs --images" in str(result.exception)


def test_unknown_device_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["generate", "--out", str(tmp_path / "x"), *ARGS, "--device", "tpu"])
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: device 'tpu' is not available") and len(err.splitlines()) == 1
    assert not (tmp_path / "x").exists()
