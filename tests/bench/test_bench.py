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
    load_segmenter,
    run_robustness,
    shell_plan,
)
from tumorsynth.bench.attributes import (
    elongation,
    lesion_value,
    shape_radius_mm,
    with_contrast,
    with_elongation,
    with_radius,
)
from tumorsynth.bench.cases import load_bench_hosts, single_tumour_config, synthesize_case
from tumorsynth.bench.shells import FLOORS, grid_plan
from tumorsynth.engine.stages.shape import sample_shape
from tumorsynth.io.volume import write_volume
from tumorsynth.segment.postprocess import DEFAULT_POSTPROCESS

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
    (h,) = load_bench_hosts(None, margin_mm=20.0, phantom_seeds=(2000,), phantom_spacing_mm=3.0)
    return h


def test_setters_give_exact_values_and_keep_the_volume():
    cfg = single_tumour_config("liver")
    shape = sample_shape(np.random.default_rng(1), cfg.shape, "medium")
    assert shape_radius_mm(with_radius(shape, 7.5)) == pytest.approx(7.5, rel=1e-12)
    assert elongation(with_radius(shape, 7.5)) == pytest.approx(elongation(shape), rel=1e-9)
    for ratio in (1.6, 2.5):
        longer = with_elongation(shape, ratio)
        assert elongation(longer) == pytest.approx(ratio, rel=1e-6)
        assert shape_radius_mm(longer) == pytest.approx(shape_radius_mm(shape), 1e-12)
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
    assert found["size"] == pytest.approx(shape_radius_mm(lesion.shape), abs=0.1)
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
    from tumorsynth.segment.checkpoint import save_checkpoint
    from tumorsynth.segment.networks import build_network, network_spec
    from tumorsynth.train import load_train_config

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
        "torchscript": load_segmenter(scripted, device="cpu"),
        "checkpoint": load_segmenter(ckpt, device="cpu"),
        "callable": load_segmenter(f"toy={models}:central_ball"),
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
    assert runs[0]["stats"]["location"]["source"] == "preset"  # a phantom host: not measured
    assert {r["attribute"] for r in rows} == set(ATTRIBUTES)
    size = runs[0]["summary"]["oracle"]["size"]["signed"]
    assert size["+1"]["dice"]["mean"] > 0.6  # in distribution, the oracle is good...
    assert size["-3"]["dice"]["mean"] < size["+1"]["dice"]["mean"] - 0.2  # ...not at 2 mm
    entry = size["+1"]["dice"]
    assert entry["lo"] <= entry["mean"] <= entry["hi"] and entry["n"] == 1


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_torchscript_in_hu_and_by_sliding_windows(tmp_path):
    """``torchscript: {input: hu}`` feeds HU; ``patch_size`` runs the model on patches only, with
    the same labels as a whole-volume call for a voxel-wise model."""
    from tumorsynth.bench.models import run_model

    class Cut(torch.nn.Module):
        """Organ above ``cut``, tumour below (in what it is fed); refuses wider inputs than
        ``max_side`` voxels."""

        def __init__(self, cut: float, max_side: int):
            super().__init__()
            self.cut, self.max_side = cut, max_side

        def forward(self, x):
            if x.shape[2] > self.max_side:
                raise RuntimeError("input wider than a patch")
            organ = 20.0 * (x - self.cut)
            return torch.cat([torch.zeros_like(x), organ, -organ], dim=1)

    image = np.full((20, 18, 16), 120.0, np.float32)
    image[5:12, 4:9, 6:10] = 20.0
    expected = np.where(image > 70.0, 1, 2)

    def segment(cut: float, max_side: int, torchscript: dict) -> np.ndarray:
        path = tmp_path / f"cut_{cut:g}_{max_side}.ts"
        torch.jit.script(Cut(cut, max_side)).save(str(path))
        cfg = load_bench_config({"torchscript": torchscript}).torchscript
        model = load_segmenter(path, device="cpu", torchscript=cfg)
        return run_model(model, image, (3.0, 3.0, 3.0), "a test CT")

    hu = {"input": "hu"}
    assert (segment(70.0, 99, hu) == expected).all()
    assert (segment(70.0, 99, {}) == 2).all()  # windowed to [0, 1] by default: all below 70
    assert (segment(70.0, 8, {**hu, "patch_size": [8, 8, 8]}) == expected).all()
    with pytest.raises(BenchmarkError, match="wider than a patch"):
        segment(70.0, 8, hu)
    windowed_cut = (70.0 + 21.0) / 210.0  # 70 HU in the default window, -21 to 189 HU
    assert (segment(windowed_cut, 8, {"patch_size": [8, 8, 8]}) == expected).all()


