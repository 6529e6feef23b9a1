"""``tumorsynth train``: config, start-up errors, a short run, resume, the batch hook."""

from __future__ import annotations

import csv
import json
import math
import os

import numpy as np
import pytest
import torch
from tumorsynth.cli import main

from tumorsynth.errors import ConfigError
from tumorsynth.segment import load_model
from tumorsynth.stream import insert_tumours
from tumorsynth.stream.crops import TumorStream, collate
from tumorsynth.train import load_train_config, train
from tumorsynth.train.data import load_hosts

# a tiny run on the phantom at 3 mm: a few seconds
TINY = [
    "phantom_spacing_mm=3.0",
    "patch_size=[32,32,32]",
    "channels=[4,8,16]",
    "batch_size=2",
    "num_workers=0",
    "warmup_steps=1",
    "synth_config=syntumor",
]


def run_cli(args, capsys):
    """Exit code and stderr of ``tumorsynth ARGS``."""
    try:
        main(args)
        code = 0
    except SystemExit as err:
        code = err.code
    return code, capsys.readouterr().err


def test_config_file_and_overrides(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("network: basic_unet\npatch_size: [64, 64, 32]\nlr: 1e-3\nimages: a.nii.gz\n"
                    "masks: [b.nii.gz]\n")  # fmt: skip
    cfg = load_train_config(path, ["steps=7", "lr=2e-4", "window_hu=[-100, 200]"])
    assert (cfg.network, cfg.patch_size, cfg.steps, cfg.lr) == ("basic_unet", (64, 64, 32), 7, 2e-4)
    assert cfg.images == ["a.nii.gz"] and cfg.window_hu == (-100.0, 200.0)
    assert load_train_config(cfg.to_dict()) == cfg  # round trip


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("network=unetr", "network: unknown 'unetr'"),
        ("stesp=10", "did you mean 'steps'"),
        ("patch_size=[96,96,40]", "multiples of 16"),
        (["network=swin_unetr", "patch_size=[32,32,32]"], "at least 64"),
        ("synth_prob=1.5", "synth_prob: in [0, 1]"),
        ("n_phantoms=0", "no healthy cases"),
        ("synth_config=nope", "synth_config"),
        ("steps=ten", "expected an integer"),
    ],
)
def test_bad_configs_fail_with_one_message(override, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_train_config(None, [override] if isinstance(override, str) else override)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "patch_size=[96,96,96]", "--set", "phantom_spacing_mm=4"], "larger than"),
        (["--set", "images=[/nonexistent/ct.nii.gz]", "--set", "masks=[/x.nii.gz]"],
         "/nonexistent/ct.nii.gz: no such file"),
        (["--set", "images=[/nonexistent/*.nii.gz]", "--set", "masks=[/x.nii.gz]"],
         "matches no file"),
        (["--network", "vnet"], "unknown 'vnet'"),
        (["--resume"], "nothing to resume"),
    ],
)  # fmt: skip
def test_startup_errors_stop_before_training(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    code, err = run_cli(["train", "--out", str(out), *args], capsys)
    assert code == 1
    assert message in err and err.count("\n") == 1, err
    assert not (out / "checkpoints" / "last.pt").exists()


def test_val_labels_with_other_values_are_rejected(tmp_path, capsys, phantom_2mm):
    from tumorsynth.io.volume import write_volume

    write_volume(tmp_path / "ct.nii.gz", phantom_2mm.image, phantom_2mm.spacing_mm)
    write_volume(tmp_path / "lab.nii.gz", phantom_2mm.organ * 5, phantom_2mm.spacing_mm)
    args = ["--set", f"val_images=[{tmp_path / 'ct.nii.gz'}]",
            "--set", f"val_labels=[{tmp_path / 'lab.nii.gz'}]"]  # fmt: skip
    code, err = run_cli(["train", "--out", str(tmp_path / "run"), *args], capsys)
    assert code == 1 and "lab.nii.gz: validation labels must be" in err


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "run"
    cfg = load_train_config(None, [*TINY, "steps=4", "val_every=2", "save_every=2",
                                   "n_val_synthetic=1", f"out_dir={out}"])  # fmt: skip
    return cfg, train(cfg, progress=False)


def test_short_run_writes_checkpoints_and_metrics(short_run):
    cfg, result = short_run
    out = result.out_dir
    assert result.step == 4 and np.isfinite(result.last_loss)
    assert 0.0 <= result.best_score <= 1.0
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [int(r["step"]) for r in rows if r["split"] == "train"] == [1, 2, 3, 4]
    assert [int(r["step"]) for r in rows if r["split"] == "val"] == [2, 4]
    assert all(float(r["loss"]) > 0 for r in rows if r["split"] == "train")
    assert list((out / "tensorboard").iterdir()), "no TensorBoard events"
    assert json.loads((out / "config.json").read_text()) == cfg.to_dict()
    model, meta = load_model(out / "checkpoints" / "last.pt")
    assert meta["step"] == 4 and meta["spacing_mm"] == [3.0, 3.0, 3.0]
    assert meta["network"]["channels"] == [4, 8, 16]
    logits = model(torch.zeros(1, 1, 32, 32, 32))
    assert logits.shape == (1, 3, 32, 32, 32)
    lines = [json.loads(x) for x in (out / "streams" / "rank0.jsonl").open()]
    assert [line["step"] for line in lines] == [1, 2, 3, 4]
    seeds = {item["seed"] for line in lines for item in line["items"]} - {None}
    assert len(seeds) > 2
    # the log renders the crops again
    stream = TumorStream(load_hosts(cfg), cfg.patch_size, config=cfg.synth_config)
    item = next(i for line in lines for i in line["items"] if i["seed"] is not None)
    again = stream.replay(item["case"], item["crop_lo_vox"], item["seed"])
    assert (again["label"] == 2).any() or not again["params"]


def test_resume_continues_and_a_used_folder_needs_a_flag(short_run, capsys):
    cfg, result = short_run
    out = str(result.out_dir)
    code, err = run_cli(["train", "--out", out, *[a for t in TINY for a in ("--set", t)]], capsys)
    assert code == 1 and "--resume" in err
    # a run killed after step 5, before saving: its lines for step 5 must not stay twice
    with (result.out_dir / "metrics.csv").open("a") as f:
        f.write("5,train,9.9,0.1,0,0,,\n")
    with (result.out_dir / "streams" / "rank0.jsonl").open("a") as f:
        f.write(json.dumps({"step": 5, "items": []}) + "\n")
    # more steps, another learning rate and patch size: the config sets them from here on
    more = load_train_config(cfg, ["steps=6", "lr=1e-3", "patch_size=[48,48,48]"])
    resumed = train(more, resume=True, progress=False)
    assert resumed.step == 6
    rows = list(csv.DictReader((result.out_dir / "metrics.csv").open()))
    train_rows = [r for r in rows if r["split"] == "train"]
    assert [int(r["step"]) for r in train_rows] == [1, 2, 3, 4, 5, 6]
    cosine = [0.5 * (1 + math.cos(math.pi * (s - 1) / 5)) for s in (5, 6)]  # warm-up 1 of 6
    np.testing.assert_allclose(
        [float(r["lr"]) for r in train_rows[4:]], [1e-3 * c for c in cosine], atol=1e-12
    )
    lines = [json.loads(x) for x in (result.out_dir / "streams" / "rank0.jsonl").open()]
    assert [line["step"] for line in lines] == [1, 2, 3, 4, 5, 6]
    _, meta = load_model(result.out_dir / "checkpoints" / "last.pt")
    assert meta["step"] == 6 and meta["network"]["patch_size"] == [48, 48, 48]
    with pytest.raises(ConfigError, match="differs from the config"):
        train(load_train_config(more, ["channels=[4,8,8]", "steps=8"]), resume=True)


def test_overwrite_starts_again_and_without_validation_best_is_last(tmp_path):
    cfg = load_train_config(None, [*TINY, "steps=2", f"out_dir={tmp_path / 'run'}"])
    train(cfg, progress=False)
    again = train(load_train_config(cfg, ["steps=1"]), overwrite=True, progress=False)
    rows = list(csv.DictReader((again.out_dir / "metrics.csv").open()))
    assert [int(r["step"]) for r in rows] == [1] and again.best_score is None
    _, best = load_model(again.out_dir / "checkpoints" / "best.pt")
    _, last = load_model(again.out_dir / "checkpoints" / "last.pt")
    assert best["step"] == last["step"] == 1


def test_validation_on_labelled_files_is_logged(tmp_path, phantom_2mm):
    from tumorsynth import synthesize
    from tumorsynth.io.volume import write_volume

    result = synthesize(phantom_2mm, config="syntumor", seed=3)
    write_volume(tmp_path / "ct.nii.gz", result.image, phantom_2mm.spacing_mm)
    write_volume(tmp_path / "lab.nii.gz", result.label, phantom_2mm.spacing_mm)
    overrides = [*TINY, "steps=1", "spacing_mm=3.0", f"out_dir={tmp_path / 'run'}",
                 f"val_images=[{tmp_path / 'ct.nii.gz'}]", f"val_labels=[{tmp_path / 'lab.nii.gz'}]"]  # fmt: skip
    run = train(load_train_config(None, overrides), progress=False)
    rows = [r for r in csv.DictReader((run.out_dir / "metrics.csv").open()) if r["split"] == "val"]
    assert len(rows) == 1 and 0.0 <= float(rows[0]["organ_dice"]) <= 1.0
    assert run.best_score == pytest.approx(float(rows[0]["tumour_dice"]))


def test_device_settings_that_cannot_work_stop_at_start_up(tmp_path, monkeypatch):
    cfg = load_train_config(None, [*TINY, "steps=1", "synth_device=gpu", f"out_dir={tmp_path}"])
    with pytest.raises(ConfigError, match="synth_device 'gpu' needs a CUDA device"):
        train(cfg, progress=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("WORLD_SIZE", "2")
    cfg = load_train_config(cfg, ["synth_device=auto", "device=cuda:1"])
    with pytest.raises(ConfigError, match="every rank on one GPU"):
        train(cfg, progress=False)
    assert not (tmp_path / "checkpoints").exists()


def test_hook_renders_the_same_tumours_as_the_workers(phantom_2mm):
    kwargs = dict(patch_size=(40, 40, 40), pos_fraction=1.0, config="liver", seed=3)
    rendered = [TumorStream([phantom_2mm], **kwargs).sample(np.random.default_rng(k))
                for k in range(3)]  # fmt: skip
    drawn = [TumorStream([phantom_2mm], render=False, **kwargs).sample(np.random.default_rng(k))
             for k in range(3)]  # fmt: skip
    batch, expected = collate(drawn), collate(rendered)
    assert torch.equal(batch["image"], expected["healthy_image"])
    assert any(p for p in batch["params"])
    image, label = insert_tumours(batch["image"], batch["label"], batch["params"])
    assert torch.equal(image, expected["image"]) and torch.equal(label, expected["label"])
    assert (label == 2).any()


@pytest.mark.parametrize("name", ["unet_gpu.yaml", "swin_unetr_gpu.yaml"])
def test_example_recipes_are_valid_configs(name):
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "configs" / name
    cfg = load_train_config(path)
    assert cfg.patch_size == (96, 96, 96) and cfg.lr == 4e-4 and cfg.batch_size == 2
    assert cfg.network == name.removesuffix("_gpu.yaml")


def test_augmentation_moves_image_and_label_together():
    from tumorsynth.train.data import augment

    label = torch.randint(0, 3, (6, 1, 8, 10, 12), generator=torch.Generator().manual_seed(0))
    image = label.float()  # the image is a function of the label
    out, lab = augment(image, label, torch.Generator().manual_seed(1))
    assert any(not torch.equal(lab[b], label[b]) for b in range(6)), "no crop was flipped"
    for b in range(6):  # flipped alike; the intensity jitter is one increasing affine map per crop
        levels = [out[b][lab[b] == v] for v in range(3)]
        assert all(torch.allclose(v, v[0].expand_as(v)) for v in levels)
        assert levels[0][0] < levels[1][0] < levels[2][0]


@pytest.mark.parametrize(
    ("network", "extra"),
    [("unet", "channels=[4,8,16]"), ("basic_unet", "channels=[4,4,8,8,16,4]"),
     ("swin_unetr", "swin_feature_size=12")],
)  # fmt: skip
def test_every_network_builds_and_maps_a_patch_to_three_classes(network, extra):
    from tumorsynth.segment.networks import build_network

    size = 64 if network == "swin_unetr" else 32
    cfg = load_train_config(
        None, [f"network={network}", f"patch_size=[{size},{size},{size}]", extra]
    )
    model = build_network(cfg).train()
    logits = model(torch.rand(1, 1, size, size, size))
    assert logits.shape == (1, 3, size, size, size)


def test_a_failed_checkpoint_save_is_one_line_naming_the_file(tmp_path):
    """Writes fail past 60 kB, as on a full disk: the checkpoint's, not the logs'."""
    from toy import run_with_file_size_limit, tumorsynth_command

    out = tmp_path / "run"
    args = [*tumorsynth_command(), "train", "--out", out, "--steps", "2"]
    done = run_with_file_size_limit([*args, *[a for t in TINY for a in ("--set", t)]], 60_000)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {out / 'checkpoints' / 'last.pt'}: cannot write the checkpoint")
    assert last.endswith("likely cause: a file-size limit of 60000 bytes is set (ulimit -f)")
    assert "Traceback" not in done.stderr
    assert os.listdir(out / "checkpoints") == []
