r"""The user's own scans with scan-level labels, learnt by multiple-instance learning.

The setting SPARS is motivated by (and its code does not have): a biopsy or pathology report says
"cancer in this scan: yes / no", and nothing says where. A CSV names the scans::

    case,label,mask
    scans/patient01.nii.gz,1,livers/patient01.nii.gz
    scans/patient02.nii.gz,0,livers/patient02.nii.gz

(paths relative to the CSV's folder). A scan is a bag of windows over its liver's box; its score
is the maximum over them, :math:`s = \max_k f(x_k)`, and the loss is the binary cross-entropy of
that maximum with the scan's label: a positive scan needs one window that scores high, a negative
scan none.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tumorsynth.errors import InputError
from tumorsynth.io.case import read_case
from tumorsynth.methods.spars.config import SparsConfig
from tumorsynth.methods.spars.volumes import WorkVolume, prepare_volume

__all__ = ["LabelledScan", "mil_loss", "read_scan_labels", "scan_windows"]


@dataclass(frozen=True, eq=False)
class LabelledScan:
    """A scan with its scan-level label: ``volume`` (its liver's box) and ``label`` (0 or 1)."""

    volume: WorkVolume
    label: int


def _rows(path: Path) -> list[dict[str, str]]:
    try:
        text = path.read_text()
    except OSError as err:
        raise InputError(f"{path}: cannot read the labels CSV ({err.strerror})") from None
    reader = csv.DictReader(text.splitlines())
    columns = {c.strip() for c in reader.fieldnames or ()}
    missing = {"case", "label", "mask"} - columns
    if missing:
        raise InputError(
            f"{path}: the labels CSV needs the columns case, label, mask; missing {sorted(missing)}"
        )
    rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in reader]
    if not rows:
        raise InputError(f"{path}: the labels CSV names no scan")
    return rows


def _checked_path(csv_path: Path, line: int, value: str, what: str) -> Path:
    if not value:
        raise InputError(f"{csv_path} line {line}: no {what} given")
    path = Path(value) if Path(value).is_absolute() else csv_path.parent / value
    if not path.exists():
        raise InputError(f"{csv_path} line {line}: {what} {value!r} does not exist ({path})")
    return path


def read_scan_labels(path: str | Path, config: SparsConfig) -> list[LabelledScan]:
    """Read the scans a labels CSV names, with their liver masks, as bags of windows.

    Every row is checked before any scan is read, so a CSV naming one missing scan fails at once.

    Raises
    ------
    InputError
        An unreadable CSV, a missing column, a label other than 0 or 1, a scan or mask that does
        not exist (with the line), an empty liver or a window larger than its box.
    """
    path = Path(path)
    rows = _rows(path)
    checked = []
    for line, row in enumerate(rows, start=2):
        if row["label"] not in ("0", "1"):
            raise InputError(f"{path} line {line}: label must be 0 or 1, got {row['label']!r}")
        image = _checked_path(path, line, row["case"], "scan")
        mask = _checked_path(path, line, row["mask"], "liver mask")
        checked.append((image, mask, int(row["label"])))
    if len({label for *_, label in checked}) < 2:
        raise InputError(f"{path}: the labels CSV needs scans of both labels (0 and 1)")
    scans = []
    for image, mask, label in checked:
        case = read_case(image, mask, config.organ_label).case
        volume = prepare_volume(
            np.asarray(case.image), np.asarray(case.organ), case.spacing_mm, config, str(image)
        )
        scans.append(LabelledScan(volume, label))
    return scans


def scan_windows(
    volume: WorkVolume, window_vox: tuple[int, int, int], n_max: int, rng: np.random.Generator
) -> np.ndarray:
    """A bag of windows of a scan: a stride-``window`` tiling of its box from a random offset,
    clamped inside the box, keeping windows that hold liver, at most ``n_max`` of them (a random
    subset): (K, 1, X, Y, Z) float32."""
    w = np.asarray(window_vox)
    hi = np.asarray(volume.shape) - w
    axes = [
        np.unique(np.minimum(np.arange(int(rng.integers(0, s)), h + s, s), h))
        for s, h in zip(w, hi, strict=True)
    ]
    corners = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    keep = [
        c
        for c in corners
        if volume.liver[tuple(slice(a, a + s) for a, s in zip(c, w, strict=False))].any()
    ]
    corners = np.asarray(keep if keep else corners)
    if len(corners) > n_max:
        corners = corners[rng.choice(len(corners), n_max, replace=False)]
    crops = [
        volume.image[tuple(slice(a, a + s) for a, s in zip(c, w, strict=False))] for c in corners
    ]
    return np.stack(crops)[:, None].astype(np.float32)


def mil_loss(
    net: nn.Module,
    scan: LabelledScan,
    window_vox: tuple[int, int, int],
    n_max: int,
    rng: np.random.Generator,
    device: torch.device,
) -> torch.Tensor:
    """Binary cross-entropy of a scan's maximum window logit with its label."""
    crops = torch.from_numpy(scan_windows(scan.volume, window_vox, n_max, rng)).to(device)
    top = net(crops).reshape(-1).max()
    target = torch.tensor(float(scan.label), device=device)
    return nn.functional.binary_cross_entropy_with_logits(top, target)
