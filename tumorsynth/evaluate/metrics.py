r"""Segmentation metrics of a predicted label map against its ground truth, in physical units.

Arrays are (X, Y, Z) label maps (0 background, 1 organ (liver), 2 tumour, as LiTS, MSD Task03 and
tumorsynth write them) or binary masks; ``spacing_mm`` is the voxel size along the same axes.

- **Dice** :math:`2|P \cap G| / (|P| + |G|)`.
- **NSD**, the normalised surface Dice (Nikolov et al. 2021): the fraction of both boundaries lying
  within ``tolerance_mm`` (default 2 mm) of the other, from MONAI's ``compute_surface_dice`` with
  the voxel spacing, so distances are in mm.
- **Empty masks:** both empty gives Dice 1.0 and NSD 1.0 (nothing to find, nothing found); one
  empty gives 0.0.
- **Lesions** are the connected components of a tumour mask under 26-connectivity (voxels touching
  by a face, an edge or a corner), from ``scipy.ndimage.label``. A lesion's size is its equivalent
  radius :math:`r = (3V / 4\pi)^{1/3}` in mm, with :math:`V` its voxel count times the voxel volume
  in mm³; radii fall in the half-open bins of :data:`RADIUS_BINS_MM`.
- **Detection:** a ground-truth lesion is detected when at least one predicted tumour voxel lies in
  it; a false positive is a predicted tumour component with no ground-truth tumour voxel in it.

Everything here is a pure function of arrays, for reuse per case (e.g. by a benchmark over
synthetic cases); :func:`tumorsynth.evaluate.summary.summarise` pools cases, and
:mod:`tumorsynth.evaluate.report` reads files and writes the reports.

References
----------
Nikolov S. et al., "Clinically applicable segmentation of head and neck anatomy for radiotherapy:
deep learning algorithm development and validation study", J Med Internet Res 23(7), 2021.
https://doi.org/10.2196/26151
"""

from __future__ import annotations

import bisect
import itertools
import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from tumorsynth.errors import InputError, TumorSynthError

__all__ = [
    "BIN_NAMES",
    "CONNECTIVITY",
    "RADIUS_BINS_MM",
    "CaseMetrics",
    "Detection",
    "Lesion",
    "bin_name",
    "detection",
    "dice",
    "equivalent_radius_mm",
    "evaluate_case",
    "lesions",
    "surface_dice",
]

#: Edges of the equivalent-radius bins, mm: [0, 5), [5, 10), [10, 20), [20, inf).
RADIUS_BINS_MM = (0.0, 5.0, 10.0, 20.0, math.inf)
#: Names of the bins of :data:`RADIUS_BINS_MM`; ``">20"`` holds 20 mm and more.
BIN_NAMES = tuple(
    f"{lo:g}-{hi:g}" if math.isfinite(hi) else f">{lo:g}"
    for lo, hi in itertools.pairwise(RADIUS_BINS_MM)
)
#: Structuring element of the connected components: 26-connectivity.
CONNECTIVITY = np.ones((3, 3, 3), dtype=bool)


def bin_name(radius_mm: float) -> str:
    """The radius bin holding ``radius_mm``: ``"0-5"``, ``"5-10"``, ``"10-20"`` or ``">20"``.

    Bins are half-open, [lo, hi): 5.0 mm falls in ``"5-10"`` and 20.0 mm in ``">20"``.

    >>> bin_name(4.99), bin_name(5.0), bin_name(20.0)
    ('0-5', '5-10', '>20')
    """
    r = float(radius_mm)
    if not r >= 0.0:  # also NaN
        raise ValueError(f"a radius must be >= 0 mm, got {radius_mm!r}")
    return BIN_NAMES[min(bisect.bisect_right(RADIUS_BINS_MM, r) - 1, len(BIN_NAMES) - 1)]


def equivalent_radius_mm(volume_mm3: float) -> float:
    r"""Radius of the ball of volume ``volume_mm3``: :math:`(3V / 4\pi)^{1/3}`, mm.

    >>> round(equivalent_radius_mm(4 / 3 * math.pi * 8.0**3), 9)
    8.0
    """
    return float(np.cbrt(3.0 * float(volume_mm3) / (4.0 * math.pi)))


def _spacing(spacing_mm: Sequence[float]) -> tuple[float, float, float]:
    spacing = [float(s) for s in np.ravel(spacing_mm)]
    if len(spacing) != 3 or not all(math.isfinite(s) and s > 0 for s in spacing):
        raise InputError(f"spacing_mm must be 3 positive finite values (mm), got {spacing_mm!r}")
    return spacing[0], spacing[1], spacing[2]


