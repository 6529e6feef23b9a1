"""``generate`` from files: determinism across workers, shards and kills; replay; bad inputs;
real CT in, geometry out; previews."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from click.testing import CliRunner
from toy import data_file
from tumorsynth.cli import cli, main

import tumorsynth as ts
from tumorsynth.dataset.generate import case_seed, plan_jobs, to_int16
from tumorsynth.dataset.preview import render_preview
from tumorsynth.dataset.replay import replay_case
from tumorsynth.dataset.sources import Source, dataset_json_sources, pair_sources
from tumorsynth.io.volume import read_volume, source_sha256, write_volume

SPACING = 3.0


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """Two host CTs: the phantom stored RAS (NIfTI) and the same phantom stored LPS (NRRD)."""
    from tumorsynth.phantom import make_phantom

    folder = tmp_path_factory.mktemp("inputs")
    case = make_phantom(seed=0, spacing_mm=SPACING)
    image = to_int16(case.image)
    a = write_volume(folder / "a_ct.nii.gz", image, case.spacing_mm)
    write_volume(folder / "a_liver.nii.gz", case.organ, case.spacing_mm)
    ras = read_volume(a)
    n = np.asarray(image.shape)
    origin = np.asarray(ras.origin_mm) - [(n[0] - 1) * SPACING, (n[1] - 1) * SPACING, 0.0]
    lps = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    flip = (slice(None, None, -1), slice(None, None, -1), slice(None))
    write_volume(folder / "b_ct.nrrd", image[flip], case.spacing_mm, origin, lps)
    write_volume(folder / "b_liver.nrrd", case.organ[flip], case.spacing_mm, origin, lps)
    return folder


def _args(inputs: Path, *extra: str) -> list[str]:
    return [
        "generate", "--images", str(inputs / "*_ct.*"), "--masks", str(inputs / "*_liver.*"),
        "--n-per-case", "2", "--config", "syntumor", "--seed", "3", "--quiet", *extra,
    ]  # fmt: skip


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _run(*args: str) -> None:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, (result.output, result.exception)


@pytest.fixture(scope="module")
def reference(inputs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference") / "Dataset502"
    _run(*_args(inputs, "--out", str(out)))
    return out


CASES = ["a_ct_000", "a_ct_001", "b_ct_000", "b_ct_001"]


def test_layout_manifest_and_dataset_json(reference, inputs):
    tree = _tree(reference)
    assert sorted(k for k in tree if k.startswith(("imagesTr", "labelsTr"))) == sorted(
        [f"imagesTr/{c}_0000.nii.gz" for c in CASES] + [f"labelsTr/{c}.nii.gz" for c in CASES]
    )
    assert not [k for k in tree if ".tmp-" in k]
    lines = [json.loads(x) for x in (reference / "manifest.jsonl").read_text().splitlines()]
    assert [x["case_id"] for x in lines] == CASES
    config = ts.load_config("syntumor").to_dict()
    for line in lines:
        source = line["source"]
        assert source["image_sha256"] == source_sha256(source["image"])
        assert source["mask_sha256"] == source_sha256(source["mask"])
        assert Path(source["image"]).parent == inputs and source["mask"].endswith(
            ("a_liver.nii.gz", "b_liver.nrrd")
        )
        assert line["seed"] == case_seed(3, line["case_id"]) == line["params"]["seed"]
        assert line["config"] == config and line["tumorsynth_version"] == ts.__version__
        assert line["params"]["lesions"] and line["dtype"] == "int16"
    assert len({x["seed"] for x in lines}) == 4
    meta = json.loads((reference / "dataset.json").read_text())
    assert meta["numTraining"] == 4 and meta["file_ending"] == ".nii.gz"
    assert meta["labels"] == {"background": 0, "liver": 1, "tumor": 2}
    assert meta["training"][0] == {
        "image": "./imagesTr/a_ct_000_0000.nii.gz",
        "label": "./labelsTr/a_ct_000.nii.gz",
    }


def _world_values(label_path: Path, mask_path: Path, value: int = 2) -> np.ndarray:
    """The mask's values at the world positions of the label's voxels equal to ``value``."""
    lab, seg = sitk.ReadImage(str(label_path)), sitk.ReadImage(str(mask_path))
    ijk = np.argwhere(sitk.GetArrayViewFromImage(lab) == value)[:, ::-1].astype(float)
    assert len(ijk), f"{label_path}: no tumour"

    def matrix(im):
        return np.asarray(im.GetDirection()).reshape(3, 3) * np.asarray(im.GetSpacing())

    world = np.asarray(lab.GetOrigin()) + ijk @ matrix(lab).T
    index = np.rint((world - seg.GetOrigin()) @ np.linalg.inv(matrix(seg)).T).astype(int)
    return sitk.GetArrayViewFromImage(seg)[index[:, 2], index[:, 1], index[:, 0]]


def test_outputs_keep_the_input_geometry_and_tumours_lie_in_the_liver(reference, inputs):
    for case, stem, ext in [("a_ct_001", "a", ".nii.gz"), ("b_ct_000", "b", ".nrrd")]:
        source = read_volume(inputs / f"{stem}_ct{ext}")
        for path in (
            reference / f"imagesTr/{case}_0000.nii.gz",
            reference / f"labelsTr/{case}.nii.gz",
        ):
            out = read_volume(path)
            assert out.array.shape == source.array.shape
            assert (out.spacing_mm, out.origin_mm, out.direction) == (
                source.spacing_mm, source.origin_mm, source.direction,
            )  # fmt: skip
        values = _world_values(reference / f"labelsTr/{case}.nii.gz", inputs / f"{stem}_liver{ext}")
        assert (values == 1).all()
        image = read_volume(reference / f"imagesTr/{case}_0000.nii.gz").array
        organ = read_volume(inputs / f"{stem}_liver{ext}").array
        np.testing.assert_array_equal(image[organ == 0], source.array[organ == 0])


def test_two_workers_give_the_same_files(reference, inputs, tmp_path):
    _run(*_args(inputs, "--out", str(tmp_path / "Dataset502"), "--workers", "2"))
    assert _tree(tmp_path / "Dataset502") == _tree(reference)


def test_shards_together_equal_one_run(reference, inputs, tmp_path):
    out = tmp_path / "Dataset502"
    _run(*_args(inputs, "--out", str(out), "--shard", "1/3"))
    assert sorted(p.name for p in (out / "labelsTr").iterdir()) == [
        "a_ct_000.nii.gz",
        "b_ct_001.nii.gz",
    ]
    assert json.loads((out / "dataset.json").read_text())["numTraining"] == 2
    _run(*_args(inputs, "--out", str(out), "--shard", "3/3"))
    _run(*_args(inputs, "--out", str(out), "--shard", "2/3"))
    assert _tree(out) == _tree(reference)


def test_killed_run_leaves_no_partial_file_and_resumes_to_the_same_files(
    reference, inputs, tmp_path
):
    out = tmp_path / "Dataset502"
    expected = _tree(reference)
    exe = os.path.join(os.path.dirname(sys.executable), "tumorsynth")
    proc = subprocess.Popen([exe, *_args(inputs, "--out", str(out))], stderr=subprocess.PIPE)
    records = out / ".tumorsynth" / "cases"
    seen: set[str] = set()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            # every file under a final name is complete at every moment
            for path in [*out.glob("imagesTr/*"), *out.glob("labelsTr/*")]:
                if not path.name.startswith("."):
                    key = path.relative_to(out).as_posix()
                    assert path.read_bytes() == expected[key], f"{key} is partial"
                    seen.add(key)
            if records.is_dir() and any(records.glob("*.json")):
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    n_done = len(list(records.glob("*.json")))
    assert 1 <= n_done < 4, f"the kill did not land mid-run ({n_done} cases done)"
    assert not (out / "manifest.jsonl").exists()
    result = CliRunner().invoke(cli, _args(inputs, "--out", str(out)))
    assert result.exit_code == 0, result.output
    assert f"{n_done} already done" in result.output
    assert _tree(out) == expected  # temporaries of the killed process are gone too


def test_rerun_skips_finished_cases_and_extends(reference, inputs, tmp_path):
    out = tmp_path / "Dataset502"
    shutil.copytree(reference, out)
    (out / "labelsTr" / "b_ct_001.nii.gz").unlink()  # an unfinished case: redone
    result = CliRunner().invoke(cli, _args(inputs, "--out", str(out)))
    assert "wrote 1 cases" in result.output and "3 already done" in result.output
    assert _tree(out) == _tree(reference)
    args = _args(inputs, "--out", str(out))
    args[args.index("--n-per-case") + 1] = "3"
    result = CliRunner().invoke(cli, args)
    assert "wrote 2 cases" in result.output and "the dataset now holds 6 cases" in result.output
    for case in CASES:
        assert (out / "labelsTr" / f"{case}.nii.gz").read_bytes() == (
            reference / "labelsTr" / f"{case}.nii.gz"
        ).read_bytes()


def test_replay_of_every_line_is_bit_identical(reference, tmp_path):
    for line in (reference / "manifest.jsonl").read_text().splitlines():
        case_id = json.loads(line)["case_id"]
        result = replay_case(reference / "manifest.jsonl", case_id, tmp_path / case_id)
        assert result.identical and result.params_from_seed
        assert (
            result.image.read_bytes()
            == (reference / f"imagesTr/{case_id}_0000.nii.gz").read_bytes()
        )
        assert result.label.read_bytes() == (reference / f"labelsTr/{case_id}.nii.gz").read_bytes()
    result = CliRunner().invoke(
        cli, ["replay", str(reference), "--case", "b_ct_001", "--out", str(tmp_path / "cli")]
    )
    assert result.exit_code == 0 and "bit-identical" in result.output
    result = CliRunner().invoke(cli, ["replay", str(reference), "--case", "zzz"])
    assert "no case 'zzz'" in str(result.exception)


def test_replay_refuses_a_changed_source(inputs, tmp_path):
    folder = tmp_path / "in"
    shutil.copytree(inputs, folder)
    out = tmp_path / "d"
    _run("generate", "--images", str(folder / "a_ct.nii.gz"), "--masks",
         str(folder / "a_liver.nii.gz"), "--out", str(out), "--quiet", "--config", "syntumor")  # fmt: skip
    volume = read_volume(folder / "a_ct.nii.gz")
    volume.array[0, 0, 0] += 1
    write_volume(folder / "a_ct.nii.gz", volume.array, volume.spacing_mm, volume.origin_mm)
    with pytest.raises(ts.InputError, match=r"a_ct\.nii\.gz: changed since the dataset was made"):
        replay_case(out, "a_ct_000", tmp_path / "r")


def _error_lines(capsys) -> list[str]:
    return [x for x in capsys.readouterr().err.splitlines() if x.startswith("error:")]


def test_a_bad_case_is_reported_once_and_skipped(inputs, tmp_path, capsys):
    folder = tmp_path / "in"
    shutil.copytree(inputs, folder)
    data = (folder / "a_ct.nii.gz").read_bytes()
    (folder / "c_ct.nii.gz").write_bytes(data[: len(data) // 3])
    shutil.copy(folder / "a_liver.nii.gz", folder / "c_liver.nii.gz")
    args = ["generate", "--images", str(folder / "*_ct.nii.gz"), "--masks",
            str(folder / "*_liver.nii.gz"), "--config", "syntumor", "--quiet"]  # fmt: skip
    with pytest.raises(SystemExit) as info:
        main([*args, "--n-per-case", "2", "--out", str(tmp_path / "d")])
    assert info.value.code == 1
    errors = _error_lines(capsys)
    bad = [x for x in errors if str(folder / "c_ct.nii.gz") in x]
    assert len(bad) == 1 and "truncated" in bad[0]
    assert errors[-1] == "error: 2 of 4 cases failed (1 distinct problem, listed above)"
    written = sorted(p.name for p in (tmp_path / "d" / "labelsTr").iterdir())
    assert written == ["a_ct_000.nii.gz", "a_ct_001.nii.gz"]
    manifest = (tmp_path / "d" / "manifest.jsonl").read_text().splitlines()
    assert [json.loads(x)["case_id"] for x in manifest] == ["a_ct_000", "a_ct_001"]

    (folder / "a_ct.nii.gz").rename(folder / "d_ct.nii.gz")  # sorted after c: c fails first
    (folder / "a_liver.nii.gz").rename(folder / "d_liver.nii.gz")
    with pytest.raises(SystemExit):
        main([*args, "--strict", "--out", str(tmp_path / "s")])
    errors = _error_lines(capsys)
    assert len(errors) == 1 and str(folder / "c_ct.nii.gz") in errors[0]
    assert not list((tmp_path / "s" / "labelsTr").iterdir())
    assert not [p for p in (tmp_path / "s").rglob("*") if ".tmp-" in p.name]
    # nothing was finished there: a corrected command with other settings may use the folder
    (folder / "c_ct.nii.gz").unlink()
    (folder / "c_liver.nii.gz").unlink()
    main([*args, "--strict", "--seed", "7", "--out", str(tmp_path / "s")])
    assert sorted(p.name for p in (tmp_path / "s" / "labelsTr").iterdir()) == ["d_ct_000.nii.gz"]


@pytest.mark.parametrize(
    ("images", "masks", "words"),
    [
        (["nope_ct.nii.gz"], ["a_liver.nii.gz"], "nope_ct.nii.gz: no such file or folder"),
        (["x*.nii.gz"], ["a_liver.nii.gz"], "the pattern matches no file"),
        (["a_ct.nii.gz", "b_ct.nrrd"], ["a_liver.nii.gz"], "2 images but 1 masks"),
        (["a_ct.nii.gz"], ["b_liver.nrrd"], "b_liver.nrrd: covers a different physical region"),
    ],
)
def test_input_errors_are_one_line(inputs, tmp_path, capsys, images, masks, words):
    if "different physical region" in words:  # a mask shifted by 10 slices
        mask = read_volume(inputs / "b_liver.nrrd")
        origin = np.add(mask.origin_mm, (0.0, 0.0, 10 * SPACING))
        write_volume(tmp_path / "b_liver.nrrd", mask.array, mask.spacing_mm, origin, mask.direction)
        masks = [str(tmp_path / "b_liver.nrrd")]
    else:
        masks = [str(inputs / m) for m in masks]
    args = ["generate", "--images", *[str(inputs / i) for i in images], "--masks", *masks]
    with pytest.raises(SystemExit) as info:
        main([*args, "--out", str(tmp_path / "d"), "--quiet", "--config", "syntumor"])
    assert info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) <= 2 and err[0].startswith("error: ") and words in err[0]
    labels = tmp_path / "d" / "labelsTr"
    assert not labels.exists() or not list(labels.iterdir())


def test_dataset_json_inputs(inputs, tmp_path):
    root = tmp_path / "Dataset001_Healthy"
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    shutil.copy(inputs / "a_ct.nii.gz", root / "imagesTr" / "p1_0000.nii.gz")
    labels = read_volume(inputs / "a_liver.nii.gz")
    write_volume(root / "labelsTr" / "p1.nii.gz", labels.array * 6, labels.spacing_mm)
    nnunet = {"labels": {"background": 0, "spleen": 1, "liver": 6}, "file_ending": ".nii.gz"}
    (root / "dataset.json").write_text(json.dumps(nnunet))
    sources = dataset_json_sources(root / "dataset.json")
    assert [(s.name, s.organ_label) for s in sources] == [("p1", 6)]
    msd = {"labels": {"0": "background", "1": "Liver"},
           "training": [{"image": "./imagesTr/p1_0000.nii.gz", "label": "./labelsTr/p1.nii.gz"}]}  # fmt: skip
    (root / "msd.json").write_text(json.dumps(msd))
    assert [(s.name, s.organ_label) for s in dataset_json_sources(root / "msd.json")] == [("p1", 1)]
    out = tmp_path / "out"
    _run("generate", "--dataset", str(root / "dataset.json"), "--out", str(out), "--quiet",
         "--config", "syntumor")  # fmt: skip
    assert sorted(p.name for p in (out / "labelsTr").iterdir()) == ["p1_000.nii.gz"]
    (root / "labelsTr" / "p1.nii.gz").unlink()
    with pytest.raises(ts.InputError, match=r"p1.nii.gz: no such file \(listed in"):
        dataset_json_sources(root / "dataset.json")


def test_pairing_and_case_seeds():
    images = [Path("/d/imagesTr/x_0000.nii.gz"), Path("/d/imagesTr/y_0000.nii.gz")]
    masks = [Path("/d/labelsTr/y.nii.gz"), Path("/d/labelsTr/x.nii.gz")]
    sources, how = pair_sources(images, masks)
    assert how == "by name" and [(s.name, Path(s.mask).name) for s in sources] == [
        ("x", "x.nii.gz"),
        ("y", "y.nii.gz"),
    ]
    nested = [Path("/d/p1/ct.nii.gz"), Path("/d/p2/ct.nii.gz")]
    sources, how = pair_sources(nested, [Path("/d/p1/liver.nrrd"), Path("/d/p2/liver.nrrd")])
    assert how == "in order" and [s.name for s in sources] == ["p1_ct", "p2_ct"]
    srcs = [Source("a"), Source("b"), Source("c")]
    few = plan_jobs(srcs, seed=1, n_per_case=1)
    many = plan_jobs(srcs, seed=1, n_per_case=4)
    assert {j.case_id: j.seed for j in few}.items() <= {j.case_id: j.seed for j in many}.items()
    assert len({j.seed for j in many}) == 12
    assert case_seed(1, "a_000") != case_seed(2, "a_000")


def test_folders_leave_out_hidden_files(tmp_path):
    from tumorsynth.dataset.sources import expand_paths

    for name in ("b.nii.gz", "a.nii.gz", "._a.nii.gz", ".hidden.nii.gz"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in expand_paths([tmp_path])] == ["a.nii.gz", "b.nii.gz"]


def test_preview_does_not_depend_on_how_the_volume_is_stored():
    rng = np.random.default_rng(0)
    image = rng.normal(40, 20, (40, 36, 16)).astype(np.float32)
    label = np.zeros(image.shape, np.uint8)
    label[8:32, 6:30, 3:13] = 1
    label[12:18, 10:15, 6:10] = 2
    label[24:27, 20:24, 5:7] = 2
    spacing = (1.0, 1.2, 2.5)
    ras = render_preview(image, label, spacing)  # RAS: tumorsynth's default geometry
    flip = (slice(None, None, -1), slice(None, None, -1), slice(None))
    lps = render_preview(image[flip], label[flip], spacing, (1, 0, 0, 0, 1, 0, 0, 0, 1))
    np.testing.assert_array_equal(ras, lps)
    red = (ras == (255, 48, 48)).all(axis=2)
    top, bottom = red[: ras.shape[0] // 2], red[ras.shape[0] // 2 :]
    assert top.any() and bottom.any()  # one row per tumour
    columns = np.flatnonzero(top.any(axis=0))
    assert 1 + (np.diff(columns) > 4).sum() == 3  # outlined in the axial, coronal, sagittal panels


def test_preview_command_and_generate_previews(reference, inputs, tmp_path):
    out = tmp_path / "d"
    _run(*_args(inputs, "--out", str(out), "--preview", "--shard", "1/4"))
    assert (out / "previews" / "a_ct_000.png").stat().st_size > 1000
    png = tmp_path / "p.png"
    result = CliRunner().invoke(
        cli,
        ["preview", str(reference / "imagesTr/b_ct_000_0000.nii.gz"),
         str(reference / "labelsTr/b_ct_000.nii.gz"), "--out", str(png)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    import imageio.v3 as iio

    rgb = iio.imread(png)
    assert rgb.ndim == 3 and (rgb == (255, 48, 48)).all(axis=2).sum() > 20


def _check_real(out: Path, case: str, ct: Path, seg: Path, organ_label: int, exact: bool) -> None:
    if ct.is_dir():
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(ct)))
        source = reader.Execute()
    else:
        source = sitk.ReadImage(str(ct))
    paths = list((out / "imagesTr").glob(f"{case}_0000.*"))
    assert len(paths) == 1
    for path in paths:
        image = sitk.ReadImage(str(path))
        assert image.GetSize() == source.GetSize()
        if exact:
            assert image.GetOrigin() == source.GetOrigin()
            assert image.GetSpacing() == source.GetSpacing()
            assert image.GetDirection() == source.GetDirection()
        np.testing.assert_allclose(image.GetOrigin(), source.GetOrigin(), atol=1e-5)
        np.testing.assert_allclose(image.GetSpacing(), source.GetSpacing(), rtol=1e-6)
    label = next((out / "labelsTr").glob(f"{case}.*"))
    values = _world_values(label, seg)
    assert (values == organ_label).all(), np.unique(values)


def test_real_totalsegmentator_dicom_and_nifti(tmp_path):
    folder = data_file("totalsegmentator_example")
    dicom, nifti = folder / "example_ct_dicom", folder / "example_ct.nii.gz"
    seg_dicom = folder / "example_seg_dicom.nii.gz"
    seg_nifti = folder / "example_seg_fast_force_split.nii.gz"
    out = tmp_path / "Dataset503"
    _run("generate", "--images", str(dicom), str(nifti), "--masks", str(seg_dicom),
         str(seg_nifti), "--organ-label", "5", "--out", str(out), "--quiet", "--config",
         "syntumor")  # fmt: skip
    _check_real(out, "example_ct_dicom_000", dicom, seg_dicom, 5, exact=True)
    _check_real(out, "example_ct_000", nifti, seg_nifti, 5, exact=True)
    lines = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    notes = {x["case_id"]: x["notes"] for x in lines}
    assert "resampled onto the CT grid" in notes["example_ct_dicom_000"][0]
    assert notes["example_ct_000"] == []
    assert read_volume(out / "imagesTr/example_ct_000_0000.nii.gz").array.dtype == np.int16


def test_real_dcmqi_dicom_with_nrrd_labels(tmp_path):
    folder = data_file("dcmqi_ct_3slice_liver")
    config = tmp_path / "thin.json"  # 3 slices of 1 mm: tiny tumours, shallow placement
    config.write_text(json.dumps({"preset": "syntumor", "size_class": "tiny", "location":
                                  {"min_depth_mm": 0.5, "depth_fraction": 0, "avoid_vessels": False}}))  # fmt: skip
    out = tmp_path / "Dataset504"
    _run("generate", "--images", str(folder / "ct"), "--masks", str(folder / "liver_seg.nrrd"),
         "--out", str(out), "--quiet", "--config", str(config), "--format", "nrrd")  # fmt: skip
    _check_real(out, "ct_000", folder / "ct", folder / "liver_seg.nrrd", 1, exact=True)
    assert json.loads((out / "dataset.json").read_text())["file_ending"] == ".nrrd"
