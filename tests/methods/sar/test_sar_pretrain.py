"""``sar pretrain`` on the Trainer: checkpoints, logs, resume; its checkpoint starts a segmenter of
every architecture it claims (``init_from``), and another network is refused in one line."""

from __future__ import annotations

import csv

import pytest
import torch

from tumorsynth.errors import ConfigError, InputError
from tumorsynth.methods.sar.config import finetune_config, load_sar_config
from tumorsynth.methods.sar.network import BACKBONE_PREFIX
from tumorsynth.methods.sar.trainer import SarTrainer, pretrain
from tumorsynth.segment.checkpoint import load_checkpoint, load_model
from tumorsynth.segment.networks import build_network, network_spec
from tumorsynth.train import start_runtime
from tumorsynth.train.segmentation import init_network

TINY = ["pretrain.phantom_spacing_mm=4.0", "pretrain.crop_sizes_mm=[[32,32,32],[64,64,64]]",
        "pretrain.shuffle_blocks=50", "pretrain.batch_size=2", "pretrain.n_val_crops=4",
        "pretrain.num_workers=0", "pretrain.device=cpu", "pretrain.amp=false",
        "pretrain.threads=1", "pretrain.warmup_steps=1", "pretrain.val_every=2",
        "pretrain.save_every=2"]  # fmt: skip
NETWORKS = {
    "unet": ["pretrain.network=unet", "pretrain.channels=[4,8,16]", "pretrain.input_size=[16,16,16]"],
    "basic_unet": ["pretrain.network=basic_unet", "pretrain.channels=[4,4,8,8,16,4]",
                   "pretrain.input_size=[32,32,32]"],
    "swin_unetr": ["pretrain.network=swin_unetr", "pretrain.swin_feature_size=12",
                   "pretrain.input_size=[64,64,64]"],
}  # fmt: skip


def _config(tmp_path, name, *more):
    return load_sar_config(None, [*TINY, *NETWORKS[name], f"pretrain.out_dir={tmp_path / name}",
                                  *more])  # fmt: skip


def _checks_init(sar_cfg, checkpoint, backbone_state):
    """A segmenter of the fine-tuning config starts from every backbone tensor of the checkpoint;
    the heads are reported unused."""
    train_cfg = finetune_config(sar_cfg, patch_size=list(sar_cfg.pretrain.input_size))
    segmenter = build_network(train_cfg)
    report = init_network(segmenter, str(checkpoint), network_spec(train_cfg))
    assert report["kept"] == []
    assert report["unused"] and not any(k.startswith(BACKBONE_PREFIX) for k in report["unused"])
    for key, value in segmenter.state_dict().items():
        assert torch.equal(value, backbone_state[BACKBONE_PREFIX + key]), key


@pytest.mark.parametrize("name", ["unet", "basic_unet"])
def test_pretrain_runs_on_the_trainer_and_its_checkpoint_starts_a_segmenter(tmp_path, name):
    cfg = _config(tmp_path, name, "pretrain.steps=2")
    result = pretrain(cfg.pretrain, progress=False)
    out = result.out_dir
    assert result.step == 2 and result.best_metric == "restore_mse"
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert {"restore_mse", "scale_acc", "domain_ce", "reversal"} <= set(rows[0])
    assert [r["split"] for r in rows] == ["train", "train", "val"]
    assert (out / "restorations.png").stat().st_size > 0 and list((out / "tensorboard").iterdir())
    state = load_checkpoint(out / "checkpoints" / "best.pt")
    assert state["backbone"]["network"] == name and state["heads"] == {
        "n_scales": 2,
        "n_domains": 2,
    }
    _checks_init(cfg, out / "checkpoints" / "best.pt", state["model"])
    with pytest.raises(InputError, match="not a segmentation checkpoint"):
        load_model(out / "checkpoints" / "best.pt")  # predict does not take it for a segmenter
    if name == "unet":  # resume goes on from last.pt; the config's steps extend the run
        more = load_sar_config(cfg.to_dict(), ["pretrain.steps=3"]).pretrain
        assert pretrain(more, resume=True, progress=False).step == 3
        other = load_sar_config(cfg.to_dict(), ["pretrain.steps=4", "pretrain.scale_weight=0"])
        with pytest.raises(ConfigError, match="--resume: the checkpoint's"):
            pretrain(other.pretrain, resume=True, progress=False)


def test_a_swin_unetr_checkpoint_starts_a_swin_unetr(tmp_path):
    """SwinUNETR's forward is slow on a CPU (the heads' hook on it is tested in
    test_sar_network.py): its checkpoint is written by the trainer's own hooks, without a step."""
    cfg = _config(tmp_path, "swin_unetr")
    trainer = SarTrainer(cfg.pretrain, progress=False)
    trainer.runtime = start_runtime("cpu")
    trainer.network = trainer.build_network()
    trainer.optimizer = trainer.build_optimizer(trainer.network)
    trainer.scheduler = trainer.build_scheduler(trainer.optimizer)
    trainer.meta = trainer.checkpoint_meta()
    path = trainer.save("best.pt")
    _checks_init(cfg, path, trainer.network.state_dict())


def test_a_sar_checkpoint_of_another_network_is_refused(tmp_path):
    cfg = _config(tmp_path, "swin_unetr")
    trainer = SarTrainer(_config(tmp_path, "unet").pretrain, progress=False)
    trainer.runtime = start_runtime("cpu")
    trainer.network = trainer.build_network()
    trainer.optimizer = trainer.build_optimizer(trainer.network)
    trainer.scheduler = trainer.build_scheduler(trainer.optimizer)
    trainer.meta = trainer.checkpoint_meta()
    path = trainer.save("best.pt")
    train_cfg = finetune_config(cfg)
    with pytest.raises(ConfigError, match=r"a checkpoint of \{'network': 'unet'") as err:
        init_network(build_network(train_cfg), str(path), network_spec(train_cfg))
    assert "\n" not in str(err.value)
