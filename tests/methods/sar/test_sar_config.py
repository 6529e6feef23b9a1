"""SAR's config: sections and overrides, one message naming the field, the example configs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tumorsynth.errors import ConfigError
from tumorsynth.methods.sar.config import finetune_config, load_sar_config

CONFIGS = Path(__file__).resolve().parents[3] / "examples" / "configs"


def test_overrides_and_the_finetune_section_become_a_train_config(tmp_path):
    path = tmp_path / "sar.yaml"
    path.write_text("pretrain:\n  network: unet\n  channels: [8, 16, 32]\n  input_size: [16, 16, 16]\n"
                    "  lr: 1e-3\nfinetune:\n  steps: 40\n  patch_size: [32, 32, 32]\n")  # fmt: skip
    cfg = load_sar_config(path, ["pretrain.steps=7", "compare.seeds=[0, 1]"])
    assert (cfg.pretrain.steps, cfg.pretrain.lr, cfg.compare.seeds) == (7, 1e-3, [0, 1])
    train = finetune_config(cfg, steps=4, init_from="x.pt")
    assert (train.network, train.channels, train.steps, train.init_from) == ("unet", [8, 16, 32], 4,
                                                                            "x.pt")  # fmt: skip
    assert train.window_hu == cfg.pretrain.window_hu
    assert load_sar_config(cfg.to_dict()) == cfg  # round trip


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("pretrain.netwrk=unet", "did you mean 'network'"),
        ("pretrian.steps=3", "did you mean pretrain.steps"),
        ("pretrain.input_size=[40,40,40]", "multiples of 16"),
        ("pretrain.input_size=[16,16,16]", "at least 32 per side"),
        ("pretrain.crop_sizes_mm=[[32,32,32]]", "at least 2 scales"),
        ("pretrain.domains=[{name: a, n_phantoms: 1}]", "at least 2 domains"),
        ("pretrain.domains=[{name: a}, {name: b, n_phantoms: 1}]", "domains[0] (a): no CT"),
        ("pretrain.domains=[{name: a, images: [x.nii.gz], tumours: true}, {name: b, n_phantoms: 1}]",
         "inserting tumours needs organ masks"),
        ("pretrain.heads_input=both", "heads_input"),
        ("pretrain.paint_prob=1.5", "paint_prob: in [0, 1]"),
        ("finetune.network=unet", "finetune.network: set by pretrain"),
        ("finetune.init_from=x.pt", "set by compare"),
        ("finetune.stpes=3", "finetune: train config: unknown field 'stpes'"),
        ("compare.inits=[scratch, mae]", "inits"),
        ("compare.budgets=[0, 1]", "budgets"),
        ("pretrain.steps=ten", "expected an integer"),
    ],
)  # fmt: skip
def test_bad_configs_fail_with_one_message_naming_the_field(override, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")
                       .replace(")", r"\)")) as err:  # fmt: skip
        load_sar_config(None, [override])
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["sar_tiny.yaml", "sar_gpu.yaml"])
def test_the_example_configs_load(name):
    cfg = load_sar_config(CONFIGS / name)
    assert cfg.pretrain.n_scales >= 3 and len(cfg.pretrain.domains) >= 2
    assert finetune_config(cfg).network == cfg.pretrain.network
