r"""``tumorsynth realism --calibrate``: a synthesis config whose tumours match labelled real ones.

Starting from the compared config, calibration sets what each attribute's tumours are drawn
from, and keeps the rest. It works on **drawn** values (radius :math:`(abc)^{1/3}`, contrast
:math:`\delta u_0`, elongation of the solid, depth of the centre), which differ from what the
measurement finds on a tumour's voxels (voxels, clipping by the organ, the blurred edge in a small
core, tumours that merge or find no room). So it runs in two rounds:

- **first round**: the real values are taken back to drawn ones through the baseline's pairs of
  drawn and measured values: a robust line ``measured = offset + slope * drawn + noise``
  (:func:`fit_bias`, ``scipy.stats.theilslopes``), fitted on the pairs of the real tumours' size
  range (:func:`like_sized`; none there: taken as unbiased), inverted, after narrowing the real
  values' spread by the line's noise (variances subtract);
- **second round**: the first round's config is drawn and measured, and each target moves by the
  gap its tumours left to the real ones, quantile by quantile, over the slope of its own pairs.
  For each part of the config (:data:`GROUPS`: shape and counts, contrast, depth rule), the
  round whose tumours come nearer the real ones in that part's attributes (sum of the
  1-Wasserstein distances over the real spread) is kept.

Each round sets, in this order:

1. **count**: the real counts per scan over the share of drawn tumours that were measured give
   the drawn counts. From :data:`MIX_FROM` tumours per scan on, every scan draws a ``mix`` of
   the four classes (``shape.mix_counts``: the mean's half-tumours dealt out to the classes,
   each range as wide as the counts' variance asks); below it, each scan draws one class, with
   equal probability, every class's count range a uniform whole number with the counts' mean
   and variance;
2. **size**: four size classes ``tiny``, ``small``, ``medium``, ``large`` (one, ``medium``,
   below :data:`MIN_CLASSES_TUMOURS` real tumours) hold consecutive bins of the sorted target
   radii (none below the smallest real one), each bin's share the class's share of the drawn
   tumours: each class's radius makes its mean equivalent radius its bin's mean; deformations
   scale with the radius of the config's class nearest in size;
3. **elongation**: the semi-axes' spread ``shape.axis_scale = (1 - s, 1 + s)``, :math:`s` from a
   grid (:data:`SPREADS`) whose elongations (a Monte Carlo of the shape law, with each class's
   deformation and share) are nearest the targets (1-Wasserstein distance);
4. **contrast**: darker and brighter tumours as ``hypo`` and ``hyper`` kinds in their target
   proportions, each a uniform :math:`\delta` range with the mean and variance of its targets
   over the texture mean :math:`u_0` and the hosts' mean organ scaling (with
   ``intensity.scale_with_organ_hu``);
5. **depth**: the rule that keeps centres inside the organ (``location.min_depth_mm``,
   ``location.depth_fraction``), from :data:`DEPTH_RULES`, nearest the targets by the
   1-Wasserstein distance of the depths of centres drawn on the hosts (params only).

Then, with CTs on the real side (:mod:`~tumorsynth.bench.calibrate_tissue`), two steps that
only rendering can judge, each candidate rendered on the hosts and measured: the **effects** (the
capsule kept or switched off, judged by contrast and texture), then the
**texture**'s amplitude and scale on a grid (judged by the std ratio and the grain).

Every search draws its scans with other seeds than the report's (the comparison's seed + 1), and
the calibrated config is then drawn with the report's own seeds: the report's distances after
calibration are measured on scans calibration never saw. Each step is recorded
(:attr:`Calibration.steps`).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats
from tqdm.auto import tqdm

from tumorsynth.bench.attributes import depth_at, unit_covariances
from tumorsynth.bench.calibrate_tissue import RUNS, distance_sum, effects, texture
from tumorsynth.bench.cases import Host
from tumorsynth.bench.realism_measure import DRAWN, Side, measure_synthetic, scan_seed
from tumorsynth.engine.config import SynthConfig
from tumorsynth.engine.pipeline import sample_params
from tumorsynth.engine.stages.shape import N_HARMONICS, SizeClass
from tumorsynth.errors import InputError, PlacementError

__all__ = [
    "DEPTH_DRAWS",
    "DEPTH_RULES",
    "GROUPS",
    "MIN_CLASSES_TUMOURS",
    "MIN_PAIRS",
    "MIX_FROM",
    "SPREADS",
    "Calibration",
    "calibrate_config",
    "fit_bias",
    "like_sized",
]

log = logging.getLogger("tumorsynth.bench")

#: Fewer drawn-and-measured pairs than this: the measurement is taken as unbiased.
MIN_PAIRS = 8
#: Fewer real tumours than this: one size class.
MIN_CLASSES_TUMOURS = 8
#: From this many drawn tumours per scan on, every scan draws a mix of the four size classes.
MIX_FROM = 2.0
#: Candidate spreads :math:`s` of the semi-axes, ``axis_scale = (1 - s, 1 + s)``.
SPREADS = tuple(float(s) for s in np.round(np.linspace(0.0, 0.7, 29), 4))
#: Candidate (``min_depth_mm``, ``depth_fraction``) rules of the location stage.
DEPTH_RULES = (
    (0.0, 0.0), (2.0, 0.0), (2.0, 0.3), (2.0, 0.6), (2.0, 0.9), (2.0, 1.2), (2.0, 1.5),
    (2.0, 2.0),
)  # fmt: skip
#: Draws per host of the depth rule's search (at least; or the scans per host).
DEPTH_DRAWS = 6
_CLASS_NAMES = ("tiny", "small", "medium", "large")
_MC_DRAWS, _MC_SEED = 2000, 0
#: The parts of the config the two rounds set: the attributes that judge each, and its fields.
GROUPS = {
    "shape": (("radius_mm", "elongation", "count"), ("size_class", "shape")),
    "intensity": (("contrast_hu",), ("intensity",)),
    "location": (("depth_mm",), ("location",)),
}


@dataclass(frozen=True)
class Calibration:
    """A calibrated config, how it was reached, and its measured tumours.

    Attributes
    ----------
    config : SynthConfig
    steps : dict
        Per attribute: what was set, from what (JSON-ready).
    side : Side
        The calibrated config's tumours on the hosts (the scans' own seeds).
    """

    config: SynthConfig
    steps: dict[str, Any]
    side: Side


def fit_bias(pairs: Sequence[dict], attribute: str) -> tuple[float, float, float]:
    """``(offset, slope, noise)`` of ``measured = offset + slope * drawn + e`` over the paired
    tumours, ``noise`` the robust spread of ``e``.

    Theil-Sen where the drawn values spread (interquartile range above 5 % of their median
    magnitude), the slope kept within [0.5, 2]; else the median offset; ``(0, 1, 0)`` with fewer
    than :data:`MIN_PAIRS` pairs.
    """
    xy = [
        (p["drawn"][attribute], p["measured"][attribute])
        for p in pairs
        if p["measured"].get(attribute) is not None
    ]
    if len(xy) < MIN_PAIRS:
        return 0.0, 1.0, 0.0
    x, y = np.asarray(xy, np.float64).T
    slope = 1.0
    if stats.iqr(x) > 0.05 * abs(float(np.median(x))):
        slope = float(np.clip(stats.theilslopes(y, x).slope, 0.5, 2.0))
    offset = float(np.median(y - slope * x))
    return offset, slope, float(stats.iqr(y - offset - slope * x, scale="normal"))


def like_sized(pairs: Sequence[dict], radii_mm: np.ndarray) -> list[dict]:
    """The pairs whose measured radius lies within the range of ``radii_mm`` (the real
    tumours'): a small tumour's core holds its blurred edge and its voxels make it look longer,
    so the bias depends on the size."""
    if radii_mm.size == 0:
        return []
    lo, hi = float(radii_mm.min()), float(radii_mm.max())
    return [p for p in pairs if lo <= p["measured"]["radius_mm"] <= hi]


def _targets(real: Side, pairs: Sequence[dict], steps: dict) -> dict[str, np.ndarray]:
    """First round: each attribute's real values taken back to drawn ones (sorted): their spread
    around their mean narrowed by the measurement's noise (variances subtract), then the line of
    :func:`fit_bias` over the :func:`like_sized` pairs inverted."""
    like = like_sized(pairs, real.values("radius_mm"))
    out = {}
    for attribute in DRAWN:
        offset, slope, noise = fit_bias(like, attribute)
        values = real.values(attribute)
        var = float(values.var(ddof=1)) if values.size > 1 else 0.0
        keep = float(np.sqrt(max(var - noise**2, 0.0) / var)) if var > 0 else 1.0
        values = values.mean() + (values - values.mean()) * keep if values.size else values
        steps[attribute] = {"bias": {"offset": offset, "slope": slope, "noise": noise,
                                     "spread_kept": keep, "pairs": len(like)}}  # fmt: skip
        out[attribute] = np.sort((values - offset) / slope)
    return out


def _corrected(targets: dict, real: Side, first: Side, steps: dict) -> dict[str, np.ndarray]:
    """Second round: each target moved by the gap the first round's tumours left, quantile by
    quantile (the real value's rank), over the slope of :func:`fit_bias` on the first round's own
    like-sized pairs: what the line does not hold (tumours that found no room or merged, a bias
    that depends on the size) is corrected too."""
    like = like_sized(first.pairs, real.values("radius_mm"))
    out = {}
    for attribute, target in targets.items():
        got = first.values(attribute)
        if got.size == 0 or target.size == 0:
            out[attribute] = target
            continue
        slope = fit_bias(like, attribute)[1]
        wanted = np.sort(real.values(attribute))
        ranks = (np.arange(wanted.size) + 0.5) / wanted.size
        gap = (wanted - np.quantile(got, ranks)) / slope
        steps[attribute]["second_round"] = {"slope": slope, "pairs": len(like),
                                            "mean_shift": float(np.mean(gap))}  # fmt: skip
        out[attribute] = np.sort(target + gap)
    return out


def _w1(a: np.ndarray, b: np.ndarray) -> float:
    return float(stats.wasserstein_distance(a, b)) if a.size and b.size else np.inf


def _elongations(spread: float, rel_deform: np.ndarray, draws: dict) -> np.ndarray:
    """Elongations of unit-radius shapes with semi-axes ``U(1 - s, 1 + s)`` and relative
    deformations ``rel_deform`` (per draw), on the fixed random numbers ``draws``."""
    axes = 1.0 - spread + 2.0 * spread * draws["axes"]
    beta = draws["direction"] * (rel_deform / axes.mean(axis=1))[:, None]
    scaled = axes[:, :, None] * unit_covariances(beta) * axes[:, None, :]
    eig = np.clip(np.linalg.eigvalsh(scaled), 1e-300, None)
    return np.sqrt(eig[:, -1] / eig[:, 0])


def _nearest_class(base: SynthConfig, radius_mm: float) -> SizeClass:
    return min(base.shape.classes.values(), key=lambda c: abs(np.log(c.radius_mm / radius_mm)))


def _bin_means(radii: np.ndarray, shares: Sequence[float]) -> list[float]:
    """Means of the sorted radii cut into consecutive bins holding ``shares`` of them."""
    ordered = np.sort(radii)
    edges = np.rint(np.cumsum([0.0, *shares]) / sum(shares) * ordered.size).astype(int)
    edges = np.maximum.accumulate(np.clip(edges, 0, ordered.size))
    return [
        float(ordered[a:b].mean() if b > a else ordered[min(a, ordered.size - 1)])
        for a, b in itertools.pairwise(edges)
    ]


def _mix_ranges(drawn: np.ndarray) -> list[tuple[int, int]]:
    """Per-class count ranges of a ``mix`` whose total has about the mean (to half a tumour) and
    variance of ``drawn`` (per-scan counts): the mean's half-tumours dealt out to the classes,
    each range as wide as the variance asks (in steps of 2, centred on the class's mean)."""
    halves = max(round(2.0 * float(drawn.mean())), len(_CLASS_NAMES))
    share, extra = divmod(halves, len(_CLASS_NAMES))
    per_class = [share + (k < extra) for k in range(len(_CLASS_NAMES))]
    var = float(drawn.var(ddof=1)) if drawn.size > 1 else 0.0
    best = None
    for step in range(max(per_class) // 2 + 1):
        widths = [min(h % 2 + 2 * step, h) for h in per_class]
        gap = abs(sum(w * (w + 2) / 12.0 for w in widths) - var)
        if best is None or gap < best[0]:
            best = (gap, widths)
    return [((h - w) // 2, (h + w) // 2) for h, w in zip(per_class, best[1], strict=True)]


def _count_plan(real: Side, share: float, n_tumours: int) -> dict[str, Any]:
    """How scans draw their tumours: one class per scan (each with the same count range, the
    classes equally likely) below :data:`MIX_FROM` tumours per scan, else a ``mix`` of every
    class (see :func:`_mix_ranges`); one class below :data:`MIN_CLASSES_TUMOURS` tumours."""
    drawn = real.values("count") / max(share, 1e-6)
    n_classes = len(_CLASS_NAMES) if n_tumours >= MIN_CLASSES_TUMOURS else 1
    if n_classes > 1 and drawn.mean() >= MIX_FROM:
        ranges = _mix_ranges(drawn)
        return {"mode": "mix", "names": _CLASS_NAMES, "ranges": ranges,
                "shares": [(a + b) / 2.0 for a, b in ranges]}  # fmt: skip
    lo, hi = _count_range(real.values("count"), share)
    names = _CLASS_NAMES if n_classes > 1 else ("medium",)
    return {"mode": "one class per scan", "names": names, "ranges": [(lo, hi)] * len(names),
            "shares": [1.0] * len(names)}  # fmt: skip


def _fit_elongation(
    target: np.ndarray, base: SynthConfig, means: list[float], shares: Sequence[float]
) -> float:
    rng = np.random.default_rng(_MC_SEED)
    direction = rng.standard_normal((_MC_DRAWS, N_HARMONICS))
    draws = {
        "axes": rng.random((_MC_DRAWS, 3)),
        "direction": direction / np.linalg.norm(direction, axis=1, keepdims=True),
    }
    which = rng.choice(len(means), _MC_DRAWS, p=np.asarray(shares) / sum(shares))
    lo_hi = np.array([[d / c.radius_mm for d in c.deform_mm]
                      for c in (_nearest_class(base, m) for m in means)])  # fmt: skip
    rel = lo_hi[which, 0] + (lo_hi[which, 1] - lo_hi[which, 0]) * rng.random(_MC_DRAWS)
    return min(SPREADS, key=lambda s: _w1(_elongations(s, rel, draws), target))


def _mean_cbrt(lo: float, hi: float) -> float:
    r"""Mean of :math:`(u_1 u_2 u_3)^{1/3}` for independent :math:`u_i \sim U(lo, hi)`."""
    if hi - lo < 1e-12:
        return lo
    return (0.75 * (hi ** (4 / 3) - lo ** (4 / 3)) / (hi - lo)) ** 3


def _count_range(counts: np.ndarray, measured_share: float) -> tuple[int, int]:
    """A whole-number uniform range with the mean and variance of ``counts / measured_share``."""
    drawn = counts / max(measured_share, 1e-6)
    mean, var = float(drawn.mean()), float(drawn.var(ddof=1)) if drawn.size > 1 else 0.0
    width = max(round(float(np.sqrt(12.0 * var + 1.0)) - 1.0), 0)
    lo = max(round(mean - width / 2.0), 0)
    return lo, max(lo + width, 1)


def _shape_and_count(
    base: SynthConfig, real: Side, targets: dict, share: float, steps: dict
) -> SynthConfig:
    """Steps 1-3: counts, size classes, semi-axes' spread (``share``: the measured share of
    drawn tumours)."""
    radii = np.clip(targets["radius_mm"], real.values("radius_mm").min(), None)
    plan = _count_plan(real, share, radii.size)
    means = _bin_means(radii, plan["shares"])
    target = np.clip(targets["elongation"], 1.0, None)
    lo_scale, hi_scale = base.shape.axis_scale
    if target.size:
        spread = _fit_elongation(target, base, means, plan["shares"])
        lo_scale, hi_scale = 1.0 - spread, 1.0 + spread
    else:
        steps["elongation"]["kept"] = "no real elongation measured: the config's axis_scale"
    steps["elongation"]["axis_scale"] = [lo_scale, hi_scale]
    steps["count"] = {"measured_share": share, "mode": plan["mode"],
                      "count": {n: list(r) for n, r in zip(plan["names"], plan["ranges"],
                                                           strict=True)}}  # fmt: skip
    classes = dict(base.shape.classes)
    for name, mean, count in zip(plan["names"], means, plan["ranges"], strict=True):
        radius = mean / _mean_cbrt(lo_scale, hi_scale)
        near = _nearest_class(base, radius)
        deform = tuple(d * radius / near.radius_mm for d in near.deform_mm)
        classes[name] = SizeClass(radius, count, deform)
    steps["radius_mm"]["classes"] = {n: classes[n].radius_mm for n in plan["names"]}
    shape = dataclasses.replace(base.shape, classes=classes, axis_scale=(lo_scale, hi_scale))
    if plan["mode"] == "mix":
        shape = dataclasses.replace(shape, mix_counts=dict(zip(plan["names"], plan["ranges"],
                                                               strict=True)))  # fmt: skip
        return dataclasses.replace(base, shape=shape, size_class={"mix": 1.0})
    size_class = {n: 1.0 / len(plan["names"]) for n in plan["names"]}
    return dataclasses.replace(base, shape=shape, size_class=size_class)


def _organ_factor(cfg: SynthConfig, hosts: Sequence[Host]) -> float:
    reference = cfg.intensity.scale_with_organ_hu
    if not reference:
        return 1.0
    hus = [h.case.organ_stats.median_hu for h in hosts]
    return float(np.mean(np.clip(np.asarray(hus) / reference, 0.25, 2.0)))


def _contrast(cfg: SynthConfig, targets: dict, hosts, steps: dict) -> SynthConfig:
    """Step 4: kinds and delta ranges."""
    target = targets["contrast_hu"]
    if target.size == 0:
        steps["contrast_hu"]["kept"] = "no real contrast measured (no CTs): the config's is kept"
        return cfg
    u0 = float(np.mean(cfg.texture.mean))
    factor = _organ_factor(cfg, hosts)
    delta = target / (u0 * factor)
    density, ranges = {}, dict(cfg.intensity.delta_hu)
    for kind, part in (("hypo", delta[delta < 0]), ("hyper", delta[delta >= 0])):
        if part.size:
            half = np.sqrt(3.0) * (float(part.std(ddof=1)) if part.size > 1 else 0.0)
            density[kind] = part.size / delta.size
            ranges[kind] = (float(part.mean() - half), float(part.mean() + half))
    steps["contrast_hu"].update({"u0": u0, "organ_factor": factor, "density": density,
                                 "delta_hu": {k: list(ranges[k]) for k in density}})  # fmt: skip
    intensity = dataclasses.replace(cfg.intensity, density=density, delta_hu=ranges)
    return dataclasses.replace(cfg, intensity=intensity)


def _depths(cfg: SynthConfig, hosts: Sequence[Host], draws: int, seed: int) -> np.ndarray:
    out = []
    for h, host in enumerate(hosts):
        for k in range(draws):
            try:
                params = sample_params(host.case, config=cfg, rng=scan_seed(seed, h, k))
            except PlacementError:
                continue
            spacing = host.case.spacing_mm
            out += [depth_at(host.depth_mm, le.center_mm, spacing) for le in params.lesions]
    return np.asarray(out, np.float64)


def _depth(cfg: SynthConfig, targets: dict, hosts, steps: dict, draws: int, seed: int):
    """Step 5: the placement's depth rule."""
    target = targets["depth_mm"]
    scored = []
    for min_depth, fraction in DEPTH_RULES:
        location = dataclasses.replace(cfg.location, min_depth_mm=min_depth,
                                       depth_fraction=fraction)  # fmt: skip
        candidate = dataclasses.replace(cfg, location=location)
        scored.append((_w1(_depths(candidate, hosts, draws, seed), target), min_depth, fraction))
    w1, min_depth, fraction = min(scored)
    steps["depth_mm"].update({"min_depth_mm": min_depth, "depth_fraction": fraction,
                              "wasserstein_drawn": w1 if np.isfinite(w1) else None})  # fmt: skip
    location = dataclasses.replace(cfg.location, min_depth_mm=min_depth, depth_fraction=fraction)
    return dataclasses.replace(cfg, location=location)


def _analytic(base: SynthConfig, real: Side, targets: dict, share: float, hosts, steps: dict,
              draws: int, seed: int) -> SynthConfig:  # fmt: skip
    """Steps 1-5 toward ``targets`` (drawn values per attribute)."""
    cfg = _shape_and_count(base, real, targets, share, steps)
    cfg = _contrast(cfg, targets, hosts, steps)
    return _depth(cfg, targets, hosts, steps, draws, seed)


def _rounds(base: SynthConfig, real: Side, baseline: Side, hosts, steps: dict, run: dict,
            bar) -> SynthConfig:  # fmt: skip
    """Steps 1-5 twice: from the baseline's pairs, then corrected by what the first round's
    tumours show; for each part of the config (:data:`GROUPS`), the round whose tumours come
    nearer the real ones in that part's attributes is kept."""
    draws, seed = max(run["scans_per_host"], DEPTH_DRAWS), run["seed"] + 1
    targets = _targets(real, baseline.pairs, steps)
    configs = [_analytic(base, real, targets, _share(baseline), hosts, steps, draws, seed)]
    sides = [measure_synthetic(hosts, configs[0], **run, progress=False)]
    bar.update()
    first_steps = copy.deepcopy(steps)
    targets = _corrected(targets, real, sides[0], steps)
    configs.append(_analytic(base, real, targets, _share(sides[0]), hosts, steps, draws, seed))
    sides.append(measure_synthetic(hosts, configs[1], **run, progress=False))
    bar.update()
    chosen, kept = configs[1], {}
    for group, (attributes, fields) in GROUPS.items():
        near = [distance_sum(real, side, attributes) for side in sides]
        kept[group] = {"round": 1 + int(near[1] < near[0]), "distance_sum": near}
        if near[1] >= near[0]:  # the first round's part
            chosen = dataclasses.replace(chosen, **{f: getattr(configs[0], f) for f in fields})
            steps.update({a: first_steps[a] for a in attributes if a in first_steps})
    steps["rounds"] = kept
    return chosen


def _share(side: Side) -> float:
    """The share of a synthetic side's drawn tumours that were measured (1 if none drawn)."""
    return sum(side.counts) / side.drawn if side.drawn else 1.0


def calibrate_config(
    base: SynthConfig,
    real: Side,
    baseline: Side,
    hosts: Sequence[Host],
    *,
    scans_per_host: int,
    seed: int,
    min_voxels: int = 5,
    progress: bool = True,
) -> Calibration:
    """A config whose tumours match ``real`` (see the module's notes for each step).

    Parameters
    ----------
    base : SynthConfig
        The compared config; what calibration does not set is kept.
    real, baseline : Side
        The real tumours, and the base config's on the hosts (with drawn-and-measured pairs).
    hosts : sequence of Host
        The healthy hosts of the comparison.
    scans_per_host, seed, min_voxels
        As the comparison's synthetic side: the calibrated side is drawn on the same seeds.
    progress : bool

    Returns
    -------
    Calibration

    Raises
    ------
    InputError
        No real tumour.
    """
    if not real.tumours:
        raise InputError("realism --calibrate: the real scans hold no tumour to calibrate to")
    search = {"scans_per_host": scans_per_host, "seed": seed + 1, "name": "search",
              "min_voxels": min_voxels}  # fmt: skip
    steps: dict[str, Any] = {}
    total = 3 + RUNS
    with tqdm(total=total, desc="calibrate", unit="run", disable=not progress) as bar:
        cfg = _rounds(base, real, baseline, hosts, steps, search, bar)
        cfg = effects(cfg, real, hosts, steps, search, bar)
        cfg = texture(cfg, real, hosts, steps, search, bar)
        side = measure_synthetic(hosts, cfg, scans_per_host=scans_per_host, seed=seed,
                                 name="calibrated", min_voxels=min_voxels,
                                 progress=False)  # fmt: skip
        bar.update(bar.total - bar.n)
    n_scans = len(real.counts)
    description = (
        f"{base.name} calibrated by tumorsynth realism to {real.values('radius_mm').size} real "
        f"tumours in {n_scans} scans (size classes, counts, elongation, contrast, depth rule, "
        "texture; see realism.json)"
    )
    cfg = dataclasses.replace(cfg, name=f"{base.name}-calibrated", description=description)
    return Calibration(cfg, steps, side)
