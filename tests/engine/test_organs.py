"""The pancreas and kidney presets on the phantom and on TotalSegmentator's real CT: tumours in the
organ (or, exophytic, within the kidney preset's margin of it), sizes and contrasts within the
ranges that docs/organs.md documents from the literature, the head's share, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from toy import data_file, toy_volume

import tumorsynth as ts
from tumorsynth.engine.label_maps import select_organ
from tumorsynth.engine.packing import pack_lesion
from tumorsynth.kernels import layout as L
from tumorsynth.kernels.reference import lesion_fields
from tumorsynth.phantom import organ_case
from tumorsynth.phantom.pancreas import PARTS

# The documented ranges (docs/organs.md), at the preset's reference enhancement:
# - pancreatic ductal adenocarcinoma: diameters 30.3 +- 9.0 mm (hypoattenuating) and 12.4 +- 4.8 mm
#   (isoattenuating), tumour-pancreas contrast in the portal venous phase 40.5 +- 23.0 HU and
#   7.1 +- 4.7 HU (PMID 17961951): mean +- 3 SD for the sizes, 1.5 SD for the hypo contrast, 2 SD
#   for the iso one;
# - renal cell carcinoma: 20-85 mm (small masses <= 4 cm, 48-66 % of diagnoses; mean 5.1 +- 3.4 cm,
#   PMID 22528901), contrast to the parenchyma (180 HU: 35 HU unenhanced plus 145 HU medullary
#   enhancement, Eur J Radiol 2007;63:420) of clear cell carcinoma (148.8 +- 34.3 HU,
#   nephrographic) and papillary carcinoma (40.8-95.1 HU, portal venous): hypo 15-140 HU, iso
#   within 15 HU, hyper 15-75 HU brighter.
DIAMETER_MM = {"pancreas": (10.0, 65.0), "kidney": (15.0, 90.0)}
CONTRAST_HU = {
    "pancreas": {"hypo": (6.0, 75.0), "iso": (-2.3, 16.5)},
    "kidney": {"hypo": (15.0, 140.0), "iso": (-15.0, 15.0), "hyper": (-75.0, -15.0)},
}
SLACK_HU = 2.0  # and the grain's noise in the median of a tumour's voxels (see _contrast)
REFERENCE_HU = {"pancreas": 100.0, "kidney": 180.0}
MARGIN_MM = 45.0  # the kidney preset's exophytic margin


@pytest.fixture(scope="module")
def hosts(phantom_2mm):
    """The phantom's pancreas and kidneys (2 mm) and TotalSegmentator's (3 mm), by name."""
    from tumorsynth.io.case import read_case

    folder = "totalsegmentator_example/"
    ct, seg = (
        data_file(folder + "example_ct.nii.gz"),
        data_file(folder + "example_seg_fast_force_split.nii.gz"),
    )
    out = {}
    for organ in ("pancreas", "kidney"):
        out[("phantom", organ)] = organ_case(phantom_2mm, organ)
        out[("ct", organ)] = read_case(ct, seg, select_organ(organ)).case
    return out


def _contrast(case: ts.Case, result: ts.Synthesis, lesion) -> tuple[float | None, float]:
    """Organ level minus the median HU of the tumour's labelled voxels that are its tissue alone:
    beyond the edge blur and the necrotic core's soft edge (None when a small tumour has none),
    and how far its noise may move it, HU."""
    row, _, extent = pack_lesion(lesion, result.params.organ_hu)
    centre = np.asarray(lesion.center_mm)
    spacing = np.asarray(case.spacing_mm)
    lo = np.maximum(np.floor((centre - extent) / spacing).astype(int), 0)
    hi = np.minimum(np.ceil((centre + extent) / spacing).astype(int) + 1, case.shape)
    grid = np.stack(
        np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi, strict=True)], indexing="ij"), -1
    )
    f = lesion_fields(row, grid * spacing - centre)
    tissue = (f["sd"] <= -L.EDGE_REACH * row[L.EDGE_SIGMA]) & (
        f["rho"] > row[L.NECRO_RHO] + 5 * L.NECRO_SOFT
    )
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    values = result.image[box][tissue & (result.label[box] == 2)]
    if values.size < 5:
        return None, 0.0
    # the median of n voxels of the scan's grain (sigma noise_hu) is off by ~1.25 sigma / sqrt(n)
    slack = SLACK_HU + 3 * 1.25 * result.params.noise_hu / np.sqrt(values.size)
    return float(result.params.organ_hu - np.median(values)), slack


@pytest.mark.parametrize("where", ["phantom", "ct"])
@pytest.mark.parametrize("organ", ["pancreas", "kidney"])
def test_tumours_stay_in_the_organ_or_its_margin_with_documented_sizes_and_contrasts(
    hosts, where, organ
):
    case = hosts[(where, organ)]
    outside = np.asarray(case.organ) == 0
    distance = ndimage.distance_transform_edt(outside, sampling=case.spacing_mm)
    lo, hi = DIAMETER_MM[organ]
    measured, exophytic = 0, 0
    for seed in range(8):
        result = ts.synthesize(case, config=organ, seed=seed)
        (lesion,) = result.params.lesions  # one tumour per case, as the presets draw
        assert lo <= 2 * np.prod(lesion.shape.semi_axes_mm) ** (1 / 3) <= hi
        tumour = result.label == 2
        volume = tumour.sum() * np.prod(case.spacing_mm)
        assert 0 < 2 * (3 * volume / (4 * np.pi)) ** (1 / 3) <= hi
        changed = result.image != case.image
        if lesion.exophytic:  # out of the kidney, labelled, and never beyond the margin
            exophytic += 1
            assert (tumour & outside).any()
            assert distance[changed & outside].max() <= MARGIN_MM
        else:
            assert not (changed & outside).any() and not (tumour & outside).any()
        contrast, slack = _contrast(case, result, lesion)
        if contrast is not None:  # the documented range, at this scan's enhancement
            measured += 1
            scale = np.clip(result.params.organ_hu / REFERENCE_HU[organ], 0.25, 2.0)
            low, high = CONTRAST_HU[organ][lesion.intensity.kind]
            assert low * scale - slack <= contrast <= high * scale + slack, (seed, lesion)
    assert measured >= 4
    assert (exophytic > 0) == (organ == "kidney")


def test_two_thirds_of_pancreatic_tumours_lie_in_the_head(hosts):
    """With the head at the patient's right (RAS) most tumours are there; told that the array's X
    runs to the patient's left, the same preset puts them at the other end (the tail)."""
    case = hosts[("phantom", "pancreas")]
    parts = case.extras["pancreas_parts"]
    flipped = ts.Case(
        case.image, case.organ, case.spacing_mm, direction=(1, 0, 0, 0, -1, 0, 0, 0, 1)
    )
    share = {}
    for name, host in (("ras", case), ("flipped", flipped)):
        where = []
        for seed in range(60):
            (lesion,) = ts.sample_params(host, config="pancreas", rng=seed).lesions
            voxel = np.round(np.asarray(lesion.center_mm) / host.spacing_mm).astype(int)
            where.append(parts[tuple(voxel)])
        share[name] = {p: np.mean(np.equal(where, v)) for p, v in PARTS.items()}
    assert 0.5 <= share["ras"]["head"] <= 0.85  # 0.67 drawn in the right 35 % of the gland
    assert share["flipped"]["head"] <= 0.3 and share["flipped"]["tail"] >= 0.5


