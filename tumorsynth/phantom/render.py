"""Rendering of the built-in phantom: a :class:`~tumorsynth.phantom.recipe.Patient` on a voxel grid.

The body wall fills the volume first; then every step's coats are painted in order, each from its
shape's SDF with partial-volume edges (:mod:`tumorsynth.phantom.kernels.paint`); the liver and, last,
its vessel trees give the organ and vessel masks. The result is noise-free.
"""

from __future__ import annotations

import threading

import numpy as np

from tumorsynth.phantom.grid import Grid
from tumorsynth.phantom.kernels import paint as phantom_paint
from tumorsynth.phantom.kernels.waves import wave_tables
from tumorsynth.phantom.recipe import Coat, Patient, Step
from tumorsynth.phantom.tissues import HU, LABELS

__all__ = ["paint", "render"]

_NO_TEXTURE = np.zeros((0, 5))
_RENDER_LOCK = threading.Lock()
_WALL_HU = np.array([HU["air"], HU["skin"], HU["fat"], HU["muscle"], HU["visceral_fat"]])
_WALL_LABELS = np.array([LABELS[k] for k in ("background", "skin", "subcutaneous_fat", "muscle",
                                             "visceral_fat")], np.int64)  # fmt: skip


def paint(image, labels, grid: Grid, step: Step):
    """Paint one step's coats; return (sub-grid, SDF) or None when it misses the volume."""
    lo = step.shape.lo if step.lo is None else step.lo
    hi = step.shape.hi if step.hi is None else step.hi
    pad = max(0.0, -min(c.inset_mm for c in step.coats)) + sum(grid.spacing) + 1.0
    sub = grid.sub(np.maximum(lo - pad, -1e4), np.minimum(hi + pad, 1e4))
    if sub is None:
        return None
    d = step.shape.sdf(sub)
    spacing = np.asarray(grid.spacing, float)
    offset = np.asarray(sub.offset, np.int64)
    for c in step.coats:
        dd, inset = d, c.inset_mm
        if c.clip is not None:
            dd, inset = np.maximum(d + np.float32(inset), c.clip.sdf(sub)), 0.0
        waves = _NO_TEXTURE if c.texture is None else c.texture
        texture = wave_tables(waves, sub.xs, sub.ys, sub.zs)
        dd = np.ascontiguousarray(dd, dtype=np.float32)
        phantom_paint.paint(image, labels, dd, inset, offset, spacing, c.hu, c.label, 1.0, texture)
    return sub, d


def render(patient: Patient, grid: Grid):
    """Noise-free HU image, label map, liver mask and vessel mask of ``patient`` on ``grid``."""
    image = np.empty(grid.shape, np.float32)
    labels = np.empty(grid.shape, np.uint8)
    radius, bins, width = patient.body.columns(grid.xs, grid.ys, grid.spacing[:2])
    with _RENDER_LOCK:  # the cached liver SDF lives on the (shared) patient during a render
        try:
            tables = patient.body.tables(grid.zs)
            phantom_paint.body_layers(
                image, labels, radius, bins, width, grid.zs, tables, _WALL_HU, _WALL_LABELS
            )
            patient.liver.prime(grid, sum(grid.spacing) + 1.0)
            for step in patient.steps:
                paint(image, labels, grid, step)
            sub, d_liver = paint(image, labels, grid, Step(patient.liver, [patient.liver_coat]))
        finally:
            patient.liver.prime(None)
            patient.body.forget()
    box = sub.slices(grid)
    organ = np.zeros(grid.shape, np.uint8)
    organ[box] = d_liver < 0
    for tubes, hu, outside_label in patient.trees:
        painted = paint(image, labels, grid, Step(tubes, [Coat(0.0, hu, LABELS["liver_vessels"])]))
        if painted is not None:
            vsub, dv = painted
            region = labels[vsub.slices(grid)]
            region[(dv < 0) & (organ[vsub.slices(grid)] == 0)] = outside_label
    vessels = np.zeros(grid.shape, np.uint8)
    vessels[box] = labels[box] == LABELS["liver_vessels"]
    return image, labels, organ, vessels
