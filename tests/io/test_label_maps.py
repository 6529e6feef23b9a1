"""Organ masks from label maps by name: TotalSegmentator's and BTCV's values, both kidneys, and one
clear line for a map that does not hold the organ or is another map."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
from toy import data_file

import tumorsynth as ts
from tumorsynth.dataset.sources import dataset_json_sources
from tumorsynth.engine.label_maps import ORGAN_LABELS, select_organ
from tumorsynth.io.case import read_case

FOLDER = "totalsegmentator_example/"


@pytest.fixture(scope="module")
def seg():
    path = data_file(FOLDER + "example_seg_fast_force_split.nii.gz")
    return path, sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


@pytest.mark.parametrize(("organ", "values"), [("pancreas", [7]), ("kidney", [2, 3]),
                                               ("kidney_left", [3]), ("liver", [5])])  # fmt: skip
def test_an_organ_by_name_is_its_totalsegmentator_labels(seg, organ, values):
    path, array = seg
    case = read_case(data_file(FOLDER + "example_ct.nii.gz"), path, select_organ(organ)).case
    assert case.organ.sum() == np.isin(array, values).sum() > 0


def test_btcv_and_totalsegmentator_name_the_same_organs_by_other_values():
    assert select_organ("pancreas", "btcv").values == (11,)
    assert select_organ("pancreas", "totalsegmentator_v1").values == (10,)
    assert select_organ("liver", "btcv").describe() == "liver (BTCV label 6)"
    assert set(ORGAN_LABELS) >= {"liver", "pancreas", "kidney"}
    with pytest.raises(ts.InputError, match="unknown organ 'lung'; choose from liver, pancreas"):
        select_organ("lung")


def test_an_organ_the_map_does_not_hold_is_one_line_naming_the_file():
    """TotalSegmentator's map of the 20-slice DICOM case holds no kidney."""
    ct = data_file(FOLDER + "example_ct_dicom.nii.gz")
    seg = data_file(FOLDER + "example_seg_dicom.nii.gz")
    with pytest.raises(ts.InputError) as err:
        read_case(ct, seg, select_organ("kidney"))
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{seg}: the label map has no kidney (TotalSegmentator labels 2, 3)")


def test_another_map_than_the_one_named_is_refused(seg):
    """BTCV's pancreas (11) is a lung lobe in TotalSegmentator's map: refused, not read."""
    path, _ = seg
    with pytest.raises(ts.InputError, match=r"labels up to 117, so it is not a BTCV label map"):
        read_case(data_file(FOLDER + "example_ct.nii.gz"), path, select_organ("pancreas", "btcv"))


def test_dataset_json_names_the_organ_or_both_kidneys(tmp_path, seg):
    path, _ = seg
    ct = data_file(FOLDER + "example_ct.nii.gz")
    labels = {"background": 0, "kidney_right": 2, "kidney_left": 3, "pancreas": 7}
    entry = {"image": str(ct), "label": str(path)}
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": labels, "training": [entry]}))
    (source,) = dataset_json_sources(tmp_path / "dataset.json", organ="kidney")
    assert source.organ_label.values == (2, 3)
    (source,) = dataset_json_sources(tmp_path / "dataset.json", organ="pancreas")
    assert source.organ_label.values == (7,)
    with pytest.raises(ts.InputError, match="have no 'liver'; pass the organ's value"):
        dataset_json_sources(tmp_path / "dataset.json")
