"""Mixed training: phantoms, healthy CT and labelled scans by ratio, each crop's source logged."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
from toy import data_file

import tumorsynth as ts
from tumorsynth.errors import ConfigError, InputError
from tumorsynth.io.volume import write_volume
from tumorsynth.phantom import make_phantom
from tumorsynth.segment import load_model
from tumorsynth.stream.crops import TumorStream
from tumorsynth.stream.mixed import LabelledStream, MixedStream
from tumorsynth.train import load_train_config, train
from tumorsynth.train.mix import load_mixed, source_fractions

TINY = ["phantom_spacing_mm=3.0", "patch_size=[32,32,32]", "channels=[4,8,16]", "batch_size=4",
        "num_workers=0", "warmup_steps=1", "synth_config=syntumor"]  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["mix={phantom: 1, ct: 1}"], "'ct' has weight 1 but no images or dataset"),
        (["mix={phantom: 1, lits: 1}"], "unknown source(s) ['lits']"),
        (["mix={phantom: 0}"], "positive sum"),
        (["real_images=[a.nii.gz]", "real_labels=[b.nii.gz]"], "labelled scans need a mix"),
        (["mix={phantom: 1}", "real_images=[a.nii.gz]"], "mix gives 'real' no weight"),
        (["mix={real: 1}", "real_labels=[b.nii.gz]"], "real_labels: given without real_images"),
        (["mix={phantom: 1}", "n_phantoms=0"], "'phantom' has weight 1 but no n_phantoms"),
        (["mix={phantom: 1}", "organs=[liver, pancreas]", "synth_config=null"], "for one organ"),
        (["mix={phantom: 1}", "label_scheme=per_organ"], "for one organ with the shared labels"),
    ],
)
def test_a_mix_that_cannot_work_is_one_message(overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_train_config(None, overrides)


@pytest.fixture(scope="module")
def labelled_scans(tmp_path_factory):
    """Two phantoms (seeds 3000, 3001, at 3 mm) with tumours, written as labelled scans."""
    folder = tmp_path_factory.mktemp("real")
    (folder / "images").mkdir()
    (folder / "labels").mkdir()
    for k in range(2):
        case = make_phantom(seed=3000 + k, spacing_mm=3.0)
        result = ts.synthesize(case, config="liver", seed=k)
        write_volume(folder / "images" / f"case{k}.nii.gz", result.image, case.spacing_mm)
        write_volume(folder / "labels" / f"case{k}.nii.gz", result.label, case.spacing_mm)
    return folder


def test_labelled_scans_with_other_values_are_named(tmp_path, labelled_scans):
    case = make_phantom(seed=3000, spacing_mm=3.0)
    write_volume(tmp_path / "bad.nii.gz", case.organ * 5, case.spacing_mm)
    cfg = load_train_config(None, [*TINY, "mix={real: 1}",
                                   f"real_images=[{labelled_scans / 'images' / 'case0.nii.gz'}]",
                                   f"real_labels=[{tmp_path / 'bad.nii.gz'}]"])  # fmt: skip
    with pytest.raises(InputError, match=r"bad\.nii\.gz: real labels must be 0 background"):
        load_mixed(cfg, progress=False)


@pytest.mark.slow
def test_a_mixed_run_logs_each_crops_source_at_the_ratios(tmp_path, labelled_scans):
    """Healthy phantoms and the real CT as hosts, labelled phantom scans as the real source."""
    ct = data_file("totalsegmentator_example/example_ct.nii.gz")
    mask = data_file("totalsegmentator_example/example_ct_liver_mask.nii.gz")
    out = tmp_path / "run"
    cfg = load_train_config(None, [
        *TINY, "steps=6", "val_every=6", f"out_dir={out}",
        f"images=[{ct}]", f"masks=[{mask}]",
        f"real_images=[{labelled_scans / 'images'}]", f"real_labels=[{labelled_scans / 'labels'}]",
        "mix={phantom: 1, ct: 1, real: 2}",
        "n_val_synthetic=1", f"val_images=[{labelled_scans / 'images' / 'case1.nii.gz'}]",
        f"val_labels=[{labelled_scans / 'labels' / 'case1.nii.gz'}]",
    ])  # fmt: skip
    result = train(cfg, progress=False)
    # 6 steps of 4 crops: 6 phantom, 6 CT and 12 labelled crops, exactly
    assert source_fractions(out) == {"phantom": 0.25, "ct": 0.25, "real": 0.5}
    lines = [json.loads(x) for x in (out / "streams" / "rank0.jsonl").open()]
    items = [item for line in lines for item in line["items"]]
    assert all(item["seed"] is None for item in items if item["source"] == "real")
    # the log renders the crops again, the labelled ones with their own tumours
    groups, scans = load_mixed(cfg, progress=False)
    streams = {
        k: TumorStream(v, cfg.patch_size, config=cfg.synth_config) for k, v in groups.items()
    }
    stream = MixedStream({**streams, "real": LabelledStream(scans, cfg.patch_size)}, cfg.mix)
    real = next(i for i in items if i["source"] == "real")
    again = stream.replay("real", real["case"], real["crop_lo_vox"], None)
    assert set(np.unique(again["label"].numpy())) <= {0, 1, 2}
    # validation on the labelled file and the synthetic phantom together
    rows = [r for r in csv.DictReader((out / "metrics.csv").open()) if r["split"] == "val"]
    assert len(rows) == 1 and result.best_score == pytest.approx(float(rows[0]["tumour_dice"]))
    _, meta = load_model(out / "checkpoints" / "last.pt")
    assert meta["spacing_mm"] == [3.0, 3.0, 3.0]
