r"""Precision post-processing of predicted label maps: tumour specks and tumours off the organ go.

A segmenter trained on synthetic tumours finds real ones, but on a real scan its tumour labels also
hold one-voxel specks and labels on bone, bowel or kidney, outside the liver. Three rules, applied
in this order to a (X, Y, Z) label map (0 background, 1 organ, 2 tumour) on its own grid:

1. **Largest organ** (``largest_organ``, off by default): keep the largest 26-connected component
   of organ and tumour together, as the reference's evaluation does
   (:func:`keep_largest_organ`).
2. **Tumour inside the organ** (``min_organ_contact``): each tumour component (26-connectivity) is
   kept only when at least this fraction of the voxels bordering it (its 26-neighbour shell, the
   volume's edge excluded) is predicted organ. A tumour inside the liver is wrapped in organ
   (fraction 1); one at the liver's surface borders the organ on one side (about 0.5); a speck on
   bone or bowel borders none (0). A component that fails becomes background. ``None`` keeps every
   tumour.
3. **Minimum size** (``min_tumour_mm3``): tumour components smaller than this volume (mm³, voxel
   count times the voxel volume) go: to organ where at least half of their border is organ (a
   speck inside the liver is liver), else to background. 0 keeps them all.

:data:`DEFAULT_POSTPROCESS` holds the defaults of ``tumorsynth predict``, chosen by measurement
(``benchmarks/transfer_precision.py``; the measurement is in ``docs/transfer.md``).

Examples
--------
>>> labels = np.zeros((12, 12, 12), np.uint8); labels[1:11, 1:11, 1:6] = 1
>>> labels[4:7, 4:7, 2:5] = 2      # a tumour of 27 voxels inside the organ
>>> labels[5, 5, 9] = 2            # a one-voxel speck outside it
>>> out = PostProcess(min_organ_contact=0.25, min_tumour_mm3=5.0)(labels, (1.0, 1.0, 1.0))
>>> int((out == 2).sum()), int(out[5, 5, 9])
(27, 0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from scipy import ndimage

from tumorsynth.errors import InputError

__all__ = [
    "DEFAULT_POSTPROCESS",
    "NO_POSTPROCESS",
    "SHARED_CODES",
    "PostProcess",
    "keep_largest_organ",
    "organ_contact",
    "postprocess_from_options",
    "postprocess_labels",
]

_CONNECTIVITY = np.ones((3, 3, 3), dtype=bool)

SHARED_CODES: tuple[tuple[int, int], ...] = ((1, 2),)
"""(organ code, tumour code) pairs of a label map of the ``shared`` scheme: 1 organ, 2 tumour."""


@dataclass(frozen=True)
class PostProcess:
    """Post-processing of predicted label maps (see the module for the rules and their order).

    Attributes
    ----------
    largest_organ : bool
        Keep only the largest connected organ with its tumours.
    min_organ_contact : float or None
        Keep a tumour component only when at least this fraction (0 to 1) of the voxels bordering
        it is organ (0 or None: keep every tumour).
    min_tumour_mm3 : float
        Drop tumour components smaller than this, mm³ (0 keeps all).
    """

    largest_organ: bool = False
    min_organ_contact: float | None = None
    min_tumour_mm3: float = 0.0

    def __post_init__(self) -> None:
        contact = self.min_organ_contact
        if contact is not None and not 0.0 <= float(contact) <= 1.0:
            raise InputError(f"min_organ_contact: a fraction in [0, 1] or None, got {contact!r}")
        if not float(self.min_tumour_mm3) >= 0.0:
            raise InputError(f"min_tumour_mm3: a volume >= 0 mm³, got {self.min_tumour_mm3!r}")

    @property
    def is_identity(self) -> bool:
        """Whether it changes nothing."""
        return not self.largest_organ and self.min_organ_contact is None and not self.min_tumour_mm3

    def __call__(
        self,
        labels: np.ndarray,
        spacing_mm: Sequence[float],
        codes: Sequence[tuple[int, int]] = SHARED_CODES,
    ) -> np.ndarray:
        """``labels`` post-processed (a new (X, Y, Z) array of the same dtype); see
        :func:`postprocess_labels`."""
        return postprocess_labels(labels, spacing_mm, self, codes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """One line for logs and reports, e.g. ``tumours >= 50 mm³, >= 50 % bordered by organ``."""
        parts = ["largest organ"] if self.largest_organ else []
        if self.min_organ_contact is not None:
            parts.append(f"tumours >= {100 * self.min_organ_contact:g} % bordered by organ")
        if self.min_tumour_mm3:
            parts.append(f"tumours >= {self.min_tumour_mm3:g} mm³")
        return ", ".join(parts) or "none"


NO_POSTPROCESS = PostProcess()
"""Raw labels, as the network gives them."""

DEFAULT_POSTPROCESS = PostProcess(largest_organ=False, min_organ_contact=0.25, min_tumour_mm3=50.0)
"""The defaults of ``tumorsynth predict``, chosen by measurement (``docs/transfer.md``)."""


def keep_largest_organ(
    labels: np.ndarray, codes: Sequence[tuple[int, int]] | None = None
) -> np.ndarray:
    """Organ-restricted post-processing: keep the largest 26-connected component of organ and
    tumour together (the liver with the tumours in it) and clear everything else.

    ``codes``: (organ code, tumour code) pairs, each organ kept on its own (a map of several
    organs keeps the largest of each); None: every nonzero label is one organ."""
    if codes is None:
        return _keep_largest(labels, labels > 0)
    out = labels.copy()
    for organ_code, tumour_code in codes:
        out = _keep_largest(out, (labels == organ_code) | (labels == tumour_code))
    return out


def _keep_largest(labels: np.ndarray, foreground: np.ndarray) -> np.ndarray:
    """``labels`` cleared in ``foreground`` outside its largest 26-connected component."""
    components, n = ndimage.label(foreground, structure=_CONNECTIVITY)
    if n <= 1:
        return labels
    sizes = ndimage.sum_labels(foreground, components, index=np.arange(1, n + 1))
    drop = foreground & (components != 1 + int(np.argmax(sizes)))
    return np.where(drop, 0, labels).astype(labels.dtype)


def organ_contact(
    labels: np.ndarray, tumour_label: int = 2, organ_label: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The tumour components of a label map and how much of each one's border is organ.

    Parameters
    ----------
    labels : (X, Y, Z) int array
    tumour_label, organ_label : int

    Returns
    -------
    components : (X, Y, Z) int32 array
        0 outside the tumour, ``k`` in component ``k`` (26-connectivity).
    contact : (n,) float array
        Per component, the fraction of the voxels 26-adjacent to it (within the volume) that are
        organ; 0 for a component that fills its whole box up to the volume's edge.
    n_voxels : (n,) int array
        Per component, its voxel count.
    """
    tumour = labels == tumour_label
    components, n = ndimage.label(tumour, structure=_CONNECTIVITY)
    contact, n_voxels = np.zeros(n), np.zeros(n, np.int64)
    for k, box in enumerate(ndimage.find_objects(components), start=1):
        grown = tuple(
            slice(max(s.start - 1, 0), min(s.stop + 1, size))
            for s, size in zip(box, labels.shape, strict=True)
        )
        inside = components[grown] == k
        shell = ndimage.binary_dilation(inside, _CONNECTIVITY) & ~inside
        n_voxels[k - 1] = int(inside.sum())
        n_shell = int(shell.sum())
        if n_shell:
            contact[k - 1] = float((labels[grown][shell] == organ_label).sum()) / n_shell
    return components, contact, n_voxels


