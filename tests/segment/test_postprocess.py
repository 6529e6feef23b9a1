"""Precision post-processing: tumour specks and tumours off the organ go, by measured defaults."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from tumorsynth.cli import main

from tumorsynth.errors import InputError
from tumorsynth.io.volume import read_volume, write_volume
from tumorsynth.segment.checkpoint import save_checkpoint
from tumorsynth.segment.networks import build_network, network_spec
from tumorsynth.segment.postprocess import (
    DEFAULT_POSTPROCESS,
    PostProcess,
    organ_contact,
    postprocess_from_options,
    postprocess_labels,
)
from tumorsynth.segment.predict import Predictor
from tumorsynth.train import load_train_config


def scene() -> np.ndarray:
    """An organ block with a tumour inside (27 voxels), one at its surface (18 voxels, half of it
    outside), a one-voxel speck inside, a tumour on 'bone' away from it (27 voxels) and a one-voxel
    speck away from it."""
    labels = np.zeros((30, 20, 20), np.uint8)
    labels[2:16, 2:18, 2:18] = 1  # the organ
    labels[5:8, 5:8, 5:8] = 2  # inside
    labels[14:17, 10:13, 10:12] = 2  # at the surface x = 15 | 16
    labels[10, 14, 14] = 2  # a speck inside
    labels[22:25, 5:8, 5:8] = 2  # on bone
    labels[27, 15, 15] = 2  # a speck outside
    return labels


def test_contact_is_the_organ_share_of_each_tumours_border():
    components, contact, n_voxels = organ_contact(scene())
    assert components.max() == 5
    by_size = sorted(zip(n_voxels.tolist(), contact.tolist(), strict=True))
    assert [n for n, _ in by_size] == [1, 1, 18, 27, 27]
    inside = [c for n, c in by_size if n == 27]
    assert sorted(inside) == [0.0, 1.0]  # wrapped in organ; on bone
    assert sorted(c for n, c in by_size if n == 1) == [0.0, 1.0]
    (surface,) = [c for n, c in by_size if n == 18]
    assert 0.3 < surface < 0.7


def test_each_rule_removes_what_it_says_and_nothing_else():
    labels, spacing = scene(), (1.0, 1.0, 1.0)
    raw = PostProcess()(labels, spacing)
    assert np.array_equal(raw, labels) and raw is not labels
    organ_only = PostProcess(min_organ_contact=0.5)(labels, spacing)
    assert organ_only[23, 6, 6] == 0 and organ_only[27, 15, 15] == 0  # off the organ: gone
    assert organ_only[6, 6, 6] == 2 and organ_only[10, 14, 14] == 2 and organ_only[15, 11, 10] == 2
    sized = PostProcess(min_tumour_mm3=5.0)(labels, spacing)
    assert sized[10, 14, 14] == 1  # a speck inside the organ is organ
    assert sized[27, 15, 15] == 0  # a speck outside it is background
    assert sized[23, 6, 6] == 2 and sized[6, 6, 6] == 2
    both = PostProcess(min_organ_contact=0.5, min_tumour_mm3=5.0)(labels, spacing)
    assert set(zip(*np.nonzero(both == 2), strict=True)) == set(
        zip(*np.nonzero(organ_only == 2), strict=True)
    ) - {(10, 14, 14)}
    assert np.array_equal(both == 1, (labels == 1) | ((labels == 2) & (both == 1)))


def test_per_organ_codes_judge_each_organs_tumours_against_its_organ():
    """A per_organ map (liver 1/2, pancreas 3/4): the same rules on each pair, and the largest
    component is kept per organ, not of all organs together."""
    liver = scene()
    labels = np.zeros((30, 40, 20), np.uint8)
    labels[:, :20] = liver
    labels[2:10, 24:36, 2:10] = 3  # a small pancreas, apart from the liver
    labels[4:7, 28:31, 4:7] = 4  # a tumour in it
    labels[25, 30, 15] = 4  # a pancreas-tumour speck away from it
    labels[22:25, 30:33, 12:15] = 4  # a pancreas tumour on 'bowel', touching no organ
    codes = ((1, 2), (3, 4))
    rules = PostProcess(largest_organ=True, min_organ_contact=0.25, min_tumour_mm3=5.0)
    out = rules(labels, (1.0, 1.0, 1.0), codes)
    assert np.array_equal(out[:, :20], rules(liver, (1.0, 1.0, 1.0)))  # the liver as alone
    assert out[5, 29, 5] == 4 and np.count_nonzero(out == 3) == np.count_nonzero(labels == 3)
    assert out[25, 30, 15] == 0 and not (out[22:25, 30:33, 12:15]).any()  # off the pancreas
    # judged with the shared pairs only, the pancreas and its tumours are left alone
    shared = rules(labels, (1.0, 1.0, 1.0))
    assert np.count_nonzero(shared == 4) == np.count_nonzero(labels == 4)


def test_the_minimum_size_is_a_volume_in_mm3():
    labels = scene()
    # the 27-voxel tumours are 27 mm³ at 1 mm and 216 mm³ at 2 mm
    at_1mm = postprocess_labels(labels, (1.0, 1.0, 1.0), PostProcess(min_tumour_mm3=100.0))
    at_2mm = postprocess_labels(labels, (2.0, 2.0, 2.0), PostProcess(min_tumour_mm3=100.0))
    assert at_1mm[6, 6, 6] == 1 and at_2mm[6, 6, 6] == 2


def test_bad_settings_are_one_line():
    with pytest.raises(InputError, match="min_organ_contact"):
        PostProcess(min_organ_contact=1.5)
    with pytest.raises(InputError, match="min_tumour_mm3"):
        PostProcess(min_tumour_mm3=-1.0)
    with pytest.raises(InputError, match="--raw"):
        postprocess_from_options(10.0, raw=True)
    assert postprocess_from_options(raw=True) is None
    assert postprocess_from_options(tumour_anywhere=True).min_organ_contact is None
    assert postprocess_from_options(20.0).min_tumour_mm3 == 20.0


class Painter(torch.nn.Module):
    """A stand-in network that labels the windowed CT: organ above 0.3, tumour above 0.7."""

    def forward(self, x):
        return torch.cat([torch.zeros_like(x), 40 * (x - 0.3), 200 * (x - 0.7)], dim=1)


def test_predictor_and_predict_apply_the_defaults_and_raw_keeps_everything(tmp_path, capsys):
    hu = np.full((30, 20, 20), -100.0, np.float32)
    hu[scene() == 1] = 100.0
    hu[scene() == 2] = 180.0  # the window is -21 to 189 HU
    network = Predictor(Painter(), (16, 16, 16), (-21.0, 189.0), None, torch.device("cpu"))
    assert np.array_equal(network(hu, (1.0, 1.0, 1.0)), scene())
    post = Predictor(**{**network.__dict__, "postprocess": DEFAULT_POSTPROCESS})
    assert np.array_equal(post(hu, (1.0, 1.0, 1.0)), DEFAULT_POSTPROCESS(scene(), (1.0,) * 3))
    # a real checkpoint through `tumorsynth predict`, with and without the post-processing
    cfg = load_train_config(None, ["patch_size=[16,16,16]", "channels=[2,4]"])
    state = {"network": network_spec(cfg), "window_hu": [-21.0, 189.0], "spacing_mm": None,
             "model": build_network(cfg).state_dict(), "step": 0}  # fmt: skip
    save_checkpoint(tmp_path / "m.pt", state)
    write_volume(tmp_path / "ct.nii.gz", hu, (1.0, 1.0, 1.0))
    torch.manual_seed(0)
    for extra, out in (([], "post"), (["--raw"], "raw")):
        main(["predict", str(tmp_path / "m.pt"), str(tmp_path / "ct.nii.gz"), "--out",
              str(tmp_path / out), "--device", "cpu", *extra])  # fmt: skip
    raw = read_volume(tmp_path / "raw" / "ct.nii.gz").array
    post = read_volume(tmp_path / "post" / "ct.nii.gz").array
    assert np.array_equal(post, DEFAULT_POSTPROCESS(raw, (1.0, 1.0, 1.0)))
    capsys.readouterr()


def test_predict_help_states_the_library_defaults(capsys):
    try:
        main(["predict", "--help"])
    except SystemExit as err:
        assert not err.code
    text = " ".join(capsys.readouterr().out.split())
    mm3 = re.search(r"mm³ \[default: ([0-9.]+)", text).group(1)
    contact = re.search(r"is organ \[default: ([0-9.]+)", text).group(1)
    assert float(mm3) == DEFAULT_POSTPROCESS.min_tumour_mm3
    assert float(contact) == DEFAULT_POSTPROCESS.min_organ_contact
