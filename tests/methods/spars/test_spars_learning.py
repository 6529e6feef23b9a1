"""SPARS learns (CPU, the tiny config): the classifier tells held-out tumour windows from healthy
ones, and the trained agents' masks beat random-walk agents' on held-out synthetic volumes. The
run is then resumed, and segments a real CT that ``tumorsynth evaluate`` scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from spars_helpers import one_thread, tiny_config  # noqa: F401 (one_thread: a fixture)
from toy import data_file

from tumorsynth.methods.spars.config import load_spars_config
from tumorsynth.methods.spars.model import load_run
from tumorsynth.methods.spars.pairs import box_negatives, draw_pairs, make_stream, min_tumour_vox
from tumorsynth.methods.spars.run import train_spars
from tumorsynth.methods.spars.volumes import synthetic_volumes
from tumorsynth.phantom import make_phantom

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    cfg = tiny_config(tmp_path_factory.mktemp("learning"))
    result = train_spars(cfg, progress=False)
    return cfg, result, load_run(result.out_dir, "cpu")


def _hosts(cfg, seeds):
    return [make_phantom(seed=s, spacing_mm=cfg.spacing_mm) for s in seeds]


def test_the_classifier_tells_held_out_tumour_windows_from_healthy_ones(run):
    from monai.metrics import compute_roc_auc

    cfg, result, model = run
    stream = make_stream(cfg, _hosts(cfg, (1102, 1103)), seed=11)  # never seen, nor validated on
    rng = np.random.default_rng(11)
    pairs = draw_pairs(stream, rng, 128, min_tumour_vox(cfg), cfg.window_hu)
    negatives = np.concatenate([pairs.negative, box_negatives(stream, rng, 128, cfg)])
    scores = np.concatenate([model.scorer(pairs.positive), model.scorer(negatives)])
    truth = np.r_[np.ones(128), np.zeros(256)]
    auc = float(compute_roc_auc(torch.from_numpy(scores), torch.from_numpy(truth)))
    assert auc > 0.9, auc
    assert result.classifier_auc > 0.9


def test_the_agents_masks_beat_random_walk_agents(run):
    from tumorsynth.evaluate.metrics import dice

    cfg, result, model = run
    assert result.agent_steps == cfg.ppo_steps
    volumes = synthetic_volumes(cfg, _hosts(cfg, range(1100, 1104)), 12, seed=123)
    scores = {}
    for method in ("spars", "random_walk"):
        masks = [model.tumour_mask(v, method, seed=k) for k, v in enumerate(volumes)]
        dices = [dice(m > 0, v.tumour > 0) for m, v in zip(masks, volumes, strict=True)]
        found = [bool((m & v.tumour).any()) for m, v in zip(masks, volumes, strict=True)]
        scores[method] = (float(np.mean(dices)), float(np.mean(found)))
    (dice_agents, found_agents), (dice_random, found_random) = scores.values()
    assert dice_agents > dice_random + 0.05, scores
    assert found_agents >= found_random + 0.2, scores


def test_resume_skips_the_complete_classifier_and_continues_the_agents(run, capsys):
    from tumorsynth.cli import main

    cfg, _, _ = run
    out = Path(cfg.out_dir)
    before = (out / "classifier" / "metrics.csv").read_text()
    main(["spars", "train", "--out", str(out), "--resume", "--quiet", "--set",
          f"ppo_steps={cfg.ppo_steps + 256}"])  # fmt: skip
    assert f"agents: {cfg.ppo_steps + 256} environment steps" in capsys.readouterr().out
    assert (out / "classifier" / "metrics.csv").read_text() == before  # not trained again
    assert load_spars_config(json.loads((out / "config.json").read_text())).threads == 1
    assert json.loads((out / "run.json").read_text())["agent_steps"] == cfg.ppo_steps + 256


def test_a_real_ct_is_segmented_and_scored_by_evaluate(run, tmp_path):
    import SimpleITK as sitk
    from tumorsynth.cli import main

    from tumorsynth.evaluate import evaluate_files

    cfg, _, _ = run
    ct = data_file("totalsegmentator_example/example_ct.nii.gz")
    liver = data_file("totalsegmentator_example/example_ct_liver_mask.nii.gz")
    main(["spars", "segment", cfg.out_dir, str(ct), "--masks", str(liver), "--out",
          str(tmp_path / "pred"), "--quiet"])  # fmt: skip
    truth = sitk.ReadImage(str(liver))  # the liver as label 1, no tumour: every voxel called
    sitk.WriteImage(truth, str(tmp_path / "example_ct.nii.gz"))  # tumour is a false positive
    report = evaluate_files(tmp_path / "pred" / "example_ct.nii.gz",
                            tmp_path / "example_ct.nii.gz", tmp_path / "eval", progress=False)  # fmt: skip
    assert report.summary["organ_dice"]["mean"] == 1.0  # the liver is the mask given
