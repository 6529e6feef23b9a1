"""The classifier's data: each positive with its negative at the same place, box negatives, the
batches, and the multiple-instance bags of labelled scans."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from spars_helpers import one_thread, tiny_config  # noqa: F401 (one_thread: a fixture)

from tumorsynth.io.volume import write_volume
from tumorsynth.methods.spars.classifier import build_classifier, classifier_spec
from tumorsynth.methods.spars.mil import mil_loss, read_scan_labels, scan_windows
from tumorsynth.methods.spars.pairs import (
    PairBatches,
    box_negatives,
    draw_pairs,
    make_stream,
    min_tumour_vox,
)
from tumorsynth.methods.spars.volumes import load_hosts, window_hu


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    cfg = tiny_config(tmp_path_factory.mktemp("pairs"), n_phantoms=1, clf_bank_pairs=16,
                      clf_batch_pairs=4)  # fmt: skip
    return cfg, load_hosts(cfg)


def test_positive_and_negative_come_from_the_same_place(setup):
    cfg, hosts = setup
    stream = make_stream(cfg, hosts, seed=3)
    pairs = draw_pairs(stream, np.random.default_rng(3), 6, min_tumour_vox(cfg), cfg.window_hu)
    assert pairs.positive.shape == pairs.negative.shape == (6, 1, *cfg.window_vox)
    assert np.all(pairs.tumour_vox >= min_tumour_vox(cfg))
    for k in range(len(pairs)):
        host = hosts[pairs.case[k]]
        healthy, organ = stream.crop(host, pairs.crop_lo_vox[k])  # the host, untouched, there
        np.testing.assert_array_equal(pairs.negative[k, 0], window_hu(healthy, cfg.window_hu))
        changed = pairs.positive[k, 0] != pairs.negative[k, 0]
        assert changed.any() and not changed[organ == 0].any()  # only the liver differs


def test_box_negatives_are_healthy_windows_that_hold_liver(setup):
    cfg, hosts = setup
    stream = make_stream(cfg, hosts, seed=4)
    crops = box_negatives(stream, np.random.default_rng(4), 32, cfg)
    assert crops.shape == (32, 1, *cfg.window_vox) and crops.dtype == np.float32
    liver_level = window_hu(np.float32(hosts[0].organ_stats.median_hu), cfg.window_hu)
    assert np.all(np.abs(crops - liver_level).reshape(32, -1).min(axis=1) < 0.05)


def test_batches_hold_pairs_then_negatives_with_their_targets(setup):
    cfg, hosts = setup
    batches = iter(PairBatches(make_stream(cfg, hosts, seed=5), cfg, seed=5))
    batch = next(batches)
    n_box = round(cfg.clf_box_negatives * 4)
    assert batch["input"].shape == (8 + n_box, 1, *cfg.window_vox)
    assert batch["target"].reshape(-1).tolist() == [1.0] * 4 + [0.0] * (4 + n_box)
    assert not torch.equal(batch["input"], next(batches)["input"])


def _scan_csv(tmp_path, cfg, hosts, rows):
    from tumorsynth import synthesize

    host = hosts[0]
    sick = synthesize(host, config=cfg.synth_config, seed=1).image
    for name, image in (("healthy", host.image), ("sick", sick)):
        write_volume(tmp_path / f"{name}.nii.gz", np.asarray(image, np.float32), host.spacing_mm)
    write_volume(tmp_path / "liver.nii.gz", np.asarray(host.organ, np.uint8), host.spacing_mm)
    path = tmp_path / "labels.csv"
    path.write_text("case,label,mask\n" + "".join(f"{r}\n" for r in rows))
    return path


def test_labelled_scans_are_bags_of_liver_windows_with_a_max_loss(setup, tmp_path):
    cfg, hosts = setup
    csv_path = _scan_csv(tmp_path, cfg, hosts,
                         ["sick.nii.gz,1,liver.nii.gz", "healthy.nii.gz,0,liver.nii.gz"])  # fmt: skip
    scans = read_scan_labels(csv_path, cfg)
    assert [s.label for s in scans] == [1, 0]
    rng = np.random.default_rng(0)
    bag = scan_windows(scans[0].volume, cfg.window_vox, 12, rng)
    assert bag.shape == (12, 1, *cfg.window_vox) and bag.dtype == np.float32
    net = build_classifier(classifier_spec(cfg))
    loss = mil_loss(net, scans[0], cfg.window_vox, 12, rng, torch.device("cpu"))
    loss.backward()
    assert torch.isfinite(loss) and any(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (["sick.nii.gz,1,liver.nii.gz", "missing.nii.gz,0,liver.nii.gz"],
         r"labels.csv line 3: scan 'missing.nii.gz' does not exist"),
        (["sick.nii.gz,2,liver.nii.gz"], r"line 2: label must be 0 or 1, got '2'"),
        (["sick.nii.gz,1,", "healthy.nii.gz,0,liver.nii.gz"], r"line 2: no liver mask given"),
        (["sick.nii.gz,1,liver.nii.gz"], r"needs scans of both labels"),
    ],
)  # fmt: skip
def test_a_labels_csv_naming_missing_scans_or_bad_labels_is_one_clear_error(
    setup, tmp_path, rows, message
):
    from tumorsynth.errors import InputError

    cfg, hosts = setup
    with pytest.raises(InputError, match=message):
        read_scan_labels(_scan_csv(tmp_path, cfg, hosts, rows), cfg)