def _same_shape(pred: np.ndarray, gt: np.ndarray) -> None:
    if pred.shape != gt.shape:
        raise InputError(
            f"prediction {pred.shape} and ground truth {gt.shape} differ in shape; "
            "they must be on one voxel grid"
        )
    if pred.ndim != 3:
        raise InputError(f"need 3-D (X, Y, Z) masks, got {pred.ndim}-D arrays {pred.shape}")


def _pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both as boolean (X, Y, Z) masks (nonzero is foreground), of one shape."""
    pred, gt = np.asarray(pred), np.asarray(gt)
    _same_shape(pred, gt)
    return pred.astype(bool, copy=False), gt.astype(bool, copy=False)


def dice(pred: np.ndarray, gt: np.ndarray) -> float:
    r"""Dice coefficient of two masks of one shape (nonzero is foreground).

    Returns
    -------
    float
        :math:`2|P \cap G| / (|P| + |G|)` in [0, 1]; 1.0 when both are empty.

    >>> a = np.zeros((4, 4, 4), bool); a[:2] = True
    >>> b = np.zeros((4, 4, 4), bool); b[1:3] = True
    >>> dice(a, b), dice(a, a), dice(~a & a, ~a & a)
    (0.5, 1.0, 1.0)
    """
    p, g = _pair(pred, gt)
    total = int(np.count_nonzero(p)) + int(np.count_nonzero(g))
    if total == 0:
        return 1.0
    return 2.0 * int(np.count_nonzero(p & g)) / total


def surface_dice(
    pred: np.ndarray, gt: np.ndarray, spacing_mm: Sequence[float], tolerance_mm: float = 2.0
) -> float:
    """Normalised surface Dice (NSD) of two masks at a tolerance in mm.

    Parameters
    ----------
    pred, gt : (X, Y, Z) array
        Masks of one shape (nonzero is foreground).
    spacing_mm : sequence of 3 float
        Voxel size along (X, Y, Z), mm.
    tolerance_mm : float
        A boundary voxel counts as correct within this distance of the other boundary, mm.

    Returns
    -------
    float
        In [0, 1]: 1.0 when both masks are empty, 0.0 when only one is.

    Notes
    -----
    MONAI's ``compute_surface_dice`` (boundaries as edge voxels, Euclidean distances scaled by the
    spacing), which needs ``torch`` and ``monai`` (the ``train`` extra); they are imported on the
    first call.
    """
    p, g = _pair(pred, gt)
    spacing = _spacing(spacing_mm)
    tolerance = float(tolerance_mm)
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise InputError(f"tolerance_mm must be a finite value >= 0 mm, got {tolerance_mm!r}")
    has_p, has_g = bool(p.any()), bool(g.any())
    if not (has_p and has_g):
        return float(has_p == has_g)
    try:
        import torch
        from monai.metrics import compute_surface_dice
    except ImportError as err:
        raise TumorSynthError(
            f"the surface Dice needs torch and MONAI ({err}); install them with "
            "`pip install 'tumorsynth[train]'`"
        ) from None
    box = _box(p, g)  # edges and their distances are those of the whole volume
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # MONAI's own use of its deprecations
        nsd = compute_surface_dice(
            torch.from_numpy(np.ascontiguousarray(p[box]))[None, None],
            torch.from_numpy(np.ascontiguousarray(g[box]))[None, None],
            class_thresholds=[tolerance],
            include_background=True,  # the one channel is the tumour
            spacing=list(spacing),
        )
    return float(nsd[0, 0])


@dataclass(frozen=True)
class Lesion:
    r"""One connected component of a tumour mask.

    Attributes
    ----------
    index : int
        Its value in the component map returned by :func:`lesions` (1, 2, ...).
    n_voxels : int
    volume_mm3 : float
        ``n_voxels`` times the voxel volume, mm³.
    radius_mm : float
        Equivalent radius :math:`(3V / 4\pi)^{1/3}`, mm.
    centroid_vox : tuple of 3 float
        Centre of mass, (X, Y, Z) voxel indices.
    """

    index: int
    n_voxels: int
    volume_mm3: float
    radius_mm: float
    centroid_vox: tuple[float, float, float]

    @property
    def bin(self) -> str:
        """Its radius bin (:func:`bin_name`)."""
        return bin_name(self.radius_mm)

    def to_dict(self) -> dict:
        return {**asdict(self), "centroid_vox": list(self.centroid_vox), "bin": self.bin}


def lesions(mask: np.ndarray, spacing_mm: Sequence[float]) -> tuple[np.ndarray, list[Lesion]]:
    """Connected components (26-connectivity) of a mask, with their sizes.

    Parameters
    ----------
    mask : (X, Y, Z) array
        Nonzero is foreground.
    spacing_mm : sequence of 3 float
        Voxel size along (X, Y, Z), mm.

    Returns
    -------
    labels : (X, Y, Z) int32 array
        0 outside, ``k`` in component ``k``.
    found : list of Lesion
        One per component, in label order (scan order of their first voxel).

    >>> m = np.zeros((6, 6, 6), bool); m[0:2, 0:2, 0:2] = True; m[3:5, 3:5, 3:5] = True
    >>> _, found = lesions(m, (1.0, 1.0, 1.0))
    >>> [(c.index, c.n_voxels) for c in found], found[0].centroid_vox
    ([(1, 8), (2, 8)], (0.5, 0.5, 0.5))
    """
    mask = np.asarray(mask).astype(bool, copy=False)
    if mask.ndim != 3:
        raise InputError(f"need a 3-D (X, Y, Z) mask, got a {mask.ndim}-D array {mask.shape}")
    labels = np.zeros(mask.shape, np.int32)
    box = _box(mask)
    if box is None:
        return labels, []
    labels[box], found, _ = _components(mask[box], _spacing(spacing_mm), box)
    return labels, found


def _box(*masks: np.ndarray) -> tuple[slice, ...] | None:
    """The bounding box of the foreground of all masks, grown by one voxel; None if all are empty."""
    box = []
    for axis in range(3):
        others = tuple(a for a in range(3) if a != axis)
        hit = np.zeros(masks[0].shape[axis], bool)
        for m in masks:
            hit |= m.any(axis=others)
        where = np.flatnonzero(hit)
        if where.size == 0:
            return None
        box.append(slice(max(int(where[0]) - 1, 0), int(where[-1]) + 2))
    return tuple(box)


def _components(
    mask: np.ndarray, spacing: tuple[float, float, float], box: tuple[slice, ...]
) -> tuple[np.ndarray, list[Lesion], list[tuple[slice, ...]]]:
    """Label the components of a cropped mask; their centroids are given in the full volume, whose
    crop ``box`` is. Also returns each component's bounding box in the crop."""
    voxel_mm3 = float(np.prod(spacing))
    labels, _ = ndimage.label(mask, structure=CONNECTIVITY)
    boxes = ndimage.find_objects(labels)
    found = []
    for k, b in enumerate(boxes, start=1):
        where = np.nonzero(labels[b] == k)
        n = len(where[0])
        x, y, z = (
            float(w.mean()) + s.start + o.start for w, s, o in zip(where, b, box, strict=True)
        )
        volume = n * voxel_mm3
        found.append(Lesion(k, n, volume, equivalent_radius_mm(volume), (x, y, z)))
    return labels, found, boxes


