"""Bad input gets one clear line and nothing half-written: configs, CTs without a liver mask,
empty livers, windows larger than the liver's box, classifiers of another architecture."""

from __future__ import annotations

import numpy as np
import pytest
from spars_helpers import one_thread, tiny_config, untrained_run  # noqa: F401 (one_thread: a fixture)
from toy import data_file
from tumorsynth.cli import main

from tumorsynth.errors import ConfigError, InputError
from tumorsynth.methods.spars.classifier import build_classifier, classifier_spec, load_classifier
from tumorsynth.methods.spars.config import load_spars_config
from tumorsynth.methods.spars.model import load_run
from tumorsynth.methods.spars.segment import segment_files, segment_volume
from tumorsynth.methods.spars.volumes import prepare_volume
from tumorsynth.segment.checkpoint import save_checkpoint

CT = "totalsegmentator_example/example_ct_sm.nii.gz"
LIVER = "totalsegmentator_example/example_ct_sm_liver_mask.nii.gz"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"mask_rul": "max"}, r"unknown field 'mask_rul' \(did you mean 'mask_rule'\?\)"),
        ({"mask_rule": "union"}, r"mask_rule: unknown 'union'; choose from max, sum, mean"),
        ({"window_vox": [8, 8, 1]}, r"window_vox: 3 ints of at least 2"),
        ({"tau": -1}, r"tau: at least 0"),
        ({"obs_context": 2}, r"obs_context: an odd positive int"),
        ({"competitor": "pfsp"}, r"competitor: unknown 'pfsp'"),
        ({"ppo_steps": "many"}, r"ppo_steps: expected an integer"),
    ],
)
def test_a_bad_config_names_the_field(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_spars_config(None, overrides)


def test_the_config_round_trips_through_its_json(tmp_path):
    cfg = tiny_config(tmp_path, window_hu=[-100, 200], synth_config="syntumor")
    assert load_spars_config(cfg.to_dict()) == cfg


def test_an_empty_liver_and_a_window_larger_than_the_liver_box_are_refused(tmp_path):
    cfg = tiny_config(tmp_path)
    image = np.zeros((30, 30, 30), np.float32)
    with pytest.raises(InputError, match=r"ct.nii.gz: the liver mask is empty"):
        prepare_volume(image, np.zeros_like(image), (4.0,) * 3, cfg, "ct.nii.gz")
    liver = np.zeros_like(image)
    liver[10:20, 10:20, 14:16] = 1  # 2 voxels thick along z, the window needs 8 (with margins 6)
    with pytest.raises(InputError, match=r"thin.nii.gz: the window \[8, 8, 8\] voxels at 4 mm is "
                       r"larger than the liver's box \[14, 14, 6\]"):  # fmt: skip
        prepare_volume(image, liver, (4.0,) * 3, cfg, "thin.nii.gz")


def test_a_classifier_of_another_architecture_is_refused(tmp_path):
    cfg = tiny_config(tmp_path)
    other = tiny_config(tmp_path, clf_channels=[8, 16])
    path = tmp_path / "other.pt"
    net = build_classifier(classifier_spec(other))
    save_checkpoint(path, {"classifier": classifier_spec(other), "model": net.state_dict()})
    with pytest.raises(InputError, match=r"other.pt: a classifier of another architecture"):
        load_classifier(path, cfg)
    save_checkpoint(path, {"network": {"network": "unet"}, "model": {}})
    with pytest.raises(InputError, match=r"other.pt: not a SPARS classifier checkpoint"):
        load_classifier(path, cfg)
    _, run = untrained_run(tmp_path)
    save_checkpoint(run / "classifier" / "checkpoints" / "best.pt",
                    {"classifier": classifier_spec(other), "model": net.state_dict()})  # fmt: skip
    with pytest.raises(InputError, match="another architecture"):
        load_run(run)


def test_a_ct_without_a_liver_mask_writes_nothing(tmp_path):
    _, run = untrained_run(tmp_path)
    out = tmp_path / "pred"
    with pytest.raises(InputError, match=r"example_ct_sm.nii.gz: no liver mask"):
        segment_files(run, [data_file(CT)], out, progress=False)
    with pytest.raises(InputError, match=r"2 images but 1 masks"):
        segment_files(run, [data_file(CT), data_file("totalsegmentator_example/example_ct.nii.gz")],
                      out, masks=[data_file(LIVER)], progress=False)  # fmt: skip
    assert not out.exists()


def test_segment_writes_labels_in_the_cts_geometry_and_refuses_to_overwrite(tmp_path):
    import SimpleITK as sitk

    _, run = untrained_run(tmp_path)
    out = tmp_path / "pred"
    (path,) = segment_files(run, [data_file(CT)], out, masks=[data_file(LIVER)], progress=False)
    ct, pred = sitk.ReadImage(str(data_file(CT))), sitk.ReadImage(str(path))
    assert path.name == "example_ct_sm.nii.gz" and pred.GetSize() == ct.GetSize()
    np.testing.assert_allclose(pred.GetOrigin(), ct.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(pred.GetSpacing(), ct.GetSpacing(), atol=1e-6)
    np.testing.assert_allclose(pred.GetDirection(), ct.GetDirection(), atol=1e-6)
    labels = sitk.GetArrayFromImage(pred)
    liver = sitk.GetArrayFromImage(sitk.ReadImage(str(data_file(LIVER))))
    assert set(np.unique(labels)) <= {0, 1, 2} and np.array_equal(labels > 0, liver > 0)
    with pytest.raises(InputError, match="exists"):
        segment_files(run, [data_file(CT)], out, masks=[data_file(LIVER)], progress=False)


def test_an_empty_liver_and_a_thin_ct_are_one_line_each(tmp_path, capsys):
    _, run = untrained_run(tmp_path)
    model = load_run(run, "cpu")
    image = np.zeros((40, 40, 40), np.float32)
    with pytest.raises(InputError, match=r"scan.nii: the liver mask is empty"):
        segment_volume(model, image, np.zeros_like(image), (2.0,) * 3, name="scan.nii")
    ct = data_file("dcmqi_ct_3slice_liver/ct")
    mask = data_file("dcmqi_ct_3slice_liver/liver_seg.nrrd")
    code = _cli(["spars", "segment", str(run), str(ct), "--masks", str(mask), "--out",
                 str(tmp_path / "p")])  # fmt: skip
    assert code == 1 and not (tmp_path / "p" / "ct.nii.gz").exists()
    assert "ct: the window [8, 8, 8] voxels at 4 mm is larger than the liver's box [59, 48, 1]" in (
        capsys.readouterr().err
    )


def _cli(argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return exit_info.value.code


def test_the_cli_reports_bad_input_as_one_error_line(tmp_path, capsys):
    _, run = untrained_run(tmp_path)
    assert (
        _cli(["spars", "segment", str(run), str(data_file(CT)), "--out", str(tmp_path / "o")]) == 1
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "no liver mask" in err[0]
    assert _cli(["spars", "train", "--set", "tua=0.3", "--out", str(tmp_path / "t")]) == 1
    assert "did you mean 'tau'" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()
