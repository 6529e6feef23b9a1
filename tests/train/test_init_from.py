"""``init_from``: a segmenter started from a checkpoint's matching layers, the rest reported, a
checkpoint of another network refused in one line."""

from __future__ import annotations

import logging

import pytest
import torch
from tumorsynth.cli import main

from tumorsynth.errors import ConfigError, InputError
from tumorsynth.segment.checkpoint import save_checkpoint
from tumorsynth.segment.networks import build_network, network_spec
from tumorsynth.train import load_train_config, start_runtime
from tumorsynth.train.segmentation import SegmentationTrainer, init_network

SMALL = ["network=unet", "channels=[4,8,16]", "patch_size=[32,32,32]"]


def _checkpoint(path, cfg, prefix="", extra=None, seed=1):
    """A checkpoint of ``cfg``'s network with weights from ``seed``, under ``prefix``, with
    ``extra`` tensors beside it (as a method's heads)."""
    torch.manual_seed(seed)
    weights = {prefix + k: v for k, v in build_network(cfg).state_dict().items()}
    weights.update(extra or {})
    state = {"network": network_spec(cfg), "window_hu": [-21.0, 189.0], "model": weights}
    if prefix:  # a method's checkpoint: not a segmenter for predict
        state["backbone"] = state.pop("network")
        state["backbone_prefix"] = prefix
    return save_checkpoint(path, state), weights


def test_every_layer_of_the_same_network_is_loaded(tmp_path):
    cfg = load_train_config(None, SMALL)
    path, weights = _checkpoint(tmp_path / "a.pt", cfg)
    torch.manual_seed(0)
    net = build_network(cfg)
    report = init_network(net, str(path), network_spec(cfg))
    assert report["kept"] == [] and report["unused"] == []
    for name, value in net.state_dict().items():
        assert torch.equal(value, weights[name]), name


def test_a_methods_checkpoint_gives_its_backbone_and_reports_its_heads(tmp_path, caplog):
    cfg = load_train_config(None, SMALL)
    heads = {"scale_head.0.weight": torch.ones(3, 16)}
    path, weights = _checkpoint(tmp_path / "b.pt", cfg, "backbone.", heads)
    net = build_network(cfg)
    with caplog.at_level(logging.INFO, logger="tumorsynth.train"):
        report = init_network(net, str(path), network_spec(cfg))
    assert report["unused"] == ["scale_head.0.weight"] and report["kept"] == []
    assert torch.equal(net.state_dict()["model.0.conv.unit0.conv.weight"],
                       weights["backbone.model.0.conv.unit0.conv.weight"])  # fmt: skip
    assert "1 tensors of the checkpoint unused" in caplog.text


def test_layers_of_another_shape_are_kept_and_named(tmp_path, caplog):
    cfg = load_train_config(None, SMALL)
    path, weights = _checkpoint(tmp_path / "c.pt", cfg)
    name = next(iter(weights))
    state = torch.load(path, weights_only=True)
    state["model"][name] = torch.zeros(1)  # e.g. another number of input channels
    torch.save(state, path)
    torch.manual_seed(0)
    net = build_network(cfg)
    before = net.state_dict()[name].clone()
    with caplog.at_level(logging.INFO, logger="tumorsynth.train"):
        report = init_network(net, str(path), network_spec(cfg))
    assert report["kept"] == [name] and report["unused"] == [name]
    assert torch.equal(net.state_dict()[name], before)
    assert f"kept at initialisation: {name}" in caplog.text


def test_another_network_or_no_network_is_refused(tmp_path):
    cfg = load_train_config(None, SMALL)
    other = load_train_config(None, ["network=basic_unet", "channels=[4,4,8,16,32,4]"])
    path, _ = _checkpoint(tmp_path / "d.pt", other)
    with pytest.raises(ConfigError, match="but this run trains"):
        init_network(build_network(cfg), str(path), network_spec(cfg))
    wider = load_train_config(None, ["network=unet", "channels=[8,16,32]"])
    path, _ = _checkpoint(tmp_path / "e.pt", wider)
    with pytest.raises(ConfigError, match="channels"):
        init_network(build_network(cfg), str(path), network_spec(cfg))
    save_checkpoint(tmp_path / "f.pt", {"model": {}})
    with pytest.raises(InputError, match="records no network"):
        init_network(build_network(cfg), str(tmp_path / "f.pt"), network_spec(cfg))
    with pytest.raises(ConfigError, match="init_from: a checkpoint path or null"):
        load_train_config(None, ["init_from=' '"])


def test_the_trainer_starts_from_init_from_and_the_cli_refuses_another_network(tmp_path, capsys):
    cfg = load_train_config(None, [*SMALL, "phantom_spacing_mm=4.0", "num_workers=0"])
    path, weights = _checkpoint(tmp_path / "g.pt", cfg)
    run = load_train_config(cfg, [f"init_from={path}", f"out_dir={tmp_path / 'run'}"])
    trainer = SegmentationTrainer(run, progress=False)
    trainer.runtime = start_runtime("cpu")
    trainer.build_data()
    net = trainer.build_network()
    assert all(torch.equal(v, weights[k]) for k, v in net.state_dict().items())
    other = load_train_config(None, ["network=basic_unet", "channels=[4,4,8,16,32,4]"])
    bad, _ = _checkpoint(tmp_path / "h.pt", other)
    args = ["train", "--out", str(tmp_path / "run2"), "--set", f"init_from={bad}",
            *[a for s in [*SMALL, "phantom_spacing_mm=4.0"] for a in ("--set", s)]]  # fmt: skip
    capsys.readouterr()  # the log of the load above (once the CLI's log handler is installed)
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and err.count("\n") == 1, err
    assert f"error: init_from {bad}: a checkpoint of {{'network': 'basic_unet'" in err
    assert "hosts" not in err  # refused before the hosts are read
    assert not (tmp_path / "run2" / "checkpoints" / "last.pt").exists()