def test_exophytic_share_and_replay_of_kidney_tumours(hosts):
    case = hosts[("phantom", "kidney")]
    flags = [ts.sample_params(case, config="kidney", rng=s).lesions[0].exophytic for s in range(40)]
    assert 0.4 <= np.mean(flags) <= 0.8  # the preset's 0.6
    result = ts.synthesize(case, config="kidney", seed=flags.index(True))
    again = ts.render(case, params=ts.TumorParams.from_dict(result.params.to_dict()))
    assert np.array_equal(again.image, result.image) and np.array_equal(again.label, result.label)


def test_a_small_margin_bounds_every_change_outside_the_organ():
    """7 mm for spheres of 8 mm radius with a 3 mm edge halo, at 0.8 x 0.9 x 1.7 mm: every change
    outside the organ stays within it (centres placed only 2 mm deep reach up to 9.6 mm out)."""
    spacing = (0.8, 0.9, 1.7)
    image, organ = toy_volume(shape=(60, 56, 30), spacing=spacing)
    distance = ndimage.distance_transform_edt(organ == 0, sampling=spacing)
    config = {
        "preset": "kidney",
        "size_class": "small",
        "shape": {
            "axis_scale": [1.0, 1.0],
            "classes": {"small": {"radius_mm": 8.0, "deform_mm": [0.25, 0.5]}},
        },
        "location": {
            "exophytic_probability": 1.0,
            "exophytic_margin_mm": 7.0,
            "exophytic_depth_fraction": 1.0,
        },
        "intensity": {"edge_sigma_mm": [1.0, 1.0]},
    }
    for seed in range(8):
        result = ts.synthesize(image, organ, spacing, config=config, seed=seed)
        changed = (result.image != image) & (organ == 0)
        assert ((result.label == 2) & (organ == 0)).any()
        assert 0 < distance[changed].max() <= 7.0


def test_an_organ_too_small_for_the_preset_is_one_clear_line(hosts):
    case = hosts[("ct", "pancreas")]
    organ = np.zeros_like(case.organ)
    x, y, z = np.argwhere(case.organ)[len(np.argwhere(case.organ)) // 2]
    organ[x : x + 2, y : y + 2, z] = 1
    tiny = ts.as_case(case.image, organ, case.spacing_mm, source="tiny_pancreas.nii.gz")
    with pytest.raises(ts.PlacementError) as err:
        ts.synthesize(tiny, config="pancreas", seed=0)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("tiny_pancreas.nii.gz: the organ (0.108 ml) is too small for the ")
    assert "pancreas config, which needs at least 5 ml" in message


def test_exophytic_growth_needs_a_replacing_tumour_and_a_margin():
    with pytest.raises(ts.ConfigError, match=r"needs intensity\.replace"):
        ts.load_config({"preset": "kidney", "intensity": {"replace": False}})
    with pytest.raises(ts.ConfigError, match="exophytic_margin_mm > 0"):
        ts.load_config({"preset": "kidney", "location": {"exophytic_margin_mm": 0.0}})


def test_exophytic_kidney_tumours_grow_into_the_fat_not_the_organs_beside(hosts):
    """With ``exophytic_into_hu`` (the preset's -250 to 0 HU) the part outside the kidney lies in
    fat; without it, some tumours of the same seeds grow into the liver or bowel."""
    case = hosts[("phantom", "kidney")]
    shares = {}
    for into in ([-250.0, 0.0], None):
        config = {"preset": "kidney", "location": {"exophytic_probability": 1.0,
                                                   "exophytic_into_hu": into}}  # fmt: skip
        shares[str(into)] = []
        for seed in range(8):
            result = ts.synthesize(case, config=config, seed=seed)
            hu = case.image[(result.label == 2) & (np.asarray(case.organ) == 0)]
            shares[str(into)].append(np.mean((hu >= -250) & (hu <= 0)))
    assert min(shares["[-250.0, 0.0]"]) >= 0.7
    assert min(shares["None"]) < 0.5
