"""The built-in abdominal CT phantom: the default host when the user has no CT.

:func:`make_phantom` renders a synthetic contrast-enhanced (portal venous phase) abdominal CT with a
liver, its portal and hepatic vein trees and the surrounding anatomy (body wall, spine and ribs, lung
bases, heart, aorta and IVC, kidneys, spleen, pancreas with its duct, stomach, bowel, gallbladder).
The liver hosts the tumours by default; the pancreas and the kidneys can too (``organ=``). The anatomy is
defined in millimetres and evaluated at voxel centres, so one seed gives the same patient at any
spacing. Edges have partial volume; the noise is correlated.

The modules, one idea each:

- :mod:`~tumorsynth.phantom.make`: :func:`make_phantom`, argument checks and the field of view;
- :mod:`~tumorsynth.phantom.patient`: one seed's anatomy, drawn structure by structure;
- :mod:`~tumorsynth.phantom.tissues`: the label values (:data:`LABELS`) and the HU of the tissues;
- :mod:`~tumorsynth.phantom.recipe`: coats, paint steps and the patient record;
- :mod:`~tumorsynth.phantom.grid` and :mod:`~tumorsynth.phantom.shapes`: voxel grids and SDF shapes;
- :mod:`~tumorsynth.phantom.body`, :mod:`~tumorsynth.phantom.thorax`,
  :mod:`~tumorsynth.phantom.spine`, :mod:`~tumorsynth.phantom.liver`,
  :mod:`~tumorsynth.phantom.vessels`, :mod:`~tumorsynth.phantom.organs`,
  :mod:`~tumorsynth.phantom.bowel`: the anatomy;
- :mod:`~tumorsynth.phantom.render` and :mod:`~tumorsynth.phantom.noise`: the image.

Its numba kernels are in :mod:`tumorsynth.phantom.kernels` (``sdf``, ``paint``, ``waves``,
``noise``).
"""

from __future__ import annotations

from tumorsynth.phantom.make import DEFAULT_FOV_MM, HOST_ORGANS, make_phantom, organ_case
from tumorsynth.phantom.make import LIVER_MARGIN_MM as LIVER_MARGIN_MM
from tumorsynth.phantom.noise import NOISE_CORRELATION_MM as NOISE_CORRELATION_MM
from tumorsynth.phantom.noise import NOISE_SIGMA_HU
from tumorsynth.phantom.patient import draw_patient
from tumorsynth.phantom.tissues import LABELS
from tumorsynth.phantom.vessels import VESSEL_FREE_RADIUS_MM as VESSEL_FREE_RADIUS_MM

__all__ = [
    "DEFAULT_FOV_MM",
    "HOST_ORGANS",
    "LABELS",
    "NOISE_SIGMA_HU",
    "make_phantom",
    "organ_case",
]

# the anatomy, cached per seed (``_patient.cache_clear()`` makes the next call redraw it)
_patient = draw_patient
