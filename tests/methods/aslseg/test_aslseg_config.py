"""ASLseg's config: one line naming the field for every bad value; the example configs load."""

from __future__ import annotations

from pathlib import Path

import pytest

from tumorsynth.errors import ConfigError
from tumorsynth.methods.aslseg.config import load_aslseg_config, stage_config

REPO = Path(__file__).resolve().parents[3]
OK = {"n_unlabelled_phantoms": 1}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "no unlabelled scans"),
        ({"n_unlabelled_phantoms": 0, "unlabelled_images": ["ct/"]}, "unlabelled_masks: every"),
        ({**OK, "ssl_method": "mean_teachr"}, "did you mean 'mean_teacher'"),
        ({**OK, "sam_model": "vit_b"}, "sam_checkpoint: vit_b needs its weights"),
        ({**OK, "sam_preprocess": "clip"}, "sam_preprocess: unknown 'clip'"),
        ({**OK, "corruptions": ["erode", "shrink"]}, "corruptions: unknown 'shrink'"),
        ({**OK, "slice_size": 40}, "slice_size: a multiple of 16"),
        ({**OK, "agreement_min": 1.5}, "agreement_min: in [0, 1]"),
        ({**OK, "window_hu": [200, 100]}, "window_hu: low must be below high"),
        ({**OK, "rounds": 0}, "rounds: at least 1"),
        ({**OK, "test_images": ["a.nii.gz"]}, "1 test_images but 0 test_labels"),
        ({**OK, "synth_config": "livr"}, "synth_config: config 'livr' is neither a preset"),
        ({**OK, "ssl_features": [8, 8, 16]}, "ssl_features: 6 positive ints"),
        ({**OK, "ssl_steps": "many"}, "ssl_steps: expected an integer"),
    ],
)
def test_a_bad_config_is_one_line_naming_the_field(values, message):
    with pytest.raises(ConfigError) as err:
        load_aslseg_config(values)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_unknown_fields_get_a_hint_and_overrides_are_read_as_yaml(tmp_path):
    with pytest.raises(ConfigError, match="unknown field 'round' \\(did you mean 'rounds'\\?\\)"):
        load_aslseg_config(OK, ["round=3"])
    path = tmp_path / "c.yaml"
    path.write_text("n_unlabelled_phantoms: 2\nssl_lr: 1e-3\nunlabelled_images: ct.nii.gz\n"
                    "unlabelled_masks: [liver.nii.gz]\n")  # fmt: skip
    cfg = load_aslseg_config(path, ["rounds=3", "window_hu=[-100, 200]"])
    assert cfg.ssl_lr == 1e-3 and cfg.rounds == 3 and cfg.window_hu == (-100.0, 200.0)
    assert cfg.unlabelled_images == ["ct.nii.gz"]
    assert load_aslseg_config(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="no such config file"):
        load_aslseg_config(tmp_path / "absent.yaml")


def test_each_stage_gets_its_own_trainer_settings():
    cfg = load_aslseg_config(OK, ["ssl_steps=30", "sam_steps=20", "adapt_lr=0.01"])
    ssl, sam = stage_config(cfg, "ssl", "a", 0), stage_config(cfg, "sam", "b", 0)
    adapt = stage_config(cfg, "adapt", "c", 1)
    assert (ssl.steps, sam.steps, adapt.lr) == (30, 20, 0.01)
    assert len({ssl.seed, sam.seed, adapt.seed, stage_config(cfg, "ssl", "d", 1).seed}) == 4


@pytest.mark.parametrize("name", ["aslseg_tiny.yaml", "aslseg_vit_b_gpu.yaml"])
def test_the_example_configs_load(name):
    cfg = load_aslseg_config(REPO / "examples" / "configs" / name)
    assert cfg.rounds >= 2 and (cfg.n_test_phantoms or cfg.test_images)
