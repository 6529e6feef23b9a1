r"""The robustness benchmark: segmenters scored on synthetic tumours whose attributes leave the
training distribution one shell at a time (Hu et al., CVPR 2023, Fig. 6).

- :mod:`~tumorsynth.bench.attributes`: the five attributes (shape, size, texture, intensity,
  location), one scalar each, and how the engine is told them;
- :mod:`~tumorsynth.bench.stats`: their :math:`\mu` and :math:`\sigma`, derived from the synthesis
  config (the location measured on the hosts when they are CT); :mod:`~tumorsynth.bench.fit`:
  measured on labelled CT (``tumorsynth fit-stats``);
- :mod:`~tumorsynth.bench.shells`: the shells and the plan of test cases;
- :mod:`~tumorsynth.bench.cases`: hosts and the synthesis of one test case;
- :mod:`~tumorsynth.bench.models`: checkpoints, TorchScript files and callables as segmenters;
- :mod:`~tumorsynth.bench.summary`, :mod:`~tumorsynth.bench.report`,
  :mod:`~tumorsynth.bench.figures`: pooling, tables and heat maps;
- :mod:`~tumorsynth.bench.robustness`: :func:`run_robustness` (``tumorsynth bench robustness``);
- :mod:`~tumorsynth.bench.realism`: :func:`run_realism` (``tumorsynth realism``), synthetic
  against labelled real tumours, with :mod:`~tumorsynth.bench.realism_measure` (both sides, one
  code), :mod:`~tumorsynth.bench.tissue` (texture of a core), :mod:`~tumorsynth.bench.calibrate`
  (a config fitted to them, its last steps in :mod:`~tumorsynth.bench.calibrate_tissue`) and
  :mod:`~tumorsynth.bench.realism_report` (its files).

Scores need ``torch`` and ``monai`` (the surface Dice) and ``matplotlib`` (the heat maps): the
``train`` extra.
"""

from __future__ import annotations

from tumorsynth.bench.attributes import ATTRIBUTES, FLOORS, UNITS, lesion_value
from tumorsynth.bench.config import BenchConfig, load_bench_config
from tumorsynth.bench.fit import fit_stats, measure_tumours
from tumorsynth.bench.models import BenchmarkError, Model, load_segmenter, load_segmenters
from tumorsynth.bench.realism import RealismReport, run_realism
from tumorsynth.bench.robustness import RobustnessReport, run_robustness
from tumorsynth.bench.shells import SHELLS, SIGNED_SHELLS, shell_plan, shell_value
from tumorsynth.bench.stats import AttributeStats, derive_stats, measure_location_stats

__all__ = [
    "ATTRIBUTES",
    "FLOORS",
    "SHELLS",
    "SIGNED_SHELLS",
    "UNITS",
    "AttributeStats",
    "BenchConfig",
    "BenchmarkError",
    "Model",
    "RealismReport",
    "RobustnessReport",
    "derive_stats",
    "fit_stats",
    "lesion_value",
    "load_bench_config",
    "load_segmenter",
    "load_segmenters",
    "measure_location_stats",
    "measure_tumours",
    "run_realism",
    "run_robustness",
    "shell_plan",
    "shell_value",
]
