r"""The last steps of ``tumorsynth realism --calibrate``, which only rendering can judge: the
effects that change a tumour's tissue, then its texture. Each candidate config is rendered on the
hosts and measured (:func:`~tumorsynth.bench.realism_measure.measure_synthetic`, the search's
seeds), and the one whose tumours come nearest the real ones is kept (:func:`distance_sum`: the
1-Wasserstein distances over the real spread, summed over the attributes that judge the step).

- **effects**: the capsule (a bright rim on tumours from ``capsule.min_radius_mm``) kept as the
  config has it or switched off (``probability`` 0), judged by the contrast and the texture,
  which a rim partly inside a small core changes (:data:`EFFECTS`). The mass effect is not
  chosen: tried on the shared CT and on the phantom (16 scans each, docs/realism.md), switching
  it moved the judging distance by 0.03 to 0.05 (0.37 with a capsule the real side lacked), and
  it was switched off on the phantom whose real tumours have it; the capsule's moved it by 0.13
  to 1.6, the right way both times;
- **texture**: its amplitude ``texture.density_std`` (:data:`DENSITY_STDS`) and scale
  (``density_sigma_mm`` and ``grain_sigma_mm`` times a factor of :data:`TEXTURE_SCALES`) on a
  grid, judged by the std ratio and the grain.

Both need CTs on the real side (contrast and texture are measured on them); without, the config's
are kept. The scan's noise grain inside a replacing tumour comes from the scan, not the config: no
config makes a tumour smoother than that.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator, Sequence

from scipy import stats

from tumorsynth.bench.realism_measure import Side, measure_synthetic
from tumorsynth.engine.config import SynthConfig

__all__ = [
    "DENSITY_STDS",
    "EFFECTS",
    "RUNS",
    "TEXTURE_SCALES",
    "distance_sum",
    "effects",
    "texture",
]

#: Candidate texture amplitudes ``texture.density_std``.
DENSITY_STDS = (0.0, 0.09, 0.3, 0.8)
#: Candidate factors on the texture's scales (``density_sigma_mm``, ``grain_sigma_mm``).
TEXTURE_SCALES = (0.25, 0.5, 1.0, 2.0)
#: The effects the effects step may switch off (the config's fields with a ``probability``).
EFFECTS = ("capsule",)
#: Render-and-measure runs of :func:`effects` and :func:`texture` together, at most.
RUNS = 2 ** len(EFFECTS) + len(DENSITY_STDS) * len(TEXTURE_SCALES)
_TEXTURE = ("std_ratio", "grain_mm")
_TISSUE = ("contrast_hu", *_TEXTURE)


def distance_sum(real: Side, side: Side, attributes: Sequence[str]) -> float:
    """The sum over ``attributes`` of the 1-Wasserstein distance from ``side`` to ``real``, each
    over the real values' standard deviation (1 where they have none; infinite where a side has
    no value)."""
    total = 0.0
    for attribute in attributes:
        r, s = real.values(attribute), side.values(attribute)
        if not (r.size and s.size):
            return float("inf")
        scale = float(r.std(ddof=1)) if r.size > 1 and r.std() > 0 else 1.0
        total += float(stats.wasserstein_distance(r, s)) / scale
    return total


def _measured_texture(real: Side) -> bool:
    return all(real.values(a).size for a in _TISSUE)


def _effect_candidates(cfg: SynthConfig) -> Iterator[tuple[dict[str, bool], SynthConfig]]:
    """Every on/off choice of the effects the config has on (one that is off stays off)."""
    on = [name for name in EFFECTS if getattr(cfg, name).probability > 0]
    for kept in itertools.product((True, False), repeat=len(on)):
        off = {name: dataclasses.replace(getattr(cfg, name), probability=0.0)
               for name, keep in zip(on, kept, strict=True) if not keep}  # fmt: skip
        yield (
            {name: name in on and name not in off for name in EFFECTS},
            dataclasses.replace(cfg, **off),
        )


def effects(cfg: SynthConfig, real: Side, hosts, steps: dict, run: dict, bar) -> SynthConfig:
    """The effects step: each of :data:`EFFECTS` kept or switched off (see the module's notes)."""
    if not _measured_texture(real):
        steps["effects"] = {"kept": "no real contrast or texture measured (no CTs): the config's"}
        return cfg
    scored = []
    for kept, candidate in _effect_candidates(cfg):
        side = measure_synthetic(hosts, candidate, **run, progress=False)
        scored.append((distance_sum(real, side, _TISSUE), kept, candidate))
        bar.update()
    distance, kept, chosen = min(scored, key=lambda item: item[0])
    steps["effects"] = {"on": kept, "distance_sum": float(distance),
                        "candidates": [{"on": k, "distance_sum": d} for d, k, _ in scored]}  # fmt: skip
    return chosen


def _texture_candidates(cfg: SynthConfig):
    t = cfg.texture
    for amplitude in DENSITY_STDS:
        for factor in TEXTURE_SCALES:
            tex = dataclasses.replace(
                t, density_std=amplitude,
                density_sigma_mm=tuple(v * factor for v in t.density_sigma_mm),
                grain_sigma_mm=tuple(v * factor for v in t.grain_sigma_mm),
            )  # fmt: skip
            yield (amplitude, factor), dataclasses.replace(cfg, texture=tex)


def texture(cfg: SynthConfig, real: Side, hosts, steps: dict, run: dict, bar) -> SynthConfig:
    """The texture step: amplitude and scale, each candidate rendered and measured."""
    if not _measured_texture(real):
        steps["texture"] = {"kept": "no real texture measured (no CTs): the config's is kept"}
        return cfg
    scored = []
    for knobs, candidate in _texture_candidates(cfg):
        side = measure_synthetic(hosts, candidate, **run, progress=False)
        scored.append((distance_sum(real, side, _TEXTURE), knobs, candidate))
        bar.update()
    distance, (amplitude, factor), chosen = min(scored, key=lambda item: item[0])
    steps["texture"] = {"density_std": amplitude, "scale_factor": factor,
                        "density_sigma_mm": list(chosen.texture.density_sigma_mm),
                        "grain_sigma_mm": list(chosen.texture.grain_sigma_mm),
                        "distance_sum": float(distance), "candidates": len(scored)}  # fmt: skip
    return chosen
