"""Training on several organs: the config's checks, the hosts and their map of organs, the targets
(three labels or per-organ codes), and a short per-organ run whose checkpoint ``predict`` reads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tumorsynth.engine.label_maps import PER_ORGAN_CODES
from tumorsynth.errors import ConfigError
from tumorsynth.segment.predict import Predictor
from tumorsynth.stream.crops import TumorStream, collate
from tumorsynth.train import load_train_config, train
from tumorsynth.train.data import compose_targets, host_organs, load_hosts, load_val_cases

TINY = [
    "phantom_spacing_mm=4.0",
    "patch_size=[32,32,32]",
    "channels=[4,8,16]",
    "batch_size=2",
    "num_workers=0",
    "warmup_steps=1",
]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("organs=[liver, lung]", "organs: distinct names of liver"),
        ("label_scheme=pairs", "label_scheme: one of shared, per_organ"),
        ("label_map=ts", "label_map: one of totalsegmentator"),
        ("synth_configs={spleen: liver}", "synth_configs: \\['spleen'\\] are not among"),
    ],
)
def test_bad_organ_settings_fail_with_one_message(override, message):
    with pytest.raises(ConfigError, match=message):
        load_train_config(None, [override])


def test_several_organs_need_their_own_configs_and_names_in_label_maps():
    with pytest.raises(ConfigError, match="synth_config is for one organ"):
        load_train_config(None, ["organs=[liver, kidney]", "synth_config=syntumor"])
    with pytest.raises(ConfigError, match="several organs on CT need label_map"):
        load_train_config(None, ["organs=[liver, kidney]", "images=[a.nii.gz]", "masks=[b.nii.gz]"])


def test_hosts_carry_every_organ_and_the_targets_code_each_tumour_by_its_organ():
    config = load_train_config(None, [*TINY, "organs=[liver, kidney]", "label_scheme=per_organ"])
    hosts = load_hosts(config, progress=False)
    assert host_organs(config, len(hosts)) == ["liver", "kidney"]
    liver, kidney = hosts
    assert liver.image is kidney.image and liver.extras["context"] is kidney.extras["context"]
    context = liver.extras["context"]
    assert set(np.unique(context)) == {0, 1, 5}
    assert np.array_equal(context == 5, kidney.organ > 0)
    assert kidney.extras["label_codes"] == PER_ORGAN_CODES["kidney"]
    stream = TumorStream(hosts, (32, 32, 32), pos_fraction=1.0, config=["liver", "kidney"], seed=0)
    items = [stream.replay(1, np.asarray(kidney.organ_stats.bbox_lo) + 2, seed) for seed in (3, 4)]
    batch = collate(items)
    target = compose_targets(batch["label"].long(), batch["context"], batch["codes"])
    tumour = batch["label"] == 2
    assert tumour.any() and (target[tumour] == 6).all()  # the kidney's tumour code
    assert torch.equal(target[~tumour], batch["context"][~tumour].long())


@pytest.mark.slow
def test_a_short_per_organ_run_predicts_with_its_codes(tmp_path):
    """Two steps on the phantom's pancreas and kidneys (about 12 s of CPU)."""
    overrides = [*TINY, "organs=[pancreas, kidney]", "label_scheme=per_organ", "steps=2",
                 "val_every=2", "n_val_synthetic=1", f"out_dir={tmp_path / 'run'}"]  # fmt: skip
    config = load_train_config(None, overrides)
    (val,) = load_val_cases(config, progress=False)
    assert {3, 4, 5, 6} <= set(np.unique(val.label)) <= {0, 3, 4, 5, 6}
    result = train(config, progress=False)
    assert result.step == 2 and result.best_score is not None
    predictor = Predictor.from_checkpoint(result.out_dir / "checkpoints" / "last.pt", "cpu")
    assert predictor.label_scheme == "per_organ"
    labels = predictor(val.image, val.spacing_mm)
    assert labels.shape == val.label.shape and labels.max() <= 6
    out = predictor.model(torch.zeros(1, 1, 32, 32, 32))
    assert out.shape[1] == 7
