"""Stage II's SAM: imported without torchvision, checkpoints in both layouts, sizes checked,
preprocessing, box prompts, and a decoder-only fine-tune."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

if importlib.util.find_spec("segment_anything") is None:
    pytest.skip("needs segment-anything: pip install -e '.[aslseg]'", allow_module_level=True)

from tumorsynth.errors import InputError
from tumorsynth.methods.aslseg.prompts import boxes, jitter
from tumorsynth.methods.aslseg.sam import (
    SamPrompter,
    build_sam,
    load_sam,
    read_sam_state,
    save_sam,
)


def test_sam_imports_where_torchvision_is_broken(tmp_path):
    """PyPI's torchvision next to a CPU torch raises at import: the package's own import fails
    there, the shim still gives the model classes (and never imports the predictor)."""
    fake = tmp_path / "torchvision"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        'raise RuntimeError("operator torchvision::nms does not exist")\n'
    )
    script = textwrap.dedent("""
        import sys
        try:
            import segment_anything
            print("package import: ok")
        except RuntimeError as err:
            print("package import:", err)
        from tumorsynth.methods.aslseg.sam import build_sam
        sam = build_sam("tiny")
        print(type(sam).__name__, "segment_anything.predictor" in sys.modules)
    """)  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "package import: operator torchvision::nms does not exist"
    assert lines[1] == "Sam False"


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_checkpoints_load_in_both_layouts(tmp_path):
    sam = build_sam("tiny", seed=3)
    assert not _same(sam, build_sam("tiny", seed=4))  # the seed sets the weights
    plain = save_sam(sam, tmp_path / "sam_tiny.pth")
    wrapped = tmp_path / "medsam_style.pth"  # {"model": ...} with DistributedDataParallel's prefix
    state = {"module." + k: v for k, v in sam.state_dict().items()}
    torch.save({"model": state, "epoch": 3, "optimizer": {}}, wrapped)
    for path in (plain, wrapped):
        loaded = load_sam("tiny", path, "cpu")
        assert _same(loaded, sam)
        assert next(loaded.parameters()).device.type == "cpu" and not loaded.training
    assert set(read_sam_state(wrapped)) == set(sam.state_dict())


def test_a_checkpoint_of_another_size_is_one_clear_line(tmp_path):
    path = save_sam(build_sam("tiny"), tmp_path / "tiny.pth")
    with pytest.raises(InputError) as err:
        load_sam("vit_b", path, "cpu")
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    assert "another size than vit_b" in message and "image_encoder" in message


def test_missing_damaged_and_foreign_checkpoints(tmp_path):
    with pytest.raises(InputError, match="no such SAM checkpoint"):
        load_sam("tiny", tmp_path / "absent.pth")
    damaged = tmp_path / "damaged.pth"
    damaged.write_bytes(b"not a torch file")
    with pytest.raises(InputError, match="cannot read the SAM checkpoint"):
        load_sam("tiny", damaged)
    foreign = tmp_path / "foreign.pth"
    torch.save({"step": 3}, foreign)
    with pytest.raises(InputError, match="not a SAM checkpoint"):
        load_sam("tiny", foreign)
    partial = tmp_path / "partial.pth"
    torch.save(
        {k: v for k, v in build_sam("tiny").state_dict().items() if "mask_decoder" not in k},
        partial,
    )
    with pytest.raises(InputError, match="tensors missing"):
        load_sam("tiny", partial)


def test_the_two_preprocessings():
    sam = build_sam("tiny")
    x = torch.linspace(0.2, 0.6, 48 * 48).reshape(1, 48, 48)
    official = SamPrompter(sam, "sam", "cpu").encoder_input(x)
    medsam = SamPrompter(sam, "medsam", "cpu").encoder_input(x)
    assert official.shape == medsam.shape == (1, 3, 64, 64)  # the encoder's side
    assert medsam.min() >= 0 and medsam.max() <= 1 and medsam.max() > 0.99  # min-max, no mean/std
    # the official one: 0-255 with ImageNet's mean and std per channel
    restored = official * sam.pixel_std + sam.pixel_mean
    assert torch.allclose(restored / 255, medsam * 0.4 + 0.2, atol=0.01)


def test_boxes_follow_sam_order_and_prompt_one_mask_per_component():
    mask = np.zeros((32, 32), bool)
    mask[2:5, 10:20] = True  # rows 2-4, columns 10-19
    mask[20:30, 25:28] = True
    assert boxes(mask).tolist() == [[10, 2, 20, 5], [25, 20, 28, 30]]
    assert len(boxes(mask, min_area_px=31)) == 0
    moved = jitter(boxes(mask), 0.5, 32, np.random.default_rng(0))
    assert (moved[:, 2:] > moved[:, :2]).all() and moved.min() >= 0 and moved.max() <= 32
    prompter = SamPrompter(build_sam("tiny"), "sam", "cpu")
    images = np.random.default_rng(1).random((2, 32, 32), dtype=np.float32)
    prompts = np.stack([mask, np.zeros_like(mask)])
    prob = prompter.probabilities(prompter.embed(images), prompts)
    assert prob.shape == (2, 32, 32) and prob[1].max() == 0  # no prompt, no mask
    per_box = [torch.sigmoid(prompter.decode(prompter.embed(images[:1]), b[None], 32))[0]
               for b in boxes(mask)]  # fmt: skip
    assert np.allclose(prob[0], torch.maximum(*per_box).detach().numpy(), atol=1e-6)


def test_stage_two_tunes_the_mask_decoder_only(tmp_path):
    from tumorsynth.methods.aslseg.config import load_aslseg_config, stage_config
    from tumorsynth.methods.aslseg.sam_tune import SamTuner, load_tuned_sam
    from tumorsynth.methods.aslseg.slices import Slices

    rng = np.random.default_rng(0)
    tumour = np.zeros((4, 32, 32), bool)
    tumour[:, 8:16, 10:20] = True
    slices = Slices(rng.random((4, 32, 32), dtype=np.float32), np.ones((4, 32, 32), bool),
                    tumour, np.ones(4, bool), np.array(["a:0", "a:1", "a:2", "a:3"]))  # fmt: skip
    cfg = load_aslseg_config(None, {"n_unlabelled_phantoms": 1, "sam_steps": 3, "device": "cpu",
                                    "slice_size": 32, "sam_batch_size": 2})  # fmt: skip
    base = save_sam(build_sam("tiny"), tmp_path / "base.pt")
    run = tmp_path / "sam"
    SamTuner(stage_config(cfg, "sam", run, 0), cfg, slices, base, progress=False).fit()
    before = load_sam("tiny", base)
    after = load_tuned_sam(cfg, base, run / "checkpoints" / "best.pt", torch.device("cpu"))
    for part in ("image_encoder", "prompt_encoder"):
        assert _same(getattr(before, part), getattr(after, part))
    assert not _same(before.mask_decoder, after.mask_decoder)
