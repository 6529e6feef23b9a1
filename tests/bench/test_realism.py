"""``tumorsynth realism``: real tumours made with known params are measured as drawn, calibration
recovers the params and shrinks every distance; the shared real CT; errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from toy import data_file
from tumorsynth.cli import main

import tumorsynth as ts
from tumorsynth.bench.cases import make_host
from tumorsynth.bench.realism import distances, host_sources, run_realism
from tumorsynth.bench.realism_measure import ATTRIBUTES, drawn_values
from tumorsynth.io.volume import read_volume, write_volume

#: The "real" tumours: medium, elongated, dark, deep, finely textured, 2-4 per scan.
TRUTH = {
    "preset": "liver",
    "size_class": {"medium": 1.0},
    "shape": {
        "classes": {"medium": {"radius_mm": 11.0, "count": [2, 4]}},
        "axis_scale": [0.55, 1.45],
    },
    "intensity": {"delta_hu": {"hypo": [-145.0, -100.0]}},
    "location": {"depth_fraction": 1.5},
    "texture": {"grain_sigma_mm": [1.0, 2.0]},
}
SCANS_PER_PHANTOM = 5


@pytest.fixture(scope="module")
def known(tmp_path_factory, phantom_2mm):
    """Phantoms 0 and 1 at 2 mm with TRUTH's tumours, as an nnU-Net dataset; and the values the
    tumours were drawn with."""
    from tumorsynth.phantom import make_phantom

    root = tmp_path_factory.mktemp("known") / "real"
    for folder in ("imagesTr", "labelsTr"):
        (root / folder).mkdir(parents=True)
    drawn = {"counts": []}
    for p, case in enumerate((phantom_2mm, make_phantom(seed=1, spacing_mm=2.0))):
        host = make_host(f"p{p}", case, None)
        for k in range(SCANS_PER_PHANTOM):
            out = ts.synthesize(case, config=TRUTH, seed=100 * p + k)
            write_volume(root / "imagesTr" / f"p{p}_{k}_0000.nii.gz", out.image, case.spacing_mm)
            write_volume(root / "labelsTr" / f"p{p}_{k}.nii.gz", out.label, case.spacing_mm)
            drawn["counts"].append(len(out.params.lesions))
            for lesion in out.params.lesions:
                for name, value in drawn_values(lesion, host).items():
                    drawn.setdefault(name, []).append(value)
    return root, {k: np.asarray(v, float) for k, v in drawn.items()}


@pytest.fixture(scope="module")
def calibrated(known, tmp_path_factory):
    """``tumorsynth realism --calibrate`` of the liver preset on phantoms 2000-2001 against them."""
    out = tmp_path_factory.mktemp("calibrated") / "report"
    args = ["realism", str(known[0]), "--out", str(out), "--calibrate", "--scans-per-host",
            str(SCANS_PER_PHANTOM), "--quiet"]  # fmt: skip
    main(args)
    return out, json.loads((out / "realism.json").read_text())


@pytest.mark.slow
def test_realism_measures_the_tumours_as_they_were_drawn(known, calibrated):
    _, drawn = known
    real = calibrated[1]["real"]
    assert real["count"]["n"] == 2 * SCANS_PER_PHANTOM
    assert real["count"]["mean"] == pytest.approx(drawn["counts"].mean(), abs=0.3)  # few merge
    assert real["radius_mm"]["median"] == pytest.approx(np.median(drawn["radius_mm"]), rel=0.05)
    assert real["contrast_hu"]["median"] == pytest.approx(np.median(drawn["contrast_hu"]), abs=5)
    assert real["depth_mm"]["median"] == pytest.approx(np.median(drawn["depth_mm"]), abs=2.0)
    assert real["elongation"]["median"] == pytest.approx(np.median(drawn["elongation"]), rel=0.1)


def _scan_plan(cfg) -> tuple[tuple[int, int], dict[str, float]]:
    """The range of tumours per scan, and the mean number of each size class per scan."""
    if "mix" in cfg.size_class:  # every class at once
        counts = cfg.shape.mix_counts
        total = (sum(lo for lo, _ in counts.values()), sum(hi for _, hi in counts.values()))
        return total, {name: sum(c) / 2 for name, c in counts.items()}
    counts = {name: cfg.shape.classes[name].count for name in cfg.size_class}
    (total,) = set(counts.values())  # one class per scan, all with the same range
    p = sum(cfg.size_class.values())
    return total, {name: cfg.size_class[name] / p * sum(c) / 2 for name, c in counts.items()}


@pytest.mark.slow
def test_calibration_recovers_the_known_config(calibrated):
    out, result = calibrated
    cfg = ts.load_config(out / "calibrated_config.json")
    assert cfg.to_dict() == result["calibrated_config"]
    total, per_class = _scan_plan(cfg)
    assert total == (2, 4)
    lo, hi = cfg.shape.axis_scale
    radii = {name: cfg.shape.classes[name].radius_mm * (lo + hi) / 2 for name in per_class}
    mean_radius = sum(per_class[n] * radii[n] for n in radii) / sum(per_class.values())
    assert mean_radius == pytest.approx(11.0, rel=0.12)
    # 26 tumours of 8-13 mm at 2 mm voxels tell the spread to about 0.1 (the preset's: 0.25)
    assert (hi - lo) / 2 == pytest.approx(0.45, abs=0.15)
    assert set(cfg.intensity.density) == {"hypo"}
    assert np.mean(cfg.intensity.delta_hu["hypo"]) == pytest.approx(-122.5, rel=0.15)
    assert cfg.location.depth_fraction == pytest.approx(1.5, abs=0.35)
    assert max(cfg.texture.grain_sigma_mm) <= 3.5  # the truth's finer grain, not the preset's 4-7
    assert result["calibration"]["effects"]["on"] == {"capsule": True}  # the truth has capsules


@pytest.mark.slow
def test_calibration_shrinks_every_distance(calibrated):
    compared = calibrated[1]["compared"]
    for attribute in ATTRIBUTES:
        before, after = compared["synthetic"][attribute], compared["calibrated"][attribute]
        assert after["wasserstein"] < before["wasserstein"], attribute
        assert after["ks"] < before["ks"], attribute


@pytest.mark.slow
def test_realism_writes_its_report(calibrated):
    import imageio.v3 as iio

    out, result = calibrated
    assert result["files"] == {"json": "realism.json", "markdown": "realism.md",
                               "csv": "tumours.csv", "figure": "realism.png",
                               "config": "calibrated_config.json"}  # fmt: skip
    md = (out / "realism.md").read_text()
    header = "| attribute | unit | real | synthetic | KS synthetic | W1 synthetic | calibrated |"
    assert header in md
    assert md.count("\n| ") == len(ATTRIBUTES) + 1  # the header and a row per attribute
    rows = (out / "tumours.csv").read_text().splitlines()
    n = result["real"]["radius_mm"]["n"]
    n += sum(c["radius_mm"]["n"] for c in result["compared"].values())
    assert rows[0].startswith("side,scan,component,n_voxels,radius_mm") and len(rows) == n + 1
    height, width, _ = iio.imread(out / "realism.png").shape
    assert width > 1000 and height > 500
    steps = result["calibration"]
    assert {r["round"] for r in steps["rounds"].values()} <= {1, 2}
    assert steps["texture"]["candidates"] == 16


def test_realism_on_the_shared_real_ct(tmp_path):
    """The liver preset on TotalSegmentator's CT (3 mm) against the reference code's tumours
    (syntumor) rendered into the same CT as the "real" side: their contrast is measured as drawn,
    and every attribute is compared."""
    ct_path = data_file("totalsegmentator_example/example_ct_sm.nii.gz")
    mask_path = data_file("totalsegmentator_example/example_ct_sm_liver_mask.nii.gz")
    ct, mask = read_volume(ct_path), read_volume(mask_path)
    case = ts.as_case(ct.array.astype(np.float32), mask.array.astype(np.uint8), ct.spacing_mm)
    contrasts = []
    (tmp_path / "real").mkdir()
    (tmp_path / "ct").mkdir()
    for k in range(3):
        out = ts.synthesize(case, config="syntumor", seed=k)
        write_volume(tmp_path / "real" / f"s{k}.nii.gz", out.label, ct.spacing_mm)
        write_volume(tmp_path / "ct" / f"s{k}.nii.gz", out.image, ct.spacing_mm)
        contrasts += [le.intensity.delta_hu * le.texture.mean for le in out.params.lesions]
    report = run_realism(
        [tmp_path / "real"], tmp_path / "report", images=[tmp_path / "ct"],
        hosts=host_sources([str(ct_path)], [str(mask_path)], None),
        scans_per_host=3, progress=False,
    )  # fmt: skip
    real, synthetic = report.result["real"], report.result["compared"]["synthetic"]
    assert real["contrast_hu"]["median"] == pytest.approx(np.median(contrasts), abs=10.0)
    for attribute in ATTRIBUTES:
        assert real[attribute]["n"] > 0 and synthetic[attribute]["ks"] is not None, attribute
    assert any("only" in note for note in report.result["notes"])  # few tumours: said so


def test_distances_are_scipys():
    a, b = np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0, 4.0])
    d = distances(a, b)
    assert d["wasserstein"] == pytest.approx(1.0) and d["ks"] == pytest.approx(0.25)
    assert d["relative"] == pytest.approx(1.0 / np.std(a, ddof=1))
    assert distances(a, a)["wasserstein"] == 0.0 and distances(a, b[:0])["ks"] is None


def test_realism_refuses_to_overwrite_an_input(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    config = out / "calibrated_config.json"
    config.write_text('{"preset": "syntumor"}\n')
    with pytest.raises(SystemExit) as exit_info:
        main(["realism", str(tmp_path), "--out", str(out), "--config", str(config), "--calibrate"])
    assert exit_info.value.code == 1
    assert "an input of this run" in capsys.readouterr().err
    assert config.read_text() == '{"preset": "syntumor"}\n'


def test_realism_says_when_the_real_labels_hold_no_tumour(tmp_path, capsys):
    label = np.zeros((20, 20, 20), np.uint8)
    label[5:15, 5:15, 5:15] = 1  # an organ, no tumour
    (tmp_path / "labels").mkdir()
    write_volume(tmp_path / "labels" / "a.nii.gz", label, (2.0, 2.0, 2.0))
    with pytest.raises(SystemExit):
        main(["realism", str(tmp_path / "labels"), "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert err.startswith("error: realism: no tumour (label 2") and "in 1 label maps" in err
    assert not (tmp_path / "out").exists()
