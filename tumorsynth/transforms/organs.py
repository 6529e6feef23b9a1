"""Which voxels of a transform's label are the organ, and how the tumour is written back into it.

A transform's label is either a 0/1 organ mask (the reference's convention: the organ is 1, the
tumour becomes 2, and a label that already holds a 2 passes through) or a multi-label map
(TotalSegmentator's, BTCV's, ...) whose organ is named (``organ="pancreas"``, with ``label_map``)
or given by value (``organ_label``): the map is kept, and the tumour's voxels, exophytic ones
included, take ``tumour_label`` (:data:`MAP_TUMOUR_LABEL` by default, above every value of the
maps of :data:`tumorsynth.engine.label_maps.LABEL_MAPS`); a map that already holds it passes
through.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tumorsynth.engine.label_maps import select_organ
from tumorsynth.errors import InputError

__all__ = ["MAP_TUMOUR_LABEL", "LabelSpec", "default_config", "label_spec"]

MAP_TUMOUR_LABEL = 200
"""The tumour's value in a multi-label map by default (TotalSegmentator's labels stop at 117)."""


@dataclass(frozen=True)
class LabelSpec:
    """How a transform reads and writes its label.

    Attributes
    ----------
    values : tuple of int or None
        The organ's values in a multi-label map; None for a 0/1 mask.
    tumour : int
        The tumour's value on output.
    organ : str
        The organ's name (its preset is the transform's default config).
    """

    values: tuple[int, ...] | None
    tumour: int
    organ: str = "liver"

    def organ_of(self, label: Any) -> Any | None:
        """The 0/1 organ of an (X, Y, Z) label (NumPy, or a CUDA tensor viewed as CuPy), or None
        when the label is not eligible: no organ voxel, or a tumour already in it."""
        if int(np.prod(label.shape)) == 0:
            return None
        if self.values is None:
            return None if float(label.max()) != 1 else label == 1
        if bool((label == self.tumour).any()):
            return None
        organ = label == self.values[0]
        for value in self.values[1:]:
            organ = organ | (label == value)
        return organ if bool(organ.any()) else None

    def merged(self, label: Any, result_label: Any) -> Any:
        """The output label: the renderer's (0, 1 organ, 2 tumour) for a 0/1 mask; for a map, the
        map with the tumour's voxels set to :attr:`tumour`."""
        if self.values is None:
            return result_label
        out = label.clone() if hasattr(label, "clone") else label.copy()  # torch, NumPy, CuPy
        out[result_label == 2] = self.tumour
        return out


def label_spec(
    organ: str | None = None,
    label_map: str = "totalsegmentator",
    organ_label: int | Sequence[int] | None = None,
    tumour_label: int | None = None,
) -> LabelSpec:
    """The :class:`LabelSpec` of a transform's arguments: a 0/1 mask when neither ``organ`` nor
    ``organ_label`` is given, else a map (see the module).

    Raises
    ------
    InputError
        An unknown organ or label map, or a tumour value that is one of the organ's.
    """
    selection = select_organ(organ, label_map, organ_label)
    name = organ or "liver"
    if selection is None:
        if tumour_label not in (None, 2):
            raise InputError("tumour_label is for label maps (give organ or organ_label)")
        return LabelSpec(None, 2, name)
    tumour = MAP_TUMOUR_LABEL if tumour_label is None else int(tumour_label)
    if tumour in selection.values:
        raise InputError(f"tumour_label {tumour} is the organ's own value ({selection.describe()})")
    return LabelSpec(selection.values, tumour, name)


def default_config(spec: LabelSpec) -> str:
    """The preset of the spec's organ (``kidney_left`` -> ``kidney``)."""
    return "kidney" if spec.organ.startswith("kidney") else spec.organ
