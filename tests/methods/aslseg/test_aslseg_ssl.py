"""Stage I on the Trainer's hooks: the EMA teacher, the consistency ramp, the three methods, and
checkpoints that keep the teacher."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch

from tumorsynth.errors import InputError
from tumorsynth.methods.aslseg.config import load_aslseg_config, stage_config
from tumorsynth.methods.aslseg.slices import Slices
from tumorsynth.methods.aslseg.ssl import (
    SemiSupervisedTrainer,
    SSLNet,
    consistency_weight,
    load_segmenter,
)
from tumorsynth.segment.checkpoint import load_checkpoint

S = 32


def _slices(n: int, prefix: str, labelled: bool) -> Slices:
    rng = np.random.default_rng(len(prefix))
    tumour = np.zeros((n, S, S), bool)
    if labelled:
        tumour[::2, 8:18, 10:20] = True
    image = rng.random((n, S, S), dtype=np.float32) * 0.2 + 0.5 - 0.3 * tumour
    return Slices(image, np.ones((n, S, S), bool), tumour, np.full(n, labelled),
                  np.array([f"{prefix}:{k}" for k in range(n)]))  # fmt: skip


def _config(method: str, steps: int = 4):
    return load_aslseg_config(None, {
        "n_unlabelled_phantoms": 1, "ssl_method": method, "ssl_steps": steps, "slice_size": S,
        "ssl_batch_size": 2, "ssl_unlabelled_batch_size": 2, "device": "cpu", "threads": 1,
        "ssl_features": [4, 4, 8, 8, 16, 4], "save_every": 2,
    })  # fmt: skip


def test_the_teacher_is_an_exponential_moving_average():
    torch.manual_seed(0)
    net = SSLNet("mean_teacher", [4, 4, 8, 8, 16, 4], ema_decay=0.9)
    net.teacher.update_parameters(net.student)  # the first update copies the student
    before = [p.detach().clone() for p in net.teacher.module.parameters()]
    with torch.no_grad():
        for p in net.student.parameters():
            p.add_(1.0)
    net.teacher.update_parameters(net.student)
    for old, new, s in zip(before, net.teacher.module.parameters(), net.student.parameters(),
                           strict=True):  # fmt: skip
        assert torch.allclose(new, 0.9 * old + 0.1 * s)
    assert not any(p.requires_grad for p in net.teacher.parameters())
    assert all(p.requires_grad for p in net.trainable())


def test_the_consistency_weight_ramps_up_then_stays():
    cfg = load_aslseg_config({"n_unlabelled_phantoms": 1, "ssl_steps": 100,
                              "consistency": 0.1, "consistency_ramp": 0.4})  # fmt: skip
    weights = [consistency_weight(t, cfg) for t in range(0, 101, 10)]
    assert weights[0] == pytest.approx(0.1 * math.exp(-5))
    assert weights == sorted(weights) and weights[4] == weights[-1] == pytest.approx(0.1)


@pytest.mark.parametrize("method", ["mean_teacher", "ua_mt", "cps"])
def test_each_method_trains_and_saves_what_it_predicts_with(tmp_path, method):
    cfg = _config(method)
    run = tmp_path / method
    trainer = SemiSupervisedTrainer(stage_config(cfg, "ssl", run, 0), cfg, _slices(6, "l", True),
                                    _slices(6, "u", False), progress=False)  # fmt: skip
    result = trainer.fit()
    assert result.step == 4 and math.isfinite(result.last_loss)
    rows = [r for r in csv.DictReader((run / "metrics.csv").open()) if r["split"] == "train"]
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert all(float(r["consistency"]) >= 0 and float(r["weight"]) > 0 for r in rows)
    net = load_segmenter(run / "checkpoints" / "best.pt")
    saved = load_checkpoint(run / "checkpoints" / "last.pt")
    if method == "cps":
        assert any(k.startswith("b.") for k in saved["model"])
    else:  # the teacher is in the checkpoint, so a resumed run keeps averaging it
        assert int(saved["model"]["teacher.n_averaged"]) == 4
        student, teacher = net.student.state_dict(), net.teacher.module.state_dict()
        assert any(not torch.equal(student[k], teacher[k]) for k in student)
    with torch.no_grad():
        assert net(torch.zeros(1, 1, S, S)).shape == (1, 2, S, S)


def test_resume_continues_the_teacher_and_refuses_another_method(tmp_path):
    run = tmp_path / "run"
    labelled, unlabelled = _slices(6, "l", True), _slices(6, "u", False)
    cfg = _config("mean_teacher", steps=2)
    SemiSupervisedTrainer(stage_config(cfg, "ssl", run, 0), cfg, labelled, unlabelled,
                          progress=False).fit()  # fmt: skip
    more = _config("mean_teacher", steps=4)
    result = SemiSupervisedTrainer(stage_config(more, "ssl", run, 0), more, labelled, unlabelled,
                                   resume=True, progress=False).fit()  # fmt: skip
    assert result.step == 4
    assert int(load_checkpoint(run / "checkpoints" / "last.pt")["model"]["teacher.n_averaged"]) == 4
    other = _config("cps", steps=6)
    with pytest.raises(Exception, match="differs from the config"):
        SemiSupervisedTrainer(stage_config(other, "ssl", run, 0), other, labelled, unlabelled,
                              resume=True, progress=False).fit()  # fmt: skip
    with pytest.raises(InputError, match="labelled and unlabelled slices"):
        SemiSupervisedTrainer(stage_config(cfg, "ssl", tmp_path / "x", 0), cfg, labelled,
                              unlabelled.take([]), progress=False)  # fmt: skip


def test_a_warm_start_begins_from_the_previous_weights(tmp_path):
    labelled, unlabelled = _slices(6, "l", True), _slices(6, "u", False)
    cfg = _config("mean_teacher", steps=2)
    before = tmp_path / "round0"
    SemiSupervisedTrainer(stage_config(cfg, "ssl", before, 0), cfg, labelled, unlabelled,
                          progress=False).fit()  # fmt: skip
    saved = load_checkpoint(before / "checkpoints" / "best.pt")["model"]
    warm = SemiSupervisedTrainer(stage_config(cfg, "ssl", tmp_path / "round1", 1), cfg, labelled,
                                 unlabelled, init=before / "checkpoints" / "best.pt")  # fmt: skip
    cold = SemiSupervisedTrainer(stage_config(cfg, "ssl", tmp_path / "cold", 1), cfg, labelled,
                                 unlabelled)  # fmt: skip
    assert all(torch.equal(v, saved[k]) for k, v in warm.build_network().state_dict().items())
    assert not all(torch.equal(v, saved[k]) for k, v in cold.build_network().state_dict().items())