@dataclass(frozen=True)
class Detection:
    """Lesion-wise detection in one case.

    Attributes
    ----------
    lesions : tuple of Lesion
        The ground-truth lesions.
    detected : tuple of bool
        Per ground-truth lesion: at least one predicted tumour voxel lies in it.
    false_positives : tuple of Lesion
        Predicted tumour components with no ground-truth tumour voxel in them.
    """

    lesions: tuple[Lesion, ...]
    detected: tuple[bool, ...]
    false_positives: tuple[Lesion, ...]

    @property
    def n_lesions(self) -> int:
        return len(self.lesions)

    @property
    def n_detected(self) -> int:
        return sum(self.detected)

    @property
    def n_false_positives(self) -> int:
        return len(self.false_positives)

    def per_bin(self) -> dict[str, tuple[int, int]]:
        """``{bin name: (n detected, n lesions)}`` for every bin of :data:`BIN_NAMES`."""
        counts = {name: [0, 0] for name in BIN_NAMES}
        for lesion, hit in zip(self.lesions, self.detected, strict=True):
            counts[lesion.bin][0] += int(hit)
            counts[lesion.bin][1] += 1
        return {name: (d, n) for name, (d, n) in counts.items()}

    def to_dict(self) -> dict:
        return {
            "lesions": [
                {**c.to_dict(), "detected": hit}
                for c, hit in zip(self.lesions, self.detected, strict=True)
            ],
            "false_positives": [c.to_dict() for c in self.false_positives],
        }


