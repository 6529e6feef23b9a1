"""The robustness benchmark: attributes, shells, test cases, models, determinism, fit-stats, CLI."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from tumorsynth.cli import main

import tumorsynth as ts
from tumorsynth.bench import (
    ATTRIBUTES,
    BenchmarkError,
    derive_stats,
    fit_stats,
    load_bench_config,
    load_model,
    run_robustness,
    shell_plan,
)
from tumorsynth.bench.attributes import (
    elongation,
    equivalent_radius_mm,
    lesion_value,
    with_contrast,
    with_elongation,
    with_radius,
)
from tumorsynth.bench.cases import load_hosts, single_tumour_config, synthesize_case
from tumorsynth.bench.shells import FLOORS, grid_plan
from tumorsynth.io import write_volume
from tumorsynth.stages.shape import sample_shape

SMALL = {
    "phantom_seeds": [2000],
    "phantom_spacing_mm": 3.0,
    "grid_cases_per_cell": 0,
    "bootstrap_resamples": 200,
}

MODELS = '''
import numpy as np


def central_ball(image, spacing):
    """Organ: HU 60-200; tumour: a ball of 15 mm radius at the centre of the crop."""
    grid = np.indices(image.shape).T * np.asarray(spacing)
    centre = (np.asarray(image.shape) - 1) / 2 * np.asarray(spacing)
    labels = ((image > 60) & (image < 200)).astype(np.uint8)
    labels[(((grid - centre) ** 2).sum(-1) < 15.0**2).T] = 2
    return labels


def nothing(image, spacing):
    return np.zeros(image.shape, np.uint8)


def raises(image, spacing):
    raise RuntimeError("out of memory")


def wrong_shape(image, spacing):
    return np.zeros(image.shape[:2], np.uint8)


def nan(image, spacing):
    return np.full(image.shape, np.nan, np.float32)
'''


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A module of toy segmenters, as a ``file.py`` path."""
    path = tmp_path_factory.mktemp("models") / "toy_models.py"
    path.write_text(MODELS)
    return path


@pytest.fixture(scope="module")
def host():
    (h,) = load_hosts(None, margin_mm=20.0, phantom_seeds=(2000,), phantom_spacing_mm=3.0)
    return h


def test_setters_give_exact_values_and_keep_the_volume():
    cfg = single_tumour_config("liver")
    shape = sample_shape(np.random.default_rng(1), cfg.shape, "medium")
    assert equivalent_radius_mm(with_radius(shape, 7.5)) == pytest.approx(7.5, rel=1e-12)
    assert elongation(with_radius(shape, 7.5)) == pytest.approx(elongation(shape), rel=1e-9)
    for ratio in (1.6, 2.5):
        longer = with_elongation(shape, ratio)
        assert elongation(longer) == pytest.approx(ratio, rel=1e-6)
        assert equivalent_radius_mm(longer) == pytest.approx(equivalent_radius_mm(shape), 1e-12)
    # a deformed tumour is elongated even on a ball: a lower ratio gives its least elongation
    assert 1.0 < elongation(with_elongation(shape, 1.0)) <= elongation(shape)


def test_elongation_is_what_a_voxel_mask_measures():
    """The elongation computed from the params is the one fit-stats measures on the rendered mask."""
    from tumorsynth.bench.fit import measure_tumours

    image, organ = np.full((90, 90, 90), 100.0, np.float32), np.ones((90, 90, 90), np.uint8)
    cfg = single_tumour_config("syntumor")
    params = ts.sample_params(image, organ, 1.0, config=cfg, rng=3)
    (lesion,) = params.lesions
    lesion = dataclasses.replace(lesion, center_mm=(45.0, 45.0, 45.0))
    lesion = dataclasses.replace(lesion, shape=with_elongation(lesion.shape, 1.8))
    out = ts.render(image, organ, 1.0, dataclasses.replace(params, lesions=(lesion,)))
    (found,) = measure_tumours(out.label, (1.0, 1.0, 1.0), out.image)
    assert found["shape"] == pytest.approx(1.8, abs=0.02)
    assert found["size"] == pytest.approx(equivalent_radius_mm(lesion.shape), abs=0.1)
    assert found["intensity"] == pytest.approx(lesion_value("intensity", lesion), abs=3.0)


