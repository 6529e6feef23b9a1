"""``tumorsynth predict``: labels in the input's exact geometry, resampling, post-processing, errors."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from toy import data_file
from tumorsynth.cli import main

from tumorsynth.errors import InputError
from tumorsynth.io.volume import read_volume
from tumorsynth.segment.checkpoint import save_checkpoint
from tumorsynth.segment.networks import build_network, network_spec
from tumorsynth.segment.predict import Predictor, keep_largest_organ, predict_files
from tumorsynth.train import load_train_config

WINDOW = (-21.0, 189.0)
THRESHOLD_HU = 84.0  # the middle of the window


class Threshold(torch.nn.Module):
    """A stand-in network whose answer is known: organ (1) where the windowed CT is above 0.5."""

    def forward(self, x):
        organ = 40.0 * (x - 0.5)
        return torch.cat([torch.zeros_like(x), organ, torch.full_like(x, -100.0)], dim=1)


def threshold_predictor(spacing_mm=None):
    return Predictor(Threshold(), (32, 32, 16), WINDOW, spacing_mm, torch.device("cpu"))


def test_native_spacing_gives_the_networks_answer_voxel_for_voxel():
    vol = read_volume(data_file("totalsegmentator_example/example_ct_sm.nii.gz"))
    labels = threshold_predictor()(vol.array, vol.spacing_mm)
    expected = (vol.array > THRESHOLD_HU).astype(np.uint8)
    assert labels.shape == vol.array.shape and labels.dtype == np.uint8
    assert np.array_equal(labels, expected)


def test_model_spacing_resamples_there_and_back():
    vol = read_volume(data_file("totalsegmentator_example/example_ct_dicom.nii.gz"))
    labels = threshold_predictor((2.0, 2.0, 2.0))(vol.array, vol.spacing_mm)
    expected, organ = vol.array > THRESHOLD_HU, labels == 1
    assert labels.shape == vol.array.shape

    def dice(a, b):
        return 2 * (a & b).sum() / (a.sum() + b.sum())

    # 1 mm -> 2 mm -> 1 mm loses thin structures, but nothing is displaced: the labels match the
    # CT better than the same labels moved by one voxel along any axis
    assert dice(expected, organ) > 0.85
    shifted = [dice(expected, np.roll(organ, s, a)) for a in range(3) for s in (-1, 1)]
    assert dice(expected, organ) > max(shifted) + 0.02


def test_files_overlay_the_dicom_input_in_world_coordinates(tmp_path, monkeypatch):
    folder = data_file("totalsegmentator_example/example_ct_dicom")
    monkeypatch.setattr(Predictor, "from_checkpoint", lambda *a, **k: threshold_predictor())
    (out,) = predict_files("unused.pt", [folder], tmp_path, progress=False)
    assert out.name == "example_ct_dicom.nii.gz"
    pred = sitk.ReadImage(str(out))
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    ct = reader.Execute()
    assert pred.GetSize() == ct.GetSize()
    np.testing.assert_allclose(pred.GetSpacing(), ct.GetSpacing(), rtol=1e-6)
    np.testing.assert_allclose(pred.GetOrigin(), ct.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(pred.GetDirection(), ct.GetDirection(), atol=1e-6)
    # the labels sit on the CT voxels they were computed from (a y-flip would break this)
    expected = sitk.GetArrayFromImage(ct) > THRESHOLD_HU
    assert np.array_equal(sitk.GetArrayFromImage(pred) == 1, expected)


def tiny_checkpoint(path, spacing_mm=(3.0, 3.0, 3.0)):
    cfg = load_train_config(None, ["patch_size=[32,32,32]", "channels=[4,8,16]"])
    torch.manual_seed(0)
    model = build_network(cfg)
    meta = {"network": network_spec(cfg), "window_hu": list(WINDOW), "spacing_mm": list(spacing_mm)}
    save_checkpoint(path, {**meta, "model": model.state_dict(), "step": 0})
    return path


def test_cli_with_a_real_checkpoint(tmp_path, capsys):
    ct = data_file("totalsegmentator_example/example_ct_sm.nii.gz")
    ckpt = tiny_checkpoint(tmp_path / "model.pt", spacing_mm=(4.0, 4.0, 4.0))
    out = tmp_path / "pred"
    main(["predict", str(ckpt), str(ct), "--out", str(out), "--largest-organ"])
    assert "wrote 1 label map" in capsys.readouterr().out
    pred, src = read_volume(out / "example_ct_sm.nii.gz"), read_volume(ct)
    assert pred.array.shape == src.array.shape and set(np.unique(pred.array)) <= {0, 1, 2}
    np.testing.assert_allclose(pred.origin_mm, src.origin_mm, atol=1e-3)
    with pytest.raises(SystemExit):  # the output exists
        main(["predict", str(ckpt), str(ct), "--out", str(out)])
    assert "--overwrite" in capsys.readouterr().err


def test_bad_checkpoints_are_named(tmp_path):
    ct = data_file("totalsegmentator_example/example_ct_sm.nii.gz")
    with pytest.raises(InputError, match=r"missing\.pt: no such checkpoint"):
        predict_files(tmp_path / "missing.pt", [ct], tmp_path / "out")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match=r"junk\.pt: cannot read the checkpoint"):
        predict_files(junk, [ct], tmp_path / "out")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(InputError, match=r"other\.pt: not a tumorsynth checkpoint"):
        predict_files(tmp_path / "other.pt", [ct], tmp_path / "out")
    torch.save({"format": 1, "model": {}}, tmp_path / "method.pt")  # a Trainer's, not a segmenter
    with pytest.raises(InputError, match=r"method\.pt: not a segmentation checkpoint"):
        predict_files(tmp_path / "method.pt", [ct], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_largest_organ_keeps_the_organ_with_its_tumours():
    labels = np.zeros((20, 20, 20), np.uint8)
    labels[2:12, 2:12, 2:12] = 1
    labels[5:8, 5:8, 5:8] = 2  # a tumour inside the organ
    labels[15:18, 15:18, 15:18] = 2  # a false positive far away
    labels[15, 2, 2] = 1
    kept = keep_largest_organ(labels)
    assert (kept[2:12, 2:12, 2:12] == labels[2:12, 2:12, 2:12]).all()
    assert kept[15:, :, :].sum() == 0