def detection(pred: np.ndarray, gt: np.ndarray, spacing_mm: Sequence[float]) -> Detection:
    """Which ground-truth lesions a predicted tumour mask finds, and its false positives.

    Parameters
    ----------
    pred, gt : (X, Y, Z) array
        Tumour masks of one shape (nonzero is tumour).
    spacing_mm : sequence of 3 float
        Voxel size along (X, Y, Z), mm.

    Returns
    -------
    Detection
        A ground-truth component (26-connectivity) is detected when at least one predicted voxel
        lies in it; a predicted component is a false positive when no ground-truth voxel does.
    """
    p, g = _pair(pred, gt)
    spacing = _spacing(spacing_mm)
    box = _box(p, g)
    if box is None:
        return Detection((), (), ())
    p, g = p[box], g[box]
    gt_labels, gt_lesions, gt_boxes = _components(g, spacing, box)
    pred_labels, pred_lesions, pred_boxes = _components(p, spacing, box)
    # a predicted voxel in each ground-truth component; a ground-truth voxel in each predicted one
    detected = tuple(bool(p[b][gt_labels[b] == k].any()) for k, b in enumerate(gt_boxes, 1))
    false_positives = tuple(
        c for c, b in zip(pred_lesions, pred_boxes, strict=True)
        if not g[b][pred_labels[b] == c.index].any()
    )  # fmt: skip
    return Detection(tuple(gt_lesions), detected, false_positives)


@dataclass(frozen=True)
class CaseMetrics:
    """The metrics of one case.

    Attributes
    ----------
    dice : float
        Tumour Dice.
    nsd : float
        Tumour normalised surface Dice at ``tolerance_mm``.
    organ_dice : float or None
        Dice of the organ including its tumours (the LiTS liver score); None when the ground truth
        has no organ voxel or no organ label was given.
    detection : Detection
    tolerance_mm : float
        NSD tolerance, mm.
    """

    dice: float
    nsd: float
    organ_dice: float | None
    detection: Detection
    tolerance_mm: float

    def to_dict(self) -> dict:
        """A JSON-ready dict: the scores, the counts and every lesion."""
        d = self.detection
        return {
            "dice": self.dice,
            "nsd": self.nsd,
            "organ_dice": self.organ_dice,
            "tolerance_mm": self.tolerance_mm,
            "n_lesions": d.n_lesions,
            "n_detected": d.n_detected,
            "n_false_positives": d.n_false_positives,
            **d.to_dict(),
        }


def evaluate_case(
    pred_label: np.ndarray,
    gt_label: np.ndarray,
    spacing_mm: Sequence[float],
    *,
    tumour_label: int = 2,
    organ_label: int | None = 1,
    tolerance_mm: float = 2.0,
) -> CaseMetrics:
    """Tumour Dice and NSD, organ Dice and lesion-wise detection of one predicted label map.

    Parameters
    ----------
    pred_label, gt_label : (X, Y, Z) array
        Label maps on one grid (e.g. 0 background, 1 organ, 2 tumour).
    spacing_mm : sequence of 3 float
        Voxel size along (X, Y, Z), mm.
    tumour_label : int
        The tumour's value: tumour is ``label == tumour_label``.
    organ_label : int or None
        The organ's value; the organ is ``organ_label`` or ``tumour_label``. None: no organ Dice.
    tolerance_mm : float
        NSD tolerance, mm.

    Returns
    -------
    CaseMetrics

    Raises
    ------
    InputError
        Label maps of different shapes (the message names both), a bad spacing or tolerance, or
        equal organ and tumour labels.

    >>> gt = np.zeros((8, 8, 8), np.uint8); gt[1:7, 1:7, 1:7] = 1; gt[2:4, 2:4, 2:4] = 2
    >>> m = evaluate_case(gt, gt, (1.0, 1.0, 2.5))
    >>> m.dice, m.organ_dice, m.detection.n_detected
    (1.0, 1.0, 1)
    """
    pred_label, gt_label = np.asarray(pred_label), np.asarray(gt_label)
    _same_shape(pred_label, gt_label)
    if organ_label is not None and organ_label == tumour_label:
        raise InputError(f"organ and tumour labels are both {tumour_label}; they must differ")
    pred, gt = pred_label == tumour_label, gt_label == tumour_label
    organ_dice = None
    if organ_label is not None and (gt_label == organ_label).any():
        organ_dice = dice(pred | (pred_label == organ_label), gt | (gt_label == organ_label))
    return CaseMetrics(
        dice=dice(pred, gt),
        nsd=surface_dice(pred, gt, spacing_mm, tolerance_mm),
        organ_dice=organ_dice,
        detection=detection(pred, gt, spacing_mm),
        tolerance_mm=float(tolerance_mm),
    )