def test_derived_stats_match_the_config_laws():
    stats = derive_stats("liver")
    assert stats["texture"].mu == pytest.approx(5.5, abs=0.01)  # grain U(4, 7)
    assert stats["texture"].sigma == pytest.approx(3 / 12**0.5, abs=0.01)
    assert stats["intensity"].mu == pytest.approx(-105.0 * 0.525, abs=0.3)  # delta x mean
    assert stats["size"].mu == pytest.approx(10.5, abs=0.1)
    assert stats["size"].sigma == pytest.approx(8.4, abs=0.1)
    one = derive_stats({"preset": "liver", "size_class": "medium"})["size"]
    assert 15.5 < one.mu < 16.0 and one.sigma < 1.5  # (abc)^(1/3) of U(12, 20) semi-axes
    cfg = load_bench_config({"stats": {"size": {"mu": 12.0, "sigma": 3.0}}})
    assert cfg.stats["size"].mu == 12.0


def test_shell_values_lie_in_their_bands_half_on_each_side():
    stats = derive_stats("liver")
    plan = shell_plan(stats, 6, seed=0)
    assert len(plan) == len(ATTRIBUTES) * 3 * 6
    for spec in plan:
        (d,) = spec.draws
        s = stats[d.attribute]
        lo, hi = sorted(s.mu + d.side * s.sigma * np.array([d.shell - 1, d.shell]))
        assert lo <= d.target <= hi
        floor = FLOORS[d.attribute]
        assert d.value == (d.target if floor is None else max(d.target, floor))
        assert d.clipped == (d.value != d.target)
    for attribute in ATTRIBUTES:
        sides = [s.draws[0].side for s in plan if s.draws[0].attribute == attribute]
        assert sides.count(-1) == sides.count(1)
    # size shell 3 below mu is a negative radius: clipped to the floor, and said so
    low = [s.draws[0] for s in plan if s.draws[0].attribute == "size" and s.draws[0].shell == 3]
    assert all(d.value == FLOORS["size"] and d.clipped for d in low if d.side == -1)
    assert len(grid_plan(stats, 1, seed=0)) == 36


def test_cases_move_one_attribute_and_keep_the_others(host):
    """Each test tumour is the plain config's draw from the same seed with one attribute set:
    the other attributes are exactly those of the in-distribution draw."""
    single = single_tumour_config("liver")
    stats = derive_stats("liver")
    spacing = max(host.case.spacing_mm)
    for spec in shell_plan(stats, 2, seed=1):
        case = synthesize_case(host, single, spec, seed=1)
        (d,) = spec.draws
        (got,) = case.params.lesions
        (plain,) = ts.sample_params(host.case, config=single, rng=case.seed).lesions
        value = case.values[d.attribute]
        measured = lesion_value(d.attribute, got, host.depth_mm, host.case.spacing_mm)
        assert value == pytest.approx(measured)
        if d.attribute == "location":
            assert abs(value - d.value) <= 0.5 * spacing + 1e-6 or d.clipped
        elif d.attribute == "shape":
            assert value == pytest.approx(d.value, abs=1e-6) or value > d.value  # least elongation
        else:
            assert value == pytest.approx(d.value, rel=1e-9)
        assert (case.label == 2).any()
        kept = {"texture", "intensity"} - {d.attribute}
        if d.attribute in ("texture", "intensity", "location"):
            kept.add("shape_params")
        if d.attribute in ("texture", "intensity"):
            kept.add("center")
        for name in kept:
            if name == "texture":
                assert got.texture == plain.texture
            elif name == "intensity":
                assert got.intensity == plain.intensity
            elif name == "shape_params":
                assert got.shape == plain.shape
            else:
                assert got.center_mm == plain.center_mm


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_the_three_model_kinds_load_and_segment(tmp_path, models):
    from tumorsynth.train import load_train_config
    from tumorsynth.train.checkpoint import save_checkpoint
    from tumorsynth.train.networks import build_network, network_spec

    image = np.full((20, 18, 16), 120.0, np.float32)
    image[5:9, 5:9, 5:9] = 20.0

    class Threshold(torch.nn.Module):
        def forward(self, x):
            return torch.cat([torch.zeros_like(x), 40.0 * (x - 0.5), 40.0 * (0.3 - x)], dim=1)

    scripted = tmp_path / "threshold.ts"
    torch.jit.script(Threshold()).save(str(scripted))
    cfg = load_train_config(None, ["patch_size=[16,16,16]", "channels=[4,8,16]"])
    torch.manual_seed(0)
    meta = {"network": network_spec(cfg), "window_hu": [-21.0, 189.0], "spacing_mm": [3.0] * 3}
    ckpt = save_checkpoint(
        tmp_path / "run" / "best.pt", {**meta, "model": build_network(cfg).state_dict()}
    )
    kinds = {
        "torchscript": load_model(scripted, device="cpu"),
        "checkpoint": load_model(ckpt, device="cpu"),
        "callable": load_model(f"toy={models}:central_ball"),
    }
    for kind, model in kinds.items():
        assert model.kind == kind
        labels = np.asarray(model.predict(image, (3.0, 3.0, 3.0)))
        assert labels.shape == image.shape
    assert kinds["callable"].name == "toy" and kinds["checkpoint"].name == "run/best"
    ts_labels = np.asarray(kinds["torchscript"].predict(image, (3.0, 3.0, 3.0)))
    assert (ts_labels[5:9, 5:9, 5:9] == 2).all() and (ts_labels[0] == 1).all()


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("raises", "raised RuntimeError: out of memory"),
        ("wrong_shape", r"returned an array of shape \(\d+, \d+\)"),
        ("nan", "returned NaN"),
    ],
)
def test_bad_models_are_named_with_the_case_and_nothing_is_written(
    tmp_path, models, function, message
):
    out = tmp_path / "out"
    with pytest.raises(BenchmarkError, match=message) as err:
        run_robustness(
            {"good": f"{models}:nothing", "bad": f"{models}:{function}"}, out,
            config=SMALL, cases_per_shell=1, progress=False,
        )  # fmt: skip
    text = str(err.value)
    assert "model 'bad'" in text and "host phantom2000" in text
    assert "shape shell μ-σ" in text and "seed" in text
    assert not out.exists()


