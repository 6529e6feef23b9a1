"""The phantom's pancreas (head, body, tail, duct) and its pancreas and kidneys as hosts."""

from __future__ import annotations

import numpy as np
import pytest

import tumorsynth as ts
from tumorsynth.phantom import HOST_ORGANS, LABELS, make_phantom, organ_case
from tumorsynth.phantom.pancreas import PARTS


def _centre_x_mm(case: ts.Case, mask: np.ndarray) -> float:
    """Mean X of a mask, mm from the field of view's centre (X toward the patient's right)."""
    return float((np.argwhere(mask)[:, 0].mean() + 0.5 - case.shape[0] / 2) * case.spacing_mm[0])


def test_the_pancreas_has_a_head_body_tail_and_duct_in_anatomical_order(phantom_2mm):
    parts, labels = phantom_2mm.extras["pancreas_parts"], phantom_2mm.extras["labels"]
    volume_ml = {p: (parts == v).sum() * 8 / 1000 for p, v in PARTS.items()}
    assert 15 < volume_ml["head"] < 40 and volume_ml["body"] > 5 and volume_ml["tail"] > 3
    assert 0.2 < volume_ml["duct"] < 1.5  # 2-3 mm wide, the gland's length
    x = {p: _centre_x_mm(phantom_2mm, parts == v) for p, v in PARTS.items()}
    assert (
        x["head"] > 10 > x["body"] > x["tail"]
    )  # the head at the patient's right, by the duodenum
    duodenum_x = _centre_x_mm(phantom_2mm, labels == LABELS["bowel"])
    assert x["head"] > duodenum_x - 40
    duct = phantom_2mm.image[parts == PARTS["duct"]]
    gland = phantom_2mm.image[(parts >= 1) & (parts <= 3)]
    assert np.median(duct) < np.median(gland) - 30  # fluid in enhancing parenchyma
    assert np.array_equal(
        parts > 0, np.isin(labels, [LABELS["pancreas"], LABELS["pancreatic_duct"]])
    )


@pytest.mark.parametrize("organ", list(HOST_ORGANS))
def test_each_host_organ_is_its_labels_on_the_same_image(phantom_2mm, organ):
    host = organ_case(phantom_2mm, organ)
    want = np.isin(phantom_2mm.extras["labels"], [LABELS[n] for n in HOST_ORGANS[organ]])
    assert np.array_equal(host.organ, want) and host.image is phantom_2mm.image
    assert host.organ.sum() * 8 / 1000 > {"liver": 1000, "pancreas": 30}.get(organ, 100)
    assert host.source == ("phantom(seed=0)" if organ == "liver" else f"phantom(seed=0, {organ})")


def test_make_phantom_renders_the_same_image_for_any_host_organ():
    liver = make_phantom(seed=3, spacing_mm=4.0)
    kidney = make_phantom(seed=3, spacing_mm=4.0, organ="kidney")
    assert np.array_equal(liver.image, kidney.image)
    assert np.array_equal(kidney.organ, organ_case(liver, "kidney").organ)
    assert kidney.source == "phantom(seed=3, kidney)"


def test_an_organ_cut_by_the_field_of_view_or_unknown_is_refused(phantom_2mm):
    z = int(np.argwhere(phantom_2mm.extras["labels"] == LABELS["kidney_left"])[:, 2].mean())
    crop = ts.Case(
        phantom_2mm.image[:, :, z:], phantom_2mm.organ[:, :, z:], phantom_2mm.spacing_mm,
        phantom_2mm.source, {"labels": phantom_2mm.extras["labels"][:, :, z:]},
    )  # fmt: skip
    with pytest.raises(
        ts.InputError, match=r"phantom\(seed=0\): the field of view cuts the kidney"
    ):
        organ_case(crop, "kidney")
    with pytest.raises(ts.InputError, match="unknown host organ 'spleen'"):
        make_phantom(seed=0, organ="spleen")
