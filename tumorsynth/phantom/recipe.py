"""What one phantom patient is made of: coats, paint steps and the patient record.

The anatomy modules (:mod:`~tumorsynth.phantom.body`, :mod:`~tumorsynth.phantom.liver`, ...) describe
each structure as a :class:`Step` (a shape and the coats painted from it);
:mod:`~tumorsynth.phantom.patient` gathers them, in painting order, into a :class:`Patient` that
:mod:`~tumorsynth.phantom.render` renders at any grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tumorsynth.phantom.body import Body
from tumorsynth.phantom.shapes import Cached, Shape, Tubes
from tumorsynth.phantom.tissues import HU, LABELS

__all__ = ["Coat", "Patient", "Step", "coat", "jitter"]


@dataclass
class Coat:
    """One layer painted from a structure's SDF: the region ``sdf + inset_mm < 0`` (and ``clip``)."""

    inset_mm: float
    hu: float
    label: int
    texture: np.ndarray | None = None
    clip: Shape | None = None


@dataclass
class Step:
    """A structure to paint: its shape, its coats (painted in order) and an optional box (mm)."""

    shape: Shape
    coats: list[Coat]
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None


@dataclass
class Patient:
    """Everything needed to render one seed's phantom at any grid."""

    body: Body
    steps: list[Step]
    liver: Cached
    liver_coat: Coat
    trees: list[tuple[Tubes, float, int]]  # (tubes, HU, label outside the liver)
    liver_lo_mm: np.ndarray
    liver_hi_mm: np.ndarray
    liver_volume_ml: float
    extra: dict = field(default_factory=dict)


def coat(hu: str | float, label: str, inset_mm: float = 0.0, **kw) -> Coat:
    """A :class:`Coat` of tissue ``hu`` (a name of :data:`HU`, or a value) labelled ``label``."""
    return Coat(inset_mm, HU.get(hu, 0.0) if isinstance(hu, str) else hu, LABELS[label], **kw)


def jitter(rng: np.random.Generator, point_mm, sd_mm: float = 3.0) -> np.ndarray:
    """``point_mm`` moved by Gaussian noise of ``sd_mm`` along each axis (mm)."""
    return np.asarray(point_mm, float) + rng.normal(0, sd_mm, 3)
