"""The transforms and the stream on organs other than the liver: label maps read by organ name
(TotalSegmentator's), the tumour's value in them, the organ's preset by default, a config per
host."""

from __future__ import annotations

import numpy as np
import pytest
from toy import data_file

torch = pytest.importorskip("torch", reason="the transforms need torch (the train extra)")
pytest.importorskip("monai", reason="the MONAI adapters need monai (the train extra)")

from monai.data import MetaTensor  # noqa: E402

import tumorsynth as ts  # noqa: E402
from tumorsynth.io.volume import read_volume  # noqa: E402
from tumorsynth.stream.crops import TumorStream  # noqa: E402
from tumorsynth.transforms import RandTumorSynthd  # noqa: E402

FOLDER = "totalsegmentator_example/"


@pytest.fixture(scope="module")
def sample():
    ct = read_volume(data_file(FOLDER + "example_ct.nii.gz"))
    seg = read_volume(data_file(FOLDER + "example_seg_fast_force_split.nii.gz"))
    affine = np.diag([*ct.spacing_mm, 1.0])  # RAS, as the file
    return {
        "image": MetaTensor(torch.from_numpy(ct.array.astype(np.float32))[None], affine=affine),
        "label": MetaTensor(torch.from_numpy(seg.array.astype(np.uint8))[None], affine=affine),
    }


def test_a_label_map_keeps_its_labels_and_takes_the_tumour_value(sample):
    t = RandTumorSynthd("image", prob=1.0, organ="kidney").set_random_state(3)
    assert t.config.name == "kidney"  # the organ's preset by default
    out = t(sample)
    before, after = sample["label"][0].numpy(), out["label"][0].numpy()
    tumour = after == 200
    assert tumour.any() and t.last_params is not None
    assert np.array_equal(after[~tumour], before[~tumour])  # every other structure kept
    kidneys = np.isin(before, [2, 3])
    exophytic = t.last_params.lesions[0].exophytic
    assert bool((tumour & ~kidneys).any()) == exophytic  # out of the kidney only when exophytic
    changed = (out["image"] != sample["image"])[0].numpy()
    assert changed.any() and (kidneys | tumour | exophytic)[changed].all()
    again = t(out, randomize=False)  # a map that holds the tumour value passes through
    assert again["tumorsynth_params"] == ""


def test_the_organ_by_value_and_a_tumour_value_of_ones_own(sample):
    t = RandTumorSynthd("image", prob=1.0, organ_label=7, tumour_label=250, config="pancreas")
    out = t.set_random_state(0)(sample)
    tumour = out["label"][0].numpy() == 250
    assert tumour.any() and np.isin(sample["label"][0].numpy()[tumour], [7]).all()
    with pytest.raises(ts.InputError, match="tumour_label 7 is the organ's own value"):
        RandTumorSynthd("image", organ="pancreas", tumour_label=7)


def test_the_stream_takes_one_config_per_host(phantom_2mm):
    from tumorsynth.phantom import organ_case

    hosts = [phantom_2mm, organ_case(phantom_2mm, "pancreas")]
    stream = TumorStream(hosts, (48, 48, 48), pos_fraction=1.0, config=["syntumor", "pancreas"],
                         seed=0)  # fmt: skip
    item = stream.replay(1, np.asarray(hosts[1].organ_stats.bbox_lo), 5)
    assert item["params"]["config"] == "pancreas" and len(item["params"]["lesions"]) == 1
    assert "context" not in item
    with pytest.raises(ts.InputError, match="one config per case"):
        TumorStream(hosts, config=["liver"])
