r"""Scores of ``tumorsynth bench transfer``: per run, per config (mean and spread over seeds), and
the paired comparison of each config with the baseline.

- **Per run and test set** (:func:`score_set`): the cases' tumour Dice and NSD (means), lesion
  sensitivity (pooled over the set's lesions, all and those of 5 mm radius or more) and false
  positives per case, after the post-processing and, for sensitivity and false positives, before
  it (``raw_``).
- **Per config** (:func:`aggregate`): mean, standard deviation (``ddof=1``), minimum and maximum
  of each score over the seeds.
- **Paired comparison** (:func:`compare`): runs pair by seed (same initial weights, same crops);
  per score the mean difference to the baseline over seeds with its 95 % t interval and the paired
  t-test (:func:`scipy.stats.ttest_rel`); for Dice and false positives also over test cases (each
  case's score averaged over seeds): the Wilcoxon signed-rank test
  (:func:`scipy.stats.wilcoxon`) and a 95 % paired bootstrap interval of the mean difference
  (:func:`scipy.stats.bootstrap`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

from tumorsynth.evaluate.metrics import CaseMetrics, Detection
from tumorsynth.evaluate.summary import summarise

__all__ = ["METRICS", "aggregate", "case_row", "compare", "score_set"]

METRICS = (
    "dice",
    "nsd",
    "sensitivity",
    "sensitivity_5mm",
    "fp_per_case",
    "raw_sensitivity_5mm",
    "raw_fp_per_case",
)
"""The scores of one run on one test set."""

CASE_METRICS = {"dice": "dice", "fp_per_case": "fp"}
"""Scores compared case by case too, and the case-level value behind each."""

BIG_MM = 5.0
"""Radius from which a lesion counts in ``sensitivity_5mm``, mm."""


def case_row(name: str, metrics: CaseMetrics, raw: Detection) -> dict:
    """One case's scores: after (``metrics``) and before (``raw``, its detection) the
    post-processing."""

    def found(det: Detection, big: bool) -> tuple[int, int]:
        pairs = [
            (hit, lesion)
            for lesion, hit in zip(det.lesions, det.detected, strict=True)
            if not big or lesion.radius_mm >= BIG_MM
        ]
        return sum(hit for hit, _ in pairs), len(pairs)

    d, n = found(metrics.detection, False)
    d5, n5 = found(metrics.detection, True)
    raw_d5, _ = found(raw, True)
    return {
        "case": name,
        "dice": metrics.dice,
        "nsd": metrics.nsd,
        "n_lesions": n,
        "n_detected": d,
        "n_lesions_5mm": n5,
        "n_detected_5mm": d5,
        "fp": metrics.detection.n_false_positives,
        "raw_n_detected_5mm": raw_d5,
        "raw_fp": raw.n_false_positives,
    }


def _ratio(num: float, den: float) -> float | None:
    return float(num) / den if den else None


def score_set(rows: Sequence[Mapping], metrics: Sequence[CaseMetrics]) -> dict:
    """The scores of one run on one test set (see the module), with the per-bin detection of
    :func:`~tumorsynth.evaluate.summary.summarise` under ``detection``."""
    total = {k: sum(r[k] for r in rows) for k in rows[0] if k not in ("case", "dice", "nsd")}
    n = len(rows)
    return {
        "n_cases": n,
        "dice": float(np.mean([r["dice"] for r in rows])),
        "nsd": float(np.mean([r["nsd"] for r in rows])),
        "sensitivity": _ratio(total["n_detected"], total["n_lesions"]),
        "sensitivity_5mm": _ratio(total["n_detected_5mm"], total["n_lesions_5mm"]),
        "fp_per_case": total["fp"] / n,
        "raw_sensitivity_5mm": _ratio(total["raw_n_detected_5mm"], total["n_lesions_5mm"]),
        "raw_fp_per_case": total["raw_fp"] / n,
        "detection": summarise(list(metrics))["detection"],
    }


def _spread(values: Sequence[float | None]) -> dict:
    v = np.array([x for x in values if x is not None], dtype=float)
    if not v.size:
        return {"mean": None, "sd": None, "min": None, "max": None, "n": 0}
    sd = float(np.std(v, ddof=1)) if v.size > 1 else None
    return {"mean": float(v.mean()), "sd": sd, "min": float(v.min()), "max": float(v.max()),
            "n": int(v.size)}  # fmt: skip


def aggregate(scores: Mapping[str, Mapping[int, Mapping[str, dict]]]) -> dict:
    """``{config: {seed: {set: score_set}}}`` -> ``{set: {config: {metric: spread}}}``."""
    out: dict = {}
    for config, by_seed in scores.items():
        for seed_scores in by_seed.values():
            for set_name in seed_scores:
                out.setdefault(set_name, {}).setdefault(config, {})
        for set_name in out:
            out[set_name][config] = {
                m: _spread([by_seed[s][set_name][m] for s in by_seed if set_name in by_seed[s]])
                for m in METRICS
            }
    return out


def _seed_test(a: np.ndarray, b: np.ndarray) -> dict:
    """Mean of b - a over seeds, its 95 % t interval and the paired t-test's p."""
    d = b - a
    out = {"mean_diff": float(d.mean()), "ci95": None, "p_seeds": None, "n_seeds": int(d.size)}
    if d.size > 1:
        half = stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / math.sqrt(d.size)
        out["ci95"] = [float(d.mean() - half), float(d.mean() + half)]
        if np.ptp(d) > 0:
            out["p_seeds"] = float(stats.ttest_rel(b, a).pvalue)
    return out


