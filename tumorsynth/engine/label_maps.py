"""Organs by name: their values in the label maps of TotalSegmentator, BTCV and AMOS (one table),
and the label codes of datasets and segmenters that hold several organs.

A label map gives the organ's mask by name: ``select_organ("pancreas")`` is label 7 of a
TotalSegmentator (v2, ``total`` task) map, ``select_organ("pancreas", "btcv")`` label 11 of a BTCV
map; ``kidney`` is both kidneys. ``select_organ(label=N)`` takes any value of any map.

Examples
--------
>>> select_organ("kidney").values
(2, 3)
>>> select_organ("liver", "btcv").describe()
'liver (BTCV label 6)'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tumorsynth.errors import InputError

__all__ = [
    "LABEL_MAPS",
    "LABEL_MAP_MAX",
    "LABEL_SCHEMES",
    "ORGANS",
    "ORGAN_LABELS",
    "PER_ORGAN_CODES",
    "OrganSelection",
    "label_codes",
    "n_classes",
    "select_organ",
]

ORGANS = ("liver", "pancreas", "kidney")
"""The organs with a tumour preset of their own (``load_config(name)``)."""

LABEL_MAPS = {
    "totalsegmentator": "TotalSegmentator",
    "totalsegmentator_v1": "TotalSegmentator v1",
    "btcv": "BTCV",
    "amos": "AMOS",
}
"""The label maps whose organ values :data:`ORGAN_LABELS` holds, and their names in messages.
``totalsegmentator`` is the ``total`` task of TotalSegmentator v2 (Wasserthal et al., Radiology: AI
2023; ``totalsegmentator/map_to_binary.py``), whose first labels differ from v1's (pancreas 7 in
v2, 10 in v1). BTCV: the 13 organs of the MICCAI 2015 Multi-Atlas Labeling Beyond the Cranial
Vault challenge (liver 6, as the reference's ``transfer_label.py`` reads it). AMOS 2022: its 15
abdominal organs."""

LABEL_MAP_MAX = {"totalsegmentator": 117, "totalsegmentator_v1": 104, "btcv": 13, "amos": 15}
"""The largest value of each label map: a map that holds a larger one is another map."""

_KIDNEYS = {
    "totalsegmentator": (2, 3),
    "totalsegmentator_v1": (2, 3),
    "btcv": (2, 3),
    "amos": (2, 3),
}

ORGAN_LABELS: dict[str, dict[str, tuple[int, ...]]] = {
    "liver": {"totalsegmentator": (5,), "totalsegmentator_v1": (5,), "btcv": (6,), "amos": (6,)},
    "pancreas": {
        "totalsegmentator": (7,),
        "totalsegmentator_v1": (10,),
        "btcv": (11,),
        "amos": (10,),
    },
    "kidney": _KIDNEYS,
    "kidney_right": {name: values[:1] for name, values in _KIDNEYS.items()},
    "kidney_left": {name: values[1:] for name, values in _KIDNEYS.items()},
}
"""Organ name -> label map -> the organ's values (``kidney``: both kidneys)."""

LABEL_SCHEMES = ("shared", "per_organ")
"""How a dataset or segmenter with several organs labels them: ``shared``, the three labels of
one organ (0 background, 1 organ, 2 tumour, whichever the organ); ``per_organ``, a pair of codes
per organ (:data:`PER_ORGAN_CODES`), the same for every run, so that any segmenter's output is read
without knowing which organs it was trained on."""

PER_ORGAN_CODES: dict[str, tuple[int, int]] = {
    "liver": (1, 2),
    "pancreas": (3, 4),
    "kidney": (5, 6),
}
"""Organ -> (organ code, tumour code) of the ``per_organ`` scheme."""


def _base_organ(organ: str) -> str:
    return "kidney" if organ.startswith("kidney") else organ


def label_codes(organ: str, scheme: str = "shared") -> tuple[int, int]:
    """(organ code, tumour code) of ``organ`` in ``scheme`` (:data:`LABEL_SCHEMES`)."""
    if scheme not in LABEL_SCHEMES:
        raise InputError(f"unknown label scheme {scheme!r}; choose {' or '.join(LABEL_SCHEMES)}")
    if scheme == "shared":
        return 1, 2
    base = _base_organ(organ)
    if base not in PER_ORGAN_CODES:
        raise InputError(f"organ {organ!r} has no per-organ codes; organs: {', '.join(ORGANS)}")
    return PER_ORGAN_CODES[base]


def n_classes(scheme: str = "shared") -> int:
    """Classes of a segmenter's output in ``scheme`` (background included)."""
    if scheme == "shared":
        return 3
    return 1 + 2 * len(PER_ORGAN_CODES)


@dataclass(frozen=True)
class OrganSelection:
    """Which values of a label map are the organ.

    Attributes
    ----------
    values : tuple of int
        The organ's label values.
    organ : str or None
        Its name (None when given by value).
    label_map : str or None
        The map the values come from (a key of :data:`LABEL_MAPS`; None when given by value).
    """

    values: tuple[int, ...]
    organ: str | None = None
    label_map: str | None = None

    def describe(self) -> str:
        """How a message names the selection: ``pancreas (TotalSegmentator label 7)``."""
        word = "label" if len(self.values) == 1 else "labels"
        numbers = ", ".join(str(v) for v in self.values)
        if self.organ is None:
            return f"{word} {numbers}"
        where = f"{LABEL_MAPS.get(self.label_map, self.label_map)} " if self.label_map else ""
        return f"{self.organ} ({where}{word} {numbers})"

    def to_record(self) -> dict[str, Any]:
        """JSON-ready fields (what a manifest records)."""
        return {"organ": self.organ, "label_map": self.label_map, "values": list(self.values)}

    @classmethod
    def from_record(cls, record: Any) -> OrganSelection | None:
        """The selection of :meth:`to_record` (or a bare value, as older manifests hold)."""
        if record is None:
            return None
        if isinstance(record, Mapping):
            return cls(tuple(int(v) for v in record["values"]), record.get("organ"),
                       record.get("label_map"))  # fmt: skip
        if isinstance(record, Sequence) and not isinstance(record, str):
            return cls(tuple(int(v) for v in record))
        return cls((int(record),))


def select_organ(
    organ: str | None = None,
    label_map: str = "totalsegmentator",
    label: int | Sequence[int] | None = None,
) -> OrganSelection | None:
    """The label values of ``organ`` in ``label_map``, or the values ``label`` (which win).

    Parameters
    ----------
    organ : str, optional
        ``liver``, ``pancreas``, ``kidney`` (both), ``kidney_left`` or ``kidney_right``.
    label_map : str
        A key of :data:`LABEL_MAPS`.
    label : int or sequence of int, optional
        The organ's values, given directly (``--organ-label``); ``organ`` then only names it.

    Returns
    -------
    OrganSelection or None
        None when neither is given (a 0/1 mask).

    Raises
    ------
    InputError
        An organ or label map this table does not hold, or a label below 1.
    """
    if label is not None:
        values = (label,) if isinstance(label, int) else tuple(label)
        if not values or min(int(v) for v in values) < 1:
            raise InputError(f"--organ-label must be 1 or more, got {label!r}")
        return OrganSelection(tuple(int(v) for v in values), organ, None)
    if organ is None:
        return None
    if organ not in ORGAN_LABELS:
        raise InputError(f"unknown organ {organ!r}; choose from {', '.join(ORGAN_LABELS)}")
    if label_map not in LABEL_MAPS:
        raise InputError(
            f"unknown label map {label_map!r}; choose from {', '.join(LABEL_MAPS)}, or give "
            "the organ's value with --organ-label"
        )
    return OrganSelection(ORGAN_LABELS[organ][label_map], organ, label_map)
