"""Checkpoints and ``predict`` that go wrong: NaN weights, a header that disagrees with its
weights, a random file, logits that are not finite, a full disk, an input as the output."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from test_predict import WINDOW, tiny_checkpoint
from toy import run_with_file_size_limit, toy_volume, tumorsynth_command
from tumorsynth.cli import main

from tumorsynth.errors import InputError
from tumorsynth.io.volume import write_volume
from tumorsynth.segment.checkpoint import load_checkpoint, load_model
from tumorsynth.segment.predict import Predictor, predict_files


@pytest.fixture(scope="module")
def ct_folder(tmp_path_factory):
    """A folder with one small CT (ct.nii.gz, int16 HU, 2 mm voxels)."""
    folder = tmp_path_factory.mktemp("cts")
    image, _ = toy_volume((40, 36, 32), seed=3)
    write_volume(folder / "ct.nii.gz", np.rint(image).astype(np.int16), (2.0, 2.0, 2.0))
    return folder


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("model") / "model.pt", (2.0, 2.0, 2.0))


def test_nan_weights_are_refused_at_load(checkpoint, tmp_path):
    state = torch.load(checkpoint, weights_only=True)
    name = next(k for k, v in state["model"].items() if v.is_floating_point())
    state["model"][name].view(-1)[:3] = torch.tensor([float("nan"), float("inf"), 0.5])
    torch.save(state, tmp_path / "nan.pt")
    with pytest.raises(InputError) as info:
        load_model(tmp_path / "nan.pt")
    assert str(info.value) == (
        f"{tmp_path / 'nan.pt'}: 2 NaN or infinite weights (in 1 tensors, the first {name}): the "
        "training diverged; use an earlier checkpoint"
    )
    with pytest.raises(InputError, match="NaN or infinite weights"):
        load_checkpoint(tmp_path / "nan.pt")  # --resume too


def test_logits_that_are_not_finite_are_an_error_not_zeros():
    class Broken(torch.nn.Module):
        def forward(self, x):
            return torch.full((x.shape[0], 3, *x.shape[2:]), float("nan"))

    predictor = Predictor(Broken(), (16, 16, 16), WINDOW, None, torch.device("cpu"), name="m.pt")
    with pytest.raises(InputError, match=r"^m\.pt: \d+ of its \d+ output values are NaN"):
        predictor(np.zeros((20, 20, 20), np.float32), (1.0, 1.0, 1.0))


def test_a_header_that_disagrees_with_its_weights_is_one_line(checkpoint, tmp_path):
    state = torch.load(checkpoint, weights_only=True)
    state["network"] = {**state["network"], "channels": [8, 16, 32]}
    torch.save(state, tmp_path / "other.pt")
    with pytest.raises(InputError) as info:
        load_model(tmp_path / "other.pt")
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'other.pt'}: its weights do not fit the network")
    assert "of another shape, e.g." in message and len(message.splitlines()) == 1
    state["network"] = {**state["network"], "network": "no_such_net"}
    torch.save(state, tmp_path / "unknown.pt")
    with pytest.raises(InputError, match=r"unknown\.pt: .*unknown network 'no_such_net'"):
        load_model(tmp_path / "unknown.pt")


@pytest.mark.parametrize("content", [os.urandom(4096), b"not a checkpoint", b""])
def test_a_random_file_is_one_line_without_torchs_advice(tmp_path, capsys, ct_folder, content):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(content)
    with pytest.raises(SystemExit) as info:
        main(["predict", str(junk), str(ct_folder / "ct.nii.gz"), "--out", str(tmp_path / "o")])
    assert info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: {junk}: cannot read the checkpoint (not a zip archive, as torch.save writes: "
        "another kind of file, or one cut short)"
    )
    cut = tmp_path / "cut.pt"
    tiny_checkpoint(cut)
    cut.write_bytes(cut.read_bytes()[:2000])
    with pytest.raises(InputError, match=r"one cut short\)$"):
        load_checkpoint(cut)


def test_predict_never_replaces_an_input(checkpoint, ct_folder, tmp_path):
    folder = tmp_path / "cts"
    folder.mkdir()
    ct = folder / "ct.nii.gz"
    ct.write_bytes((ct_folder / "ct.nii.gz").read_bytes())
    before = ct.read_bytes()
    for overwrite in (False, True):
        with pytest.raises(InputError, match=r"ct\.nii\.gz: would replace the input CT"):
            predict_files(checkpoint, [ct], folder, overwrite=overwrite, progress=False)
    assert ct.read_bytes() == before


def test_a_full_disk_fails_predict_and_leaves_no_label_map(checkpoint, ct_folder, tmp_path):
    whole = predict_files(checkpoint, [ct_folder], tmp_path / "whole", progress=False)[0]
    size = whole.stat().st_size
    out = tmp_path / "pred"
    args = [*tumorsynth_command(), "predict", checkpoint, ct_folder / "ct.nii.gz", "--out", out]
    done = run_with_file_size_limit(args, size // 2)
    assert done.returncode == 1, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {out / 'ct.nii.gz'}: the write was cut short"), last
    assert "file-size limit" in last
    assert os.listdir(out) == []
