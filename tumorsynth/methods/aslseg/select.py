r"""Which refined pseudo-labels join the labelled set, and how good they were.

A slice is **reliable** when stage I and the refined mask agree, :math:`a(u) \ge \tau_a`
(``agreement_min``), and the adaptation network is confident, :math:`c(u) \ge \tau_c`
(``confidence_min``). Every reliable slice with tumour is accepted; reliable empty slices are
accepted up to ``empty_ratio`` times as many as those (the labelled set's ratio of empty to
tumour slices), the most confident first, so the loop does not flood the labelled set with
empty labels.

Where hidden labels exist (phantoms, or CTs with ``unlabelled_labels``) the record says how
precise the accepted pseudo-labels were; they never enter training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tumorsynth.methods.aslseg.pseudo import Pseudo, dice_per_slice
from tumorsynth.methods.aslseg.slices import Slices

__all__ = ["Selection", "grow", "select"]


@dataclass(frozen=True, eq=False)
class Selection:
    """The outcome of one round's selection.

    Attributes
    ----------
    accepted : (N,) bool
        Per candidate slice.
    record : dict
        Counts, thresholds and, where hidden labels exist, the accepted pseudo-labels' quality.
    """

    accepted: np.ndarray
    record: dict[str, Any]


def _quality(pseudo: np.ndarray, hidden: Slices, where: np.ndarray) -> dict[str, Any]:
    """Dice per slice and pixel precision / recall of pseudo-labels against hidden labels."""
    known = where & hidden.known
    if not known.any():
        return {"n_known": 0, "dice_mean": None, "pixel_precision": None, "pixel_recall": None}
    p, h = pseudo[known], hidden.tumour[known]
    tp, n_p, n_h = int((p & h).sum()), int(p.sum()), int(h.sum())
    return {
        "n_known": int(known.sum()),
        "dice_mean": float(dice_per_slice(p, h).mean()),
        "pixel_precision": tp / n_p if n_p else None,
        "pixel_recall": tp / n_h if n_h else None,
    }


def select(
    pseudo: Pseudo,
    candidates: Slices,
    *,
    agreement_min: float,
    confidence_min: float,
    empty_ratio: float,
) -> Selection:
    """Pick the reliable slices (see the module).

    Parameters
    ----------
    pseudo : Pseudo
        The pipeline's output on ``candidates``.
    candidates : Slices
        The unlabelled slices (hidden labels in ``tumour`` where ``known``).
    agreement_min, confidence_min : float
        The thresholds.
    empty_ratio : float
        At most this many empty slices per accepted slice with tumour.
    """
    agree = pseudo.agreement >= agreement_min
    confident = pseudo.confidence >= confidence_min
    reliable = agree & confident
    tumour = pseudo.refined.any(axis=(1, 2))
    accepted = reliable & tumour
    empty = np.flatnonzero(reliable & ~tumour)
    cap = int(np.floor(empty_ratio * accepted.sum()))
    keep = empty[np.argsort(-pseudo.confidence[empty], kind="stable")[:cap]]
    accepted[keep] = True
    record = {
        "n_candidates": len(candidates),
        "agreement_min": agreement_min,
        "confidence_min": confidence_min,
        "n_agree": int(agree.sum()),
        "n_confident": int(confident.sum()),
        "n_reliable": int(reliable.sum()),
        "n_accepted": int(accepted.sum()),
        "n_accepted_tumour": int((accepted & tumour).sum()),
        "n_accepted_empty": int((accepted & ~tumour).sum()),
        "n_empty_over_cap": int(len(empty) - len(keep)),
        "accepted": _quality(pseudo.refined, candidates, accepted),
        "rejected": _quality(pseudo.refined, candidates, ~accepted),
    }
    return Selection(accepted, record)


def grow(
    labelled: Slices, unlabelled: Slices, accepted: np.ndarray, labels: np.ndarray
) -> tuple[Slices, Slices]:
    """The labelled set with the accepted slices (labelled with ``labels``, their pseudo-labels)
    and the unlabelled set without them."""
    accepted = np.asarray(accepted, bool)
    added = unlabelled.take(accepted).with_tumour(np.asarray(labels, bool)[accepted])
    return Slices.concat([labelled, added], labelled.size), unlabelled.take(~accepted)
