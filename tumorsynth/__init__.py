"""tumorsynth: fast, reproducible synthesis of liver tumours in healthy CT.

>>> import tumorsynth
>>> from tumorsynth.phantom import make_phantom
>>> case = make_phantom(spacing_mm=2.0)
>>> out = tumorsynth.synthesize(case.image, case.organ, case.spacing_mm, seed=0)
>>> out.image.dtype, out.label.max()
(dtype('float32'), np.uint8(2))
"""

import os as _os

import numba as _numba

# A fork-safe threading layer (TBB where installed, else numba's workqueue) unless the user chose
# one: with GNU OpenMP, a process that forks after a synthesis (PyTorch DataLoader workers, a
# multiprocessing pool) aborts. It must be set before the first parallel kernel runs.
if "NUMBA_THREADING_LAYER" not in _os.environ:
    _numba.config.THREADING_LAYER = "forksafe"

from tumorsynth.backend import empty_cache
from tumorsynth.engine.case import Case, as_case
from tumorsynth.engine.config import PRESETS, SynthConfig, load_config
from tumorsynth.engine.params import LesionParams, TumorParams
from tumorsynth.engine.pipeline import Synthesis, render, sample_params, synthesize
from tumorsynth.errors import ConfigError, InputError, PlacementError, TumorSynthError
from tumorsynth.version import __version__

__all__ = [
    "PRESETS",
    "Case",
    "ConfigError",
    "InputError",
    "LesionParams",
    "PlacementError",
    "SynthConfig",
    "Synthesis",
    "TumorParams",
    "TumorSynthError",
    "__version__",
    "as_case",
    "empty_cache",
    "load_config",
    "render",
    "sample_params",
    "synthesize",
]
