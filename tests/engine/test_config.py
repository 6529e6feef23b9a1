"""Configs: presets, dicts, files and objects; overrides; clear errors."""

from __future__ import annotations

import json

import pytest

import tumorsynth as ts


def test_presets_differ_as_documented():
    liver, syn = ts.load_config("liver"), ts.load_config("syntumor")
    assert liver.name == "liver" and syn.name == "syntumor"
    assert liver.location.avoid_vessels and not syn.location.avoid_vessels
    assert liver.mass_effect.probability == 1.0 and syn.mass_effect.probability == 0.0
    assert liver.capsule.probability == 1.0 and syn.capsule.probability == 0.0
    assert syn.location.axial_band == (0.3, 0.7)
    assert syn.intensity.delta_hu["hypo"] == (-145.0, -65.0)
    assert ts.load_config() == liver


def test_dict_override_on_preset():
    cfg = ts.load_config({"preset": "syntumor", "size_class": "mix"})
    assert cfg.size_class == {"mix": 1.0}
    assert not cfg.location.avoid_vessels  # the rest of the preset stays
    cfg = ts.load_config({"preset": "liver", "intensity": {"edge_sigma_mm": [1.5, 2.5]}})
    assert cfg.intensity.edge_sigma_mm == (1.5, 2.5)
    assert cfg.intensity.scale_with_organ_hu == 100.0
    cfg = ts.load_config({"size_class": {"tiny": 0.5, "large": 0.5}})
    assert cfg.size_class == {"tiny": 0.5, "large": 0.5}


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_config_file(tmp_path, suffix):
    path = tmp_path / f"mine{suffix}"
    data = {"preset": "syntumor", "size_class": "small", "texture": {"mean": [0.4, 0.45]}}
    if suffix == ".json":
        path.write_text(json.dumps(data))
    else:
        path.write_text("preset: syntumor\nsize_class: small\ntexture:\n  mean: [0.4, 0.45]\n")
    cfg = ts.load_config(path)
    assert cfg.name == "mine" and cfg.size_class == {"small": 1.0}
    assert cfg.texture.mean == (0.4, 0.45)
    assert ts.load_config(str(path)) == cfg


def test_round_trip_through_to_dict():
    cfg = ts.load_config({"preset": "liver", "size_class": {"tiny": 1, "mix": 3}})
    again = ts.load_config(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg


def test_config_object_is_used_as_is():
    cfg = ts.SynthConfig(name="obj", size_class="tiny")
    assert ts.load_config(cfg) is cfg
    assert cfg.size_class == {"tiny": 1.0}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("spleen", "neither a preset"),
        ({"preset": "lung"}, "unknown preset 'lung'"),
        ({"size_class": "huge"}, "unknown classes \\['huge'\\]"),
        ({"location": {"axial_bnd": [0, 1]}}, "location: unknown field\\(s\\) \\['axial_bnd'\\]"),
        ({"location": {"axial_band": [0.8, 0.2]}}, "axial_band"),
        ({"texture": {"mean": 0.5}}, "texture.mean: expected 2 values"),
        ({"location": {"avoid_vessels": "yes"}}, "expected true or false"),
        ({"intensity": {"density": {"hypo": 0.5, "bright": 0.5}}}, "unknown kinds"),
        ({"location": {"if_no_room": "ignore"}}, "must be one of"),
    ],
)
def test_bad_config_errors_name_the_field(config, message):
    with pytest.raises(ts.ConfigError, match=message):
        ts.load_config(config)


def test_bad_config_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ts.ConfigError, match=r"nope\.yaml: cannot read"):
        ts.load_config(missing)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ts.ConfigError, match=r"broken\.json: not valid JSON"):
        ts.load_config(broken)


def test_params_round_trip_is_exact(phantom_2mm):
    params = ts.sample_params(phantom_2mm, config="liver", rng=3)
    assert ts.TumorParams.from_dict(json.loads(params.to_json())) == params
    with pytest.raises(ts.ConfigError, match="version"):
        ts.TumorParams.from_dict({**params.to_dict(), "version": 99})


def test_a_size_class_may_be_overridden_in_part():
    """Any field of a size class may be overridden alone; the others and the other classes stay."""
    default = ts.load_config("liver").shape.classes
    config = ts.load_config({"shape": {"classes": {"small": {"radius_mm": 10}}}})
    classes = config.shape.classes
    assert classes["small"].radius_mm == 10.0
    assert classes["small"].count == default["small"].count
    assert classes["small"].deform_mm == default["small"].deform_mm
    assert {k: v for k, v in classes.items() if k != "small"} == {
        k: v for k, v in default.items() if k != "small"
    }
    assert ts.load_config(config.to_dict()) == config
    with pytest.raises(
        ts.ConfigError, match=r"shape\.classes\.huge: missing field\(s\) count, deform_mm"
    ):
        ts.load_config({"shape": {"classes": {"huge": {"radius_mm": 40}}}})


@pytest.mark.parametrize(
    ("override", "where"),
    [
        (
            {"shape": {"classes": {"small": {"radius_mm": float("nan")}}}},
            r"classes\.small\.radius_mm",
        ),
        ({"intensity": {"edge_sigma_mm": [1.0, float("inf")]}}, r"intensity\.edge_sigma_mm"),
        ({"mass_effect": {"strength": [float("-inf"), 0.3]}}, r"mass_effect\.strength"),
    ],
)
def test_a_number_that_is_not_finite_is_named(override, where):
    with pytest.raises(ts.ConfigError, match=where + ": must be a finite number"):
        ts.load_config(override)
