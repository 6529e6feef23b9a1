"""The phantom's pancreas in its parts: the head (with its uncinate process) in the duodenal loop,
the neck in front of the superior mesenteric vein, the body, the tail at the splenic hilum, and the
main pancreatic duct from the tail to the ampulla.

The gland's centre line and the tube around it are drawn by :func:`tumorsynth.phantom.organs.pancreas`
from the patient's random stream, as before; the head, the uncinate process and the duct come from
a stream of their own (:data:`PARTS_STREAM`), so that adding them changed no other structure of any
seed. Sizes are those of the adult gland on CT: the head about 25-30 mm thick, the body and tail
15-25 mm, the main duct 2-3 mm wide in the head and narrower toward the tail.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tumorsynth.phantom.recipe import Step, coat, jitter
from tumorsynth.phantom.shapes import Blob, Csg, Shape, Tubes, ellipsoid, tube

__all__ = ["PARTS", "PARTS_STREAM", "PancreasParts", "pancreas_parts", "parts_map"]

PARTS_STREAM = 0x9A4C
"""The random stream of the head, uncinate process and duct: ``default_rng((seed, PARTS_STREAM))``."""

PARTS = {"head": 1, "body": 2, "tail": 3, "duct": 4}
"""Values of ``Case.extras["pancreas_parts"]``."""

DUCT_HU = 15.0  # pancreatic juice, as water
NECK_X_MM = 10.0  # the neck lies in front of the superior mesenteric vein (x 6-10 mm)
TAIL_FRACTION = 0.5  # the body and the tail share the gland left of the neck in halves
LIVER_GAP_MM = 4.0  # the head keeps off the liver: not one liver voxel changed with the head


@dataclass
class PancreasParts:
    """The head and uncinate process (a blob), the main duct (a tube), and the x (mm) of the
    boundaries between head and body (the neck) and between body and tail."""

    head: Blob
    duct: Tubes
    neck_x_mm: float
    tail_x_mm: float

    def steps(self, tissue: np.ndarray, liver: Shape) -> list[Step]:
        """Paint steps: the head in the gland's tissue (``tissue``: its texture), kept
        :data:`LIVER_GAP_MM` from the ``liver``, then the duct."""
        head = Csg(self.head, carves=[(liver, LIVER_GAP_MM)])
        return [
            Step(head, [coat("pancreas", "pancreas", texture=tissue)]),
            Step(
                Csg(self.duct, carves=[(liver, LIVER_GAP_MM)]), [coat(DUCT_HU, "pancreatic_duct")]
            ),
        ]


def pancreas_parts(seed: int, zr: float, gland: Tubes) -> PancreasParts:
    """The head, uncinate process and duct of the gland ``gland`` (the tube from the head to the
    tail) of patient ``seed``, whose right dome's top is at ``zr`` (mm)."""
    rng = np.random.default_rng((seed, PARTS_STREAM))
    scale = rng.uniform(0.9, 1.1)
    head = jitter(rng, (30, 10, zr - 138), 2)
    uncinate = head + jitter(rng, (-11, -8, -11), 1.5)  # behind the SMV, to its left and below
    blob = Blob(
        [
            ellipsoid(head, np.array([13, 12, 18]) * scale, (0, 10, 0)),
            ellipsoid(uncinate, np.array([12, 7, 8]) * scale, (0, 0, -20)),
        ],
        k_smooth_mm=4.0,
    )
    centre_line = np.vstack([gland.segs[:, :3], gland.segs[-1:, 3:6]])
    # the duct runs from the tail along the gland to the neck, then down through the head
    neck = int(np.argmin(np.linalg.norm(centre_line - (8, 18, zr - 110), axis=1)))
    ampulla = head + jitter(rng, (11, -4, -10), 1.0)  # on the duodenum's medial wall
    path = np.vstack([centre_line[neck:][::-1], head + np.array([2, -2, -4]), ampulla])
    radii = np.linspace(0.9, 1.5, len(path)) * rng.uniform(0.9, 1.1)
    x_left = float(centre_line[:, 0].min())
    tail_x = NECK_X_MM + TAIL_FRACTION * (x_left - NECK_X_MM)
    return PancreasParts(blob, tube(path, radii, step_mm=2.0), NECK_X_MM, tail_x)


def parts_map(labels: np.ndarray, xs_mm: np.ndarray, values, parts: PancreasParts) -> np.ndarray:
    """(X, Y, Z) uint8 map of the pancreas's parts (:data:`PARTS`; 0 elsewhere) from the label map
    ``labels``, whose voxels along X lie at ``xs_mm``; ``values``: the label values of the gland's
    tissue and of its duct."""
    tissue, duct = values
    x = np.asarray(xs_mm, float)[:, None, None]
    out = np.zeros(labels.shape, np.uint8)
    gland = labels == tissue
    out[gland & (x > parts.neck_x_mm)] = PARTS["head"]
    out[gland & (x <= parts.neck_x_mm) & (x > parts.tail_x_mm)] = PARTS["body"]
    out[gland & (x <= parts.tail_x_mm)] = PARTS["tail"]
    out[labels == duct] = PARTS["duct"]
    return out