def postprocess_labels(
    labels: np.ndarray,
    spacing_mm: Sequence[float],
    rules: PostProcess = DEFAULT_POSTPROCESS,
    codes: Sequence[tuple[int, int]] = SHARED_CODES,
) -> np.ndarray:
    """Apply the rules of :class:`PostProcess` to a label map (0 background, 1 organ, 2 tumour).

    Parameters
    ----------
    labels : (X, Y, Z) int array
    spacing_mm : sequence of 3 float
        Voxel size along (X, Y, Z), mm (sizes are volumes in mm³).
    rules : PostProcess
    codes : sequence of (int, int)
        The (organ code, tumour code) pairs of the map (default ``((1, 2),)``; a ``per_organ``
        map of several organs: one pair each, every organ's tumours judged against its organ).

    Returns
    -------
    (X, Y, Z) array
        A new array of ``labels``' dtype; organ voxels are never added outside where a dropped
        tumour speck was surrounded by organ.
    """
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise InputError(f"post-processing needs a 3-D (X, Y, Z) label map, got {labels.shape}")
    codes = tuple((int(o), int(t)) for o, t in codes)
    out = keep_largest_organ(labels, codes) if rules.largest_organ else labels.copy()
    if rules.min_organ_contact is None and not rules.min_tumour_mm3:
        return out
    voxel_mm3 = float(np.prod([float(s) for s in spacing_mm]))
    for organ_code, tumour_code in codes:
        _filter_tumours(out, rules, voxel_mm3, organ_code, tumour_code)
    return out


def _filter_tumours(
    out: np.ndarray, rules: PostProcess, voxel_mm3: float, organ_code: int, tumour_code: int
) -> None:
    """Rules 2 and 3 for one organ's tumours, in place."""
    components, contact, n_voxels = organ_contact(out, tumour_code, organ_code)
    if not n_voxels.size:
        return
    keep = contact >= (rules.min_organ_contact or 0.0)
    big = n_voxels * voxel_mm3 >= rules.min_tumour_mm3
    surrounded = contact >= 0.5  # a dropped speck at least half wrapped in organ is organ
    # per component: the tumour kept, a speck inside the organ made organ, or gone
    value = np.where(keep & big, tumour_code, np.where(keep & surrounded, organ_code, 0))
    lookup = np.concatenate([[0], value]).astype(out.dtype)
    tumour = components > 0
    out[tumour] = lookup[components[tumour]]


def postprocess_from_options(
    min_tumour_mm3: float | None = None,
    min_organ_contact: float | None = None,
    *,
    tumour_anywhere: bool = False,
    raw: bool = False,
) -> PostProcess | None:
    """The post-processing a command's options ask for: :data:`DEFAULT_POSTPROCESS` with the
    values given (None keeps the default); ``tumour_anywhere`` drops the organ-contact rule;
    ``raw`` returns None (no post-processing; refused with any other option).

    Raises
    ------
    InputError
        ``raw`` with another option, or ``tumour_anywhere`` with ``min_organ_contact``.
    """
    if raw and (min_tumour_mm3 is not None or min_organ_contact is not None or tumour_anywhere):
        raise InputError("--raw writes the labels as they are: it takes no other post-processing")
    if tumour_anywhere and min_organ_contact is not None:
        raise InputError("--tumour-anywhere and --min-organ-contact contradict each other")
    if raw:
        return None
    rules = DEFAULT_POSTPROCESS
    if min_tumour_mm3 is not None:
        rules = replace(rules, min_tumour_mm3=float(min_tumour_mm3))
    if min_organ_contact is not None or tumour_anywhere:
        rules = replace(rules, min_organ_contact=min_organ_contact)
    return rules
