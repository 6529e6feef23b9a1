"""The baselines, the per-volume protocol, the comparison and the scan-level classifier loss, on
untrained weights (what is checked here does not need learning)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from spars_helpers import box_volume, mean_scorer, one_thread, tiny_config, untrained_run  # noqa: F401 (one_thread: a fixture)

from tumorsynth.methods.spars.baselines import gradcam_map, grid_corners, sliding_window_map
from tumorsynth.methods.spars.classifier import build_classifier, classifier_spec
from tumorsynth.methods.spars.compare import compare_methods, phantom_cases, write_comparison
from tumorsynth.methods.spars.model import GRADCAM_LAYER, METHODS, load_run
from tumorsynth.methods.spars.segment import segment_volume


def test_the_sliding_window_map_is_the_max_and_mean_of_every_window():
    volume = box_volume((10, 9, 8))
    window = (4, 3, 3)
    map_max, map_mean = sliding_window_map(volume, mean_scorer, window, 3)
    corners = grid_corners(volume.shape, window, (3, 3, 3))
    assert sorted({int(c[0]) for c in corners}) == [0, 3, 6]  # the last flush with the end
    top = np.zeros(volume.shape, np.float32)
    total, count = np.zeros_like(top), np.zeros_like(top)
    for c in corners:
        box = tuple(slice(a, a + w) for a, w in zip(c, window, strict=True))
        score = volume.image[box].mean()
        top[box] = np.maximum(top[box], score)
        total[box] += score
        count[box] += 1
    np.testing.assert_allclose(map_max, top, rtol=1e-6)
    np.testing.assert_allclose(map_mean, total / count, rtol=1e-5)


def test_gradcam_maps_are_in_0_1_and_leave_the_classifier_as_it_was(tmp_path):
    cfg = tiny_config(tmp_path)
    net = build_classifier(classifier_spec(cfg)).eval().requires_grad_(False)
    volume = box_volume((16, 14, 12))
    cam = gradcam_map(volume, net, cfg.window_vox, GRADCAM_LAYER)
    assert cam.shape == volume.shape and cam.dtype == np.float32
    assert cam.min() >= 0 and cam.max() <= 1 and cam.max() > 0
    assert not any(p.requires_grad for p in net.parameters())


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    _, run = untrained_run(tmp_path_factory.mktemp("untrained"))
    model = load_run(run, "cpu")
    return model, phantom_cases(model.config, 1, seed=3, spacing_mm=6.0)


@pytest.mark.parametrize("method", METHODS)
def test_every_method_gives_labels_on_the_cts_grid(untrained, method):
    model, (case,) = untrained
    labels = segment_volume(model, case.image, case.label > 0, case.spacing_mm, method=method)
    assert labels.shape == case.image.shape and labels.dtype == np.uint8
    assert set(np.unique(labels)) <= {0, 1, 2} and np.array_equal(labels > 0, case.label > 0)


def test_per_volume_learning_trains_fresh_agents_on_the_scan_alone(tmp_path):
    _, run = untrained_run(tmp_path, protocol="per_volume", tt_steps=32, n_envs=2, ppo_n_steps=8,
                           ppo_batch_size=16, ppo_epochs=1)  # fmt: skip
    (run / "agents" / "last.zip").unlink()  # per_volume runs have no amortised agents
    model = load_run(run, "cpu")
    assert model.policy is None
    (case,) = phantom_cases(model.config, 1, seed=3, spacing_mm=6.0)
    calls = model.scorer.calls
    labels = segment_volume(model, case.image, case.label > 0, case.spacing_mm)
    assert model.scorer.calls - calls >= 32 // 2  # it learnt on this scan (32 steps, 2 envs)
    assert np.array_equal(labels > 0, case.label > 0)


def _segmenter_checkpoint(path):
    from tumorsynth.segment.checkpoint import save_checkpoint
    from tumorsynth.segment.networks import build_network, network_spec
    from tumorsynth.train.config import load_train_config

    cfg = load_train_config(None, {"network": "basic_unet", "patch_size": [32, 32, 32],
                                   "channels": [4, 4, 8, 8, 16, 4]})  # fmt: skip
    torch.manual_seed(0)
    net = build_network(cfg)
    save_checkpoint(path, {"network": network_spec(cfg), "window_hu": [-21.0, 189.0],
                           "spacing_mm": None, "model": net.state_dict()})  # fmt: skip
    return path


def test_the_comparison_scores_every_method_on_the_same_cases(untrained, tmp_path):
    model, cases = untrained
    segmenter = _segmenter_checkpoint(tmp_path / "seg.pt")
    results = compare_methods(model, cases, segmenter=segmenter, progress=False)
    assert list(results) == [*METHODS, "supervised"]
    for entry in results.values():
        assert list(entry["cases"]) == ["phantom1100"]
        assert entry["summary"]["n_cases"] == 1 and entry["seconds_per_case"] > 0
    paths = write_comparison(tmp_path / "out", results, "a note")
    assert [p.name for p in paths] == ["results.json", "results.md", "results.png"]
    text = paths[1].read_text()
    assert text.count("\n| ") == len(results) and "a note" in text


@pytest.mark.slow
def test_scan_labels_add_a_multiple_instance_loss_to_the_classifier(tmp_path):
    from tumorsynth import synthesize
    from tumorsynth.io.volume import write_volume
    from tumorsynth.methods.spars.presence import train_classifier
    from tumorsynth.phantom import make_phantom

    host = make_phantom(seed=0, spacing_mm=4.0)
    sick = synthesize(host, config={"preset": "liver", "size_class": "medium"}, seed=2).image
    for name, image in (("a", sick), ("b", host.image)):
        write_volume(tmp_path / f"{name}.nii.gz", np.asarray(image, np.float32), host.spacing_mm)
    write_volume(tmp_path / "liver.nii.gz", np.asarray(host.organ, np.uint8), host.spacing_mm)
    (tmp_path / "labels.csv").write_text("case,label,mask\na.nii.gz,1,liver.nii.gz\n"
                                         "b.nii.gz,0,liver.nii.gz\n")  # fmt: skip
    cfg = tiny_config(tmp_path, n_phantoms=1, clf_steps=4, clf_bank_pairs=8, clf_val_pairs=8,
                      val_every=4, scan_labels=str(tmp_path / "labels.csv"))  # fmt: skip
    result = train_classifier(cfg, progress=False)
    rows = list(csv.DictReader((tmp_path / "run" / "classifier" / "metrics.csv").open()))
    mil = [float(r["mil_loss"]) for r in rows if r["split"] == "train"]
    assert len(mil) == 4 and all(np.isfinite(mil)) and result.best_metric == "auc"
