"""``torchrun --nproc_per_node 2``: DistributedDataParallel on CPU (Gloo), one stream per rank."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest
import torch

from tumorsynth.segment import load_model
from tumorsynth.segment.predict import Predictor
from tumorsynth.train import load_train_config
from tumorsynth.train.data import load_val_cases
from tumorsynth.train.validate import validate

pytestmark = pytest.mark.slow  # two torchrun launches, about 40 s

TINY = [
    "phantom_spacing_mm=3.0",
    "patch_size=[32,32,32]",
    "channels=[4,8,16]",
    "batch_size=1",
    "num_workers=1",  # the workers learn the rank from the stream, not from the process group
    "warmup_steps=1",
    "threads=1",
    "synth_config=syntumor",
    "n_val_synthetic=3",  # shared out: rank 0 validates 2, rank 1 validates 1
]


def torchrun(out, steps, *extra):
    args = [a for t in [*TINY, f"steps={steps}"] for a in ("--set", t)]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "tumorsynth.cli", "train", "--out", str(out), *args, *extra]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")
def test_two_ranks_train_distinct_tumours_and_resume(tmp_path):
    out = tmp_path / "run"
    torchrun(out, 3)
    lines = {
        r: [json.loads(x) for x in (out / "streams" / f"rank{r}.jsonl").open()] for r in (0, 1)
    }
    assert len(lines[0]) == len(lines[1]) == 3
    flat = [{i["seed"] for line in lines[r] for i in line["items"]} - {None} for r in (0, 1)]
    assert flat[0] and flat[1] and not flat[0] & flat[1], "the ranks drew the same tumours"
    _, meta = load_model(out / "checkpoints" / "last.pt")
    assert meta["step"] == 3
    # the ranks' shares add up to the score of one process validating every case
    (val,) = [r for r in csv.DictReader((out / "metrics.csv").open()) if r["split"] == "val"]
    cfg = load_train_config(None, TINY)
    alone = validate(Predictor.from_checkpoint(out / "checkpoints" / "last.pt", "cpu"),
                     load_val_cases(cfg, progress=False))  # fmt: skip
    assert float(val["tumour_dice"]) == pytest.approx(alone["tumour_dice"], abs=1e-9)
    assert float(val["organ_dice"]) == pytest.approx(alone["organ_dice"], abs=1e-9)

    torchrun(out, 5, "--resume")
    _, meta = load_model(out / "checkpoints" / "last.pt")
    assert meta["step"] == 5
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [int(r["step"]) for r in rows if r["split"] == "train"] == [
        1,
        2,
        3,
        4,
        5,
    ]  # rank 0 writes
    assert [int(r["step"]) for r in rows if r["split"] == "val"] == [3, 5]
    assert sum(1 for _ in (out / "streams" / "rank1.jsonl").open()) == 5