def test_two_runs_give_the_same_tables(tmp_path, host):
    def oracle(image, spacing):
        """Knows the healthy host: tumour where the image differs from it by more than 10 HU."""
        labels = np.asarray(host.case.organ).copy()
        labels[(np.abs(image - host.case.image) > 10) & (labels == 1)] = 2
        return labels

    runs = []
    for name in ("a", "b"):
        report = run_robustness(
            {"oracle": oracle}, tmp_path / name, hosts=[host], config=SMALL, cases_per_shell=2,
            seed=4, progress=False,
        )  # fmt: skip
        runs.append(report.result)
    for file in ("cases.csv", "robustness.md", "robustness.json"):
        assert (tmp_path / "a" / file).read_text() == (tmp_path / "b" / file).read_text()
    rows = runs[0]["cases"]
    assert len(rows) == len(ATTRIBUTES) * 3 * 2
    assert {r["attribute"] for r in rows} == set(ATTRIBUTES)
    size = runs[0]["summary"]["oracle"]["size"]["signed"]
    assert size["+1"]["dice"]["mean"] > 0.6  # in distribution, the oracle is good...
    assert size["-3"]["dice"]["mean"] < size["+1"]["dice"]["mean"] - 0.2  # ...not at 2 mm
    entry = size["+1"]["dice"]
    assert entry["lo"] <= entry["mean"] <= entry["hi"] and entry["n"] == 1


def test_cli_end_to_end(tmp_path, models, capsys):
    config = tmp_path / "bench.json"
    config.write_text(json.dumps({**SMALL, "grid_cases_per_cell": 1}))
    out = tmp_path / "report"
    main([
        "bench", "robustness", "--model", f"{models}:central_ball", "--model",
        f"empty={models}:nothing", "--out", str(out), "--cases-per-shell", "1",
        "--config", str(config), "--seed", "2", "--quiet",
    ])  # fmt: skip
    printed = capsys.readouterr().out
    assert "| central_ball |" in printed and "| empty |" in printed
    names = {p.name for p in out.iterdir()}
    assert names == {
        "cases.csv", "grid.csv", "robustness.json", "robustness.md",
        "heatmap_central_ball.png", "heatmap_empty.png", "grid_central_ball.png",
        "grid_empty.png",
    }  # fmt: skip
    md = (out / "robustness.md").read_text()
    assert "| model | shape μ±σ | shape μ±2σ | shape μ±3σ | size μ±σ |" in md
    doc = json.loads((out / "robustness.json").read_text())
    assert len(doc["grid_cases"]) == 36 * 2
    empty = doc["summary"]["empty"]["size"]["shells"]["1"]
    assert empty["dice"]["mean"] == 0.0 and empty["sensitivity"]["mean"] == 0.0
    header = (out / "cases.csv").read_text().splitlines()[0]
    assert header.startswith("model,attribute,shell,side,case,host,seed,value")


