"""Selection honours its thresholds and the empty cap; the labelled set grows and the two sets
never share a slice; HD95 keeps missed tumours."""

from __future__ import annotations

import numpy as np
import pytest

from tumorsynth.methods.aslseg.ablation import hd95_mm, summarise_rows
from tumorsynth.methods.aslseg.pseudo import Pseudo
from tumorsynth.methods.aslseg.select import grow, select
from tumorsynth.methods.aslseg.slices import Slices

S = 16


def _slices(n: int, prefix: str, rng) -> Slices:
    tumour = np.zeros((n, S, S), bool)
    tumour[: n // 2, 4:9, 4:9] = True  # hidden labels: half the slices hold tumour
    return Slices(rng.random((n, S, S), dtype=np.float32), np.ones((n, S, S), bool), tumour,
                  np.ones(n, bool), np.array([f"{prefix}:{k}" for k in range(n)]))  # fmt: skip


@pytest.fixture
def candidates():
    rng = np.random.default_rng(0)
    unlabelled = _slices(12, "u", rng)
    refined = unlabelled.tumour.copy()
    refined[1] = False  # a missed tumour: an empty pseudo-label
    refined[7, 10:14, 10:14] = True  # a false positive on a tumour-free slice
    agreement = np.array([0.9, 0.95, 0.5, 0.99, 0.85, 0.7, 1.0, 0.9, 1.0, 1.0, 1.0, 0.2])
    confidence = np.array([0.95, 0.98, 0.99, 0.8, 0.96, 0.99, 0.97, 0.99, 0.91, 0.99, 0.93, 0.99])
    pseudo = Pseudo(refined, refined, refined, refined.astype(np.float32), agreement, confidence)
    return unlabelled, pseudo


def test_selection_honours_the_thresholds_and_the_empty_cap(candidates):
    unlabelled, pseudo = candidates
    sel = select(pseudo, unlabelled, agreement_min=0.8, confidence_min=0.9, empty_ratio=0.5)
    reliable = (pseudo.agreement >= 0.8) & (pseudo.confidence >= 0.9)
    has = pseudo.refined.any(axis=(1, 2))
    assert not (sel.accepted & ~reliable).any()  # every accepted slice passed both
    assert (sel.accepted[reliable & has]).all()  # every reliable tumour slice is taken
    assert sel.accepted.tolist() == [1, 0, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0]
    # 3 tumour slices accepted (0, 4, 7) -> at most 1 empty one: the most confident (9, not 1, 6, 8, 10)
    r = sel.record
    assert (r["n_accepted"], r["n_accepted_tumour"], r["n_accepted_empty"]) == (4, 3, 1)
    assert r["n_empty_over_cap"] == 4 and r["n_reliable"] == int(reliable.sum())
    # against the hidden labels: slices 0, 4 right, 7 a false positive, 9 rightly empty
    assert r["accepted"]["dice_mean"] == pytest.approx(0.75)
    assert r["accepted"]["pixel_precision"] == pytest.approx(50 / 66)
    loose = select(pseudo, unlabelled, agreement_min=0.0, confidence_min=0.0, empty_ratio=10)
    assert loose.accepted.all()


def test_the_labelled_set_grows_and_the_sets_stay_apart(candidates):
    unlabelled, pseudo = candidates
    labelled = _slices(6, "l", np.random.default_rng(1))
    sel = select(pseudo, unlabelled, agreement_min=0.8, confidence_min=0.9, empty_ratio=0.5)
    bigger, rest = grow(labelled, unlabelled, sel.accepted, pseudo.refined)
    assert len(bigger) == len(labelled) + 4 and len(rest) == len(unlabelled) - 4
    assert not set(bigger.ids) & set(rest.ids)
    assert set(bigger.ids) | set(rest.ids) == set(labelled.ids) | set(unlabelled.ids)
    added = bigger.take(np.arange(len(labelled), len(bigger)))
    # the added slices carry their pseudo-labels, not the hidden ones (slice 7's false positive)
    assert np.array_equal(added.tumour, pseudo.refined[sel.accepted])
    assert not np.array_equal(added.tumour, unlabelled.tumour[sel.accepted])


def test_hd95_keeps_a_missed_tumour_at_the_diagonal():
    gt = np.zeros((20, 10, 5), bool)
    gt[5:9, 3:6, 1:3] = True
    spacing = (1.0, 2.0, 4.0)
    diagonal = float(np.linalg.norm([20 * 1.0, 10 * 2.0, 5 * 4.0]))
    assert hd95_mm(np.zeros_like(gt), gt, spacing) == (pytest.approx(diagonal), "missed")
    assert hd95_mm(gt, np.zeros_like(gt), spacing) == (pytest.approx(diagonal), "false_alarm")
    assert hd95_mm(np.zeros_like(gt), np.zeros_like(gt), spacing) == (0.0, "empty")
    shifted = np.roll(gt, 2, axis=0)  # 2 voxels of 1 mm along x
    value, status = hd95_mm(shifted, gt, spacing)
    assert status == "ok" and value == pytest.approx(2.0)
    cases = [
        {"dice": 0.8, "nsd": 0.9, "hd95_mm": 2.0, "hd95_status": "ok", "n_lesions": 1, "n_detected": 1, "n_false_positives": 0},
        {"dice": 0.0, "nsd": 0.0, "hd95_mm": diagonal, "hd95_status": "missed", "n_lesions": 1, "n_detected": 0, "n_false_positives": 0},
    ]  # fmt: skip
    (row,) = summarise_rows({"stage1": cases})
    assert row["n_missed"] == 1 and row["hd95_mean_mm"] == pytest.approx((2.0 + diagonal) / 2)
    assert row["lesion_sensitivity"] == 0.5 and row["dice_mean"] == pytest.approx(0.4)