def _case_test(a: np.ndarray, b: np.ndarray, seed: int) -> dict:
    """Over cases: Wilcoxon signed-rank p and a paired bootstrap 95 % interval of mean(b - a)."""
    d = b - a
    out = {"case_mean_diff": float(d.mean()), "case_ci95": None, "p_cases": None,
           "n_cases": int(d.size)}  # fmt: skip
    if d.size > 1 and np.any(d != 0):
        out["p_cases"] = float(stats.wilcoxon(b, a, zero_method="zsplit").pvalue)
        if np.ptp(d) > 0:
            boot = stats.bootstrap(
                (a, b), lambda x, y: np.mean(y - x), paired=True, n_resamples=2000,
                method="percentile", random_state=np.random.default_rng(seed),
            )  # fmt: skip
            ci = boot.confidence_interval
            out["case_ci95"] = [float(ci.low), float(ci.high)]
    return out


def _per_case(cases: Mapping[int, Mapping[str, list]], set_name: str, key: str) -> np.ndarray:
    """Each case's value of ``key``, averaged over the seeds (runs)."""
    rows = [np.array([r[key] for r in cases[s][set_name]], float) for s in cases]
    return np.mean(rows, axis=0)


def compare(
    scores: Mapping[str, Mapping[int, Mapping[str, dict]]],
    cases: Mapping[str, Mapping[int, Mapping[str, list]]],
    baseline: str,
    seed: int = 0,
) -> dict:
    """Each config against ``baseline``, on each test set and score (see the module).

    Parameters
    ----------
    scores : ``{config: {seed: {set: score_set}}}``
    cases : ``{config: {seed: {set: [case_row, ...]}}}``
    baseline : str
    seed : int
        Seed of the bootstrap.

    Returns
    -------
    dict
        ``{config: {set: {metric: {mean_diff, ci95, p_seeds, n_seeds[, case_mean_diff,
        case_ci95, p_cases, n_cases]}}}}``, differences as config minus baseline, over the
        seeds both have.
    """
    out: dict = {}
    base = scores[baseline]
    for config, by_seed in scores.items():
        if config == baseline:
            continue
        seeds = sorted(set(by_seed) & set(base))
        sets = sorted({n for s in seeds for n in by_seed[s]} & {n for s in seeds for n in base[s]})
        for set_name in sets:
            entry = {}
            for m in METRICS:
                pairs = [(base[s][set_name][m], by_seed[s][set_name][m]) for s in seeds]
                pairs = [p for p in pairs if None not in p]
                if not pairs:
                    continue
                a, b = (np.array(x, float) for x in zip(*pairs, strict=True))
                entry[m] = _seed_test(a, b)
                if m in CASE_METRICS:
                    key = CASE_METRICS[m]
                    ca = _per_case({s: cases[baseline][s] for s in seeds}, set_name, key)
                    cb = _per_case({s: cases[config][s] for s in seeds}, set_name, key)
                    entry[m].update(_case_test(ca, cb, seed))
            out.setdefault(config, {})[set_name] = entry
    return out