def _write_host_files(root, spacing_mm: float = 3.0):
    """A healthy phantom (seed 2000) written as a CT and a 0/1 liver mask, as a user's CT is."""
    from tumorsynth.phantom import make_phantom

    case = make_phantom(seed=2000, spacing_mm=spacing_mm)
    (root / "ct").mkdir(parents=True)
    (root / "seg").mkdir()
    write_volume(root / "seg" / "host.nii.gz", np.asarray(case.organ, np.uint8), case.spacing_mm)
    return write_volume(root / "ct" / "host_0000.nii.gz", np.asarray(case.image), case.spacing_mm)


def test_ct_hosts_from_the_cli_get_the_location_measured_on_them(tmp_path, models, capsys):
    """--hosts with --host-masks, and a dataset.json: CT hosts, on which the location's μ and σ
    are measured (not the phantoms' preset values) and said so, unless the config sets them."""
    ct = _write_host_files(tmp_path)
    dataset = tmp_path / "dataset.json"
    dataset.write_text(json.dumps({
        "labels": {"0": "background", "1": "liver"},
        "training": [{"image": "ct/host_0000.nii.gz", "label": "seg/host.nii.gz"}],
    }))  # fmt: skip
    config = tmp_path / "bench.json"
    config.write_text(json.dumps({**SMALL, "attributes": ["location"], "location_draws": 20}))
    docs = {}
    for name, hosts in {
        "masks": ["--hosts", str(tmp_path / "ct"), "--host-masks", str(tmp_path / "seg")],
        "dataset": ["--hosts", str(dataset)],
    }.items():
        main([
            "bench", "robustness", "--model", f"{models}:nothing", *hosts, "--config",
            str(config), "--out", str(tmp_path / name), "--cases-per-shell", "1", "--quiet",
        ])  # fmt: skip
        assert "measured on the 1 host(s)" in capsys.readouterr().err
        docs[name] = json.loads((tmp_path / name / "robustness.json").read_text())
        (host,) = docs[name]["settings"]["hosts"]
        assert host["name"] == "host" and host["source"] == str(ct)
        assert (
            "measured: the config's tumours placed in this run's hosts"
            in (tmp_path / name / "robustness.md").read_text()
        )
    location = docs["masks"]["stats"]["location"]
    assert location["source"] == "measured" and location["n"] > 10
    assert location["mu"] != ts.bench.stats.LOCATION_STATS["liver"].mu
    assert docs["dataset"]["stats"] == docs["masks"]["stats"]  # the same host, the same draws
    # the values the cases record lie in the first shell of the measured μ and σ
    first = [r for r in docs["masks"]["cases"] if r["shell"] == 1]
    for row in first:
        lo, hi = sorted(location["mu"] + row["side"] * np.array([0.0, location["sigma"]]))
        assert lo - 1.5 <= row["value"] <= hi + 1.5  # within half a 3 mm voxel
    given = {"location": {"mu": 9.0, "sigma": 3.0}}
    config.write_text(json.dumps({**SMALL, "attributes": ["location"], "stats": given}))
    main([
        "bench", "robustness", "--model", f"{models}:nothing", "--hosts", str(dataset),
        "--config", str(config), "--out", str(tmp_path / "given"), "--cases-per-shell", "1",
        "--quiet",
    ])  # fmt: skip
    doc = json.loads((tmp_path / "given" / "robustness.json").read_text())
    assert doc["stats"]["location"] == {**given["location"], "n": None, "unit": "",
                                        "source": "config"}  # fmt: skip


def test_stats_file_named_in_a_config_is_read_beside_it(tmp_path, monkeypatch):
    folder = tmp_path / "configs"
    folder.mkdir()
    stats = {"size": {"mu": 12.5, "sigma": 4.0, "n": 30, "unit": "mm", "source": "fitted"}}
    (folder / "fitted.json").write_text(json.dumps({"stats": stats}))
    (folder / "bench.yaml").write_text("stats: fitted.json\ncases_per_shell: 3\n")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # not the config's folder
    cfg = load_bench_config(folder / "bench.yaml")
    assert cfg.stats["size"] == ts.bench.AttributeStats(12.5, 4.0, 30, "mm", "fitted")
    assert cfg.cases_per_shell == 3
    (folder / "bench.yaml").write_text("stats: missing.json\n")
    with pytest.raises(ts.errors.ConfigError, match=r"missing\.json"):
        load_bench_config(folder / "bench.yaml")


