"""``generate`` never loses data: failed writes are not recorded as done, no flag deletes or
overwrites an input or writes outside ``--out``, runs with other settings do not share a folder,
values the output type cannot hold are refused, a dataset.json without a liver label is refused."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from toy import run_with_file_size_limit, tumorsynth_command
from tumorsynth.cli import cli, main

from tumorsynth.dataset.generate import generate_dataset, to_int16
from tumorsynth.errors import InputError
from tumorsynth.io.volume import read_volume, write_volume

PHANTOM = ["--n-cases", "2", "--spacing", "3", "--config", "syntumor", "--quiet"]


@pytest.fixture(scope="module")
def host(tmp_path_factory) -> Path:
    """A folder with the phantom at 3 mm as files: ct.nii.gz (int16 HU) and liver.nii.gz."""
    from tumorsynth.phantom import make_phantom

    folder = tmp_path_factory.mktemp("host")
    case = make_phantom(seed=0, spacing_mm=3.0)
    write_volume(folder / "ct.nii.gz", to_int16(case.image), case.spacing_mm)
    write_volume(folder / "liver.nii.gz", case.organ, case.spacing_mm)
    return folder


def _invoke(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _done(out: Path) -> list[str]:
    return sorted(p.stem for p in (out / ".tumorsynth" / "cases").glob("*.json"))


def _final_files(out: Path) -> list[str]:
    return sorted(
        p.relative_to(out).as_posix()
        for sub in ("imagesTr", "labelsTr")
        for p in (out / sub).glob("*")
        if not p.name.startswith(".")
    )


# ---- a failed write is never a success ----------------------------------------------------------


def test_a_full_disk_fails_the_run_and_records_nothing(tmp_path):
    """Image writes fail past 50 kB (as on a full disk); the small text files still fit."""
    out = tmp_path / "d"
    args = [*tumorsynth_command(), "generate", "--out", out, *PHANTOM]
    done = run_with_file_size_limit(args, 50_000)
    assert done.returncode == 1, done.stderr
    errors = [x for x in done.stderr.splitlines() if x.startswith("error:")]
    assert f"{out / 'imagesTr' / 'liver_0000_0000.nii.gz'}: the write was cut short" in errors[0]
    assert "file-size limit" in errors[0]
    assert errors[-1] == "error: 2 of 2 cases failed (2 distinct problems, listed above)"
    assert _done(out) == [] and _final_files(out) == []
    assert (out / "manifest.jsonl").read_text() == ""
    assert json.loads((out / "dataset.json").read_text())["numTraining"] == 0


def test_a_case_whose_files_do_not_match_its_record_is_made_again(tmp_path):
    out = tmp_path / "d"
    assert _invoke("generate", "--out", out, *PHANTOM).exit_code == 0
    label = out / "labelsTr" / "liver_0001.nii.gz"
    whole = label.read_bytes()
    label.write_bytes(whole[: len(whole) // 2])  # what a write cut short used to leave
    result = _invoke("generate", "--out", out, *PHANTOM)
    assert result.exit_code == 0, result.output
    assert "wrote 1 cases" in result.output and "1 already done" in result.output
    assert label.read_bytes() == whole
    record = json.loads((out / ".tumorsynth" / "cases" / "liver_0001.json").read_text())
    assert record["bytes"] == {
        "image": (out / record["image"]).stat().st_size,
        "label": len(whole),
    }


# ---- no flag deletes or overwrites an input, or writes outside --out ----------------------------


def test_overwrite_refuses_inputs_inside_the_output_folder(host, tmp_path):
    root = tmp_path / "Dataset010"
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    shutil.copy(host / "ct.nii.gz", root / "imagesTr" / "p1_0000.nii.gz")
    shutil.copy(host / "liver.nii.gz", root / "labelsTr" / "p1.nii.gz")
    labels = {"background": 0, "liver": 1}
    (root / "dataset.json").write_text(json.dumps({"labels": labels, "file_ending": ".nii.gz"}))
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    args = ["--dataset", root / "dataset.json", "--config", "syntumor", "--quiet", "--out", root]
    for extra in ([], ["--overwrite"]):
        result = _invoke("generate", *args, *extra)
        assert result.exit_code != 0
        assert "an input lies inside the output folder" in str(result.exception)
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


def test_overwrite_deletes_only_what_generate_wrote(tmp_path):
    out = tmp_path / "d"
    assert _invoke("generate", "--out", out, *PHANTOM, "--n-cases", "3").exit_code == 0
    theirs = [out / "imagesTr" / "mine_0000.nii.gz", out / "notes.txt", out / "labelsTr" / "x.txt"]
    for path in theirs:
        path.write_text("not made by generate")
    result = _invoke("generate", "--out", out, *PHANTOM, "--seed", "9", "--overwrite")
    assert result.exit_code == 0, result.output
    assert all(p.read_text() == "not made by generate" for p in theirs)
    own = {"imagesTr/liver_0000_0000.nii.gz", "imagesTr/liver_0001_0000.nii.gz"}
    assert set(_final_files(out)) == {*own, "imagesTr/mine_0000.nii.gz", "labelsTr/x.txt"} | {
        "labelsTr/liver_0000.nii.gz", "labelsTr/liver_0001.nii.gz"
    }  # fmt: skip
    assert _done(out) == ["liver_0000", "liver_0001"]  # the third case of the first run is gone


def test_a_dataset_generate_did_not_make_is_never_deleted(tmp_path):
    (tmp_path / "dataset.json").write_text("{}")
    for extra in ([], ["--overwrite"]):
        result = _invoke("generate", "--out", tmp_path, *PHANTOM, *extra)
        message = str(result.exception)
        assert result.exit_code != 0 and "did not make" in message
        assert "--overwrite" not in message
    assert (tmp_path / "dataset.json").read_text() == "{}"


@pytest.mark.parametrize("prefix", ["../../escaped", "a/b", "..", "x\\y", ""])
def test_prefix_must_be_a_plain_name(tmp_path, prefix):
    out = tmp_path / "a" / "b" / "d"
    result = _invoke("generate", "--out", out, *PHANTOM, "--prefix", prefix)
    assert result.exit_code != 0 and "--prefix" in str(result.exception)
    assert "a name, not a path" in str(result.exception)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


# ---- one folder, one set of settings at a time ---------------------------------------------------

BLOCK_IN_RUN = """
import sys
import tumorsynth.dataset.generate as generate
from tumorsynth.cli import main