def test_fit_stats_recovers_known_mu_and_sigma(tmp_path, phantom_2mm, capsys):
    """Tumours with radii from N(10, 2.5) mm and contrasts from N(-50, 10) HU, five per volume and
    kept apart, are written as an nnU-Net dataset; fit-stats finds their mean and spread."""
    from tumorsynth.stages.location import place

    case, cfg = phantom_2mm, single_tumour_config("liver")
    rng = np.random.default_rng(0)
    radii, contrasts = [], []
    for folder in ("imagesTr", "labelsTr"):
        (tmp_path / "ds" / folder).mkdir(parents=True)
    for k in range(6):
        lesions, placed = [], []
        for t in range(5):
            params = ts.sample_params(case, config=cfg, rng=100 * k + t)
            (lesion,) = params.lesions
            radius, contrast = rng.normal(10.0, 2.5), rng.normal(-50.0, 10.0)
            shape = with_radius(lesion.shape, radius)
            apart = [(c, r + 8.0) for c, r in placed]  # 8 mm between tumours: no merged labels
            location = dataclasses.replace(cfg.location, avoid_overlap=True)
            centre = place(rng, case, location, shape, apart, params.organ_hu)
            if centre is None:
                continue
            placed.append((np.asarray(centre), radius))
            lesion = dataclasses.replace(lesion, shape=shape, center_mm=centre)
            lesions.append(with_contrast(lesion, contrast))
            radii.append(radius)
            contrasts.append(contrast)
        out = ts.render(case, params=dataclasses.replace(params, lesions=tuple(lesions)))
        write_volume(tmp_path / "ds" / "imagesTr" / f"c{k}_0000.nii.gz", out.image, case.spacing_mm)
        write_volume(tmp_path / "ds" / "labelsTr" / f"c{k}.nii.gz", out.label, case.spacing_mm)
    stats_file = tmp_path / "stats.json"
    main(["fit-stats", str(tmp_path / "ds"), "--out", str(stats_file), "--quiet"])
    assert "not fitted" in capsys.readouterr().out  # texture
    fitted = load_bench_config(stats_file).stats
    assert fitted["size"].n == len(radii)
    assert fitted["size"].mu == pytest.approx(np.mean(radii), abs=0.4)
    assert fitted["size"].sigma == pytest.approx(np.std(radii, ddof=1), rel=0.15)
    assert fitted["intensity"].mu == pytest.approx(np.mean(contrasts), abs=4.0)
    assert fitted["intensity"].sigma == pytest.approx(np.std(contrasts, ddof=1), rel=0.5)
    assert "texture" not in fitted and fitted["location"].mu > 0
    assert (tmp_path / "stats_tumours.csv").read_text().count("\n") == len(radii) + 1
    direct = fit_stats([tmp_path / "ds" / "labelsTr"], tmp_path / "no_ct.json", progress=False)
    assert "intensity" not in direct["stats"] and direct["stats"]["size"]["n"] == len(radii)


def test_largest_organ_post_processing_removes_false_positives_outside_the_organ(tmp_path, host):
    def oracle_with_a_stray_blob(image, spacing):
        labels = np.asarray(host.case.organ).copy()
        labels[(np.abs(image - host.case.image) > 10) & (labels == 1)] = 2
        labels[:3, :3, :3] = 2  # a false positive in a corner, away from the organ
        return labels

    fps = {}
    for keep in (False, True):
        config = {**SMALL, "attributes": ["size"], "largest_organ": keep}
        report = run_robustness(
            {"m": oracle_with_a_stray_blob}, tmp_path / str(keep), hosts=[host], config=config,
            cases_per_shell=1, seed=4, progress=False,
        )  # fmt: skip
        fps[keep] = [row["fp"] for row in report.result["cases"]]
    assert min(fps[False]) >= 1 and max(fps[True]) == 0


def test_example_bench_config_is_valid():
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "configs" / "bench_phantom.yaml"
    cfg = load_bench_config(path)
    assert cfg.largest_organ and cfg.phantom_spacing_mm == 2.0 and cfg.cases_per_shell == 4