def test_fit_stats_refuses_a_ct_on_another_grid(tmp_path):
    """Same array shape, but another origin or voxel size: not the CT of that label map."""
    from tumorsynth.errors import InputError

    label = np.zeros((12, 12, 8), np.uint8)
    label[2:10, 2:10, 1:7] = 1
    label[4:7, 4:7, 3:5] = 2
    image = np.where(label == 2, 40.0, 100.0).astype(np.float32)
    spacing, origin = (2.0, 2.0, 3.0), (-11.0, -11.0, -10.5)
    write_volume(tmp_path / "c.nii.gz", label, spacing, origin)
    for name, (sp, org) in {
        "same": (spacing, origin),
        "moved": (spacing, (-1.0, -11.0, -10.5)),
        "finer": ((1.0, 1.0, 3.0), origin),
    }.items():
        (tmp_path / name).mkdir()
        write_volume(tmp_path / name / "c_0000.nii.gz", image, sp, org)
        args = ([tmp_path / "c.nii.gz"], tmp_path / f"{name}.json")
        if name == "same":
            doc = fit_stats(*args, images=[tmp_path / name], progress=False)
            assert doc["stats"] == {} and doc["fitted_from"]["n_tumours"] == 1  # one: no spread
        else:
            with pytest.raises(InputError, match="not on one grid"):
                fit_stats(*args, images=[tmp_path / name], progress=False)


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
    from tumorsynth.engine.stages.location import place

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
        config = {**SMALL, "attributes": ["size"], "largest_organ": keep,
                  "min_organ_contact": None, "min_tumour_mm3": 0.0}  # fmt: skip
        report = run_robustness(
            {"m": oracle_with_a_stray_blob}, tmp_path / str(keep), hosts=[host], config=config,
            cases_per_shell=1, seed=4, progress=False,
        )  # fmt: skip
        fps[keep] = [row["fp"] for row in report.result["cases"]]
    assert min(fps[False]) >= 1 and max(fps[True]) == 0


def test_predicts_post_processing_removes_specks_and_tumours_off_the_organ(tmp_path, host):
    def oracle_with_specks(image, spacing):
        labels = np.asarray(host.case.organ).copy()
        labels[(np.abs(image - host.case.image) > 10) & (labels == 1)] = 2
        labels[:3, :3, :3] = 2  # a false positive off the organ (27 voxels of 27 mm³: 729 mm³)
        where = np.argwhere(labels == 1)
        x, y, z = where[len(where) // 3]
        labels[x, y, z] = 2  # a one-voxel speck inside it (27 mm³)
        return labels

    fps = {}
    for rules in ({"min_organ_contact": None, "min_tumour_mm3": 0.0},
                  {"min_organ_contact": 0.5, "min_tumour_mm3": 0.0},
                  {"min_organ_contact": 0.5, "min_tumour_mm3": 30.0}):  # fmt: skip
        config = {**SMALL, "attributes": ["size"], **rules}
        report = run_robustness(
            {"m": oracle_with_specks}, tmp_path / str(len(fps)), hosts=[host], config=config,
            cases_per_shell=1, seed=4, progress=False,
        )  # fmt: skip
        fps[len(fps)] = [row["fp"] for row in report.result["cases"]]
        assert report.result["settings"]["min_organ_contact"] == rules["min_organ_contact"]
    assert min(fps[0]) >= 2, fps  # the blob and the speck (unless a test tumour covers it)
    assert [a - 1 for a in fps[0]] == fps[1], fps  # the blob goes
    assert max(fps[2]) == 0, fps  # and the speck
    assert load_bench_config(None).postprocess == DEFAULT_POSTPROCESS  # predict's, by default


def test_example_bench_config_is_valid():
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "configs" / "bench_phantom.yaml"
    cfg = load_bench_config(path)
    assert cfg.largest_organ and cfg.phantom_spacing_mm == 2.0 and cfg.cases_per_shell == 4