make = generate._run

def blocked(*args, **kwargs):
    print("running", flush=True)
    sys.stdin.read()  # until the test closes our stdin
    return make(*args, **kwargs)

generate._run = blocked
main(sys.argv[1:])
"""


def test_a_second_run_with_other_settings_is_refused_while_the_first_runs(tmp_path):
    out = tmp_path / "d"
    first = subprocess.Popen(
        [sys.executable, "-c", BLOCK_IN_RUN, "generate", "--out", str(out), *PHANTOM],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert first.stdout.readline() == "running\n", first.stderr.read()
        other = subprocess.run(
            [*tumorsynth_command(), "generate", "--out", str(out), *PHANTOM, "--seed", "4"],
            capture_output=True, text=True,
        )  # fmt: skip
        assert other.returncode == 1, other.stderr
        assert other.stderr.strip() == (
            f"error: {out}: another generate run with other settings (seed) is writing into "
            "this folder; wait for it to finish, or choose another folder"
        )
        wipe = subprocess.run(
            [*tumorsynth_command(), "generate", "--out", str(out), *PHANTOM, "--overwrite"],
            capture_output=True, text=True,
        )  # fmt: skip
        assert wipe.returncode == 1 and "--overwrite would delete its files" in wipe.stderr
        same = subprocess.run(  # a shard of the same run may run at the same time
            [*tumorsynth_command(), "generate", "--out", str(out), *PHANTOM, "--shard", "2/2"],
            capture_output=True, text=True,
        )  # fmt: skip
        assert same.returncode == 0, same.stderr
    finally:
        stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert "now holds 2 cases" in stdout
    assert json.loads((out / ".tumorsynth" / "run.json").read_text())["seed"] == 0
    assert _done(out) == ["liver_0000", "liver_0001"]


# ---- values the output type cannot hold ----------------------------------------------------------


@pytest.fixture(scope="module")
def odd_hosts(host, tmp_path_factory) -> Path:
    """float32 CTs: nan.nii.gz with 3 NaN and 2 infinite voxels outside the liver, big.nii.gz
    with one voxel of 40000 HU outside it."""
    folder = tmp_path_factory.mktemp("odd")
    ct = read_volume(host / "ct.nii.gz")
    image = ct.array.astype(np.float32)
    image[0, 0, :3] = np.nan
    image[0, 1, :2] = (np.inf, -np.inf)
    write_volume(folder / "nan.nii.gz", image, ct.spacing_mm)
    image = ct.array.astype(np.float32)
    image[1, 0, 0] = 40000.0
    write_volume(folder / "big.nii.gz", image, ct.spacing_mm)
    shutil.copy(host / "liver.nii.gz", folder / "liver.nii.gz")
    return folder


def _from_file(odd_hosts: Path, name: str, out: Path, dtype: str):
    return _invoke(
        "generate", "--images", odd_hosts / name, "--masks", odd_hosts / "liver.nii.gz",
        "--config", "syntumor", "--quiet", "--dtype", dtype, "--out", out,
    )  # fmt: skip


def _lines(result, start: str) -> list[str]:
    return [x for x in result.stderr.splitlines() if x.startswith(start)]


def test_nan_outside_the_organ_stays_float32_with_a_note_or_is_refused_as_int16(
    odd_hosts, tmp_path
):
    result = _from_file(odd_hosts, "nan.nii.gz", tmp_path / "auto", "auto")
    assert result.exit_code == 0, result.output
    image = read_volume(tmp_path / "auto" / "imagesTr" / "nan_000_0000.nii.gz").array
    assert image.dtype == np.float32
    assert np.isnan(image[0, 0, :3]).all() and (image[0, 1, :2] == (np.inf, -np.inf)).all()
    assert _lines(result, "note:") == [
        f"note: {odd_hosts / 'nan.nii.gz'}: 5 NaN or infinite voxels outside the organ, kept as "
        "they are (int16 cannot hold them: --dtype auto writes float32)"
    ]
    result = _from_file(odd_hosts, "nan.nii.gz", tmp_path / "int16", "int16")
    assert result.exit_code != 0
    assert _lines(result, "error:") == [
        f"error: {odd_hosts / 'nan.nii.gz'}: 5 NaN or infinite voxels cannot be stored as int16; "
        "write float32 (--dtype float32 or auto)"
    ]
    assert _done(tmp_path / "int16") == [] and _final_files(tmp_path / "int16") == []


def test_int16_refuses_values_out_of_its_range_instead_of_clipping(odd_hosts, tmp_path):
    result = _from_file(odd_hosts, "big.nii.gz", tmp_path / "int16", "int16")
    assert result.exit_code != 0
    failures = _lines(result, "error:")
    assert len(failures) == 1 and "1 voxels outside int16's range" in failures[0]
    assert "spans -1024 to 40000" in failures[0] and str(odd_hosts / "big.nii.gz") in failures[0]
    assert _final_files(tmp_path / "int16") == []
    result = _from_file(odd_hosts, "big.nii.gz", tmp_path / "auto", "auto")
    assert result.exit_code == 0, result.output
    image = read_volume(tmp_path / "auto" / "imagesTr" / "big_000_0000.nii.gz").array
    assert image.dtype == np.float32 and image[1, 0, 0] == 40000.0


def test_to_int16_refuses_rather_than_clipping():
    assert to_int16(np.array([-32768.4, 32767.4, 0.6])).tolist() == [-32768, 32767, 1]
    for bad, words in [(np.array([32767.6]), "outside int16's range"),
                       (np.array([np.nan, 1.0]), "1 NaN or infinite")]:  # fmt: skip
        with pytest.raises(ValueError, match=words):
            to_int16(bad, "ct.nii.gz")


# ---- the organ label -----------------------------------------------------------------------------


def test_a_dataset_json_without_a_liver_label_is_refused(host, tmp_path):
    (tmp_path / "imagesTr").mkdir()
    (tmp_path / "labelsTr").mkdir()
    shutil.copy(host / "ct.nii.gz", tmp_path / "imagesTr" / "p1_0000.nii.gz")
    shutil.copy(host / "liver.nii.gz", tmp_path / "labelsTr" / "p1.nii.gz")
    meta = {"labels": {"background": 0, "spleen": 1}, "file_ending": ".nii.gz"}
    (tmp_path / "dataset.json").write_text(json.dumps(meta))
    result = _invoke("generate", "--dataset", tmp_path / "dataset.json", "--out", tmp_path / "o")
    assert result.exit_code != 0
    assert str(result.exception) == (
        f"{tmp_path / 'dataset.json'}: its labels (background = 0, spleen = 1) have no 'liver'; "
        "pass the organ's value with --organ-label"
    )
    assert not (tmp_path / "o").exists()
    result = _invoke(
        "generate", "--dataset", tmp_path / "dataset.json", "--organ-label", "1",
        "--config", "syntumor", "--quiet", "--out", tmp_path / "o",
    )  # fmt: skip
    assert result.exit_code == 0, result.output


# ---- one-line errors -----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", ["-1", "1.5", "abc", str(2**63)])
@pytest.mark.parametrize("command", ["generate", "phantom"])
def test_bad_seeds_get_one_line(tmp_path, capsys, seed, command):
    with pytest.raises(SystemExit) as info:
        main([command, "--out", str(tmp_path / "o"), "--seed", seed])
    assert info.value.code == 1
    shown = seed if seed.lstrip("-").isdigit() else repr(seed)
    assert capsys.readouterr().err.strip() == (
        f"error: --seed must be a whole number from 0 to 2**63 - 1, got {shown}"
    )
    assert not (tmp_path / "o").exists()
    with pytest.raises(InputError, match="whole number"):
        generate_dataset(tmp_path / "o", 1, seed=-1 if seed == "-1" else 1.5, progress=False)


def _unshare_works() -> bool:
    try:
        return subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode == 0
    except OSError:
        return False


def test_an_existing_dataset_on_a_read_only_file_system_is_one_line(tmp_path):
    if not _unshare_works():
        pytest.skip("needs unshare -rm (user and mount namespaces) to mount a folder read-only")
    out = tmp_path / "d"
    assert _invoke("generate", "--out", out, *PHANTOM).exit_code == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    command = " ".join([*tumorsynth_command(), "generate", "--out", str(out), *PHANTOM])
    mount = f"mount --bind {out} {out} && mount -o remount,bind,ro {out} && exec {command}"
    done = subprocess.run(["unshare", "-rm", "sh", "-c", mount], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"error: {out}: cannot write the output folder (read-only file system)"
    )
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
