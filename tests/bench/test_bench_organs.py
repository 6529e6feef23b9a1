"""The robustness benchmark on kidney tumours: the organ's preset and phantom hosts, the location
measured for a preset without a tabled one, and a model of per-organ codes scored on its organ."""

from __future__ import annotations

import numpy as np
import pytest

from tumorsynth.bench import run_robustness
from tumorsynth.bench.cases import load_bench_hosts
from tumorsynth.errors import ConfigError

SMALL = {
    "phantom_seeds": [2000],
    "phantom_spacing_mm": 3.0,
    "grid_cases_per_cell": 0,
    "bootstrap_resamples": 200,
    "location_draws": 40,
    "attributes": ["size", "intensity"],
}


@pytest.mark.slow
def test_kidney_tumours_scored_for_a_model_of_per_organ_codes(tmp_path):
    """About 10 s of CPU (the 3 mm phantom, 40 placements, 12 test cases)."""
    (host,) = load_bench_hosts(None, margin_mm=20.0, phantom_seeds=(2000,),
                               phantom_spacing_mm=3.0, phantom_organ="kidney")  # fmt: skip

    def oracle(image, spacing):
        """Knows the healthy host; answers in the per-organ codes (kidney 5, its tumour 6)."""
        labels = np.where(np.asarray(host.case.organ) > 0, 5, 0).astype(np.uint8)
        labels[np.abs(image - host.case.image) > 10] = 6
        return labels

    oracle.label_scheme = "per_organ"
    report = run_robustness(
        {"oracle": oracle}, tmp_path / "run", config=SMALL, cases_per_shell=2, seed=1,
        progress=False, organ="kidney",
    )  # fmt: skip
    settings = report.result["settings"]
    assert settings["synthesis_name"] == "kidney"
    assert settings["hosts"][0]["source"] == "phantom(seed=2000, kidney)"
    assert report.result["stats"]["location"]["source"] == "measured"
    summary = report.result["summary"]["oracle"]
    assert summary["intensity"]["signed"]["+1"]["dice"]["mean"] > 0.6


def test_a_synthesis_config_of_another_organ_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="models liver tumours, not kidney ones"):
        run_robustness({"m": lambda image, spacing: image}, tmp_path, organ="kidney",
                       config={**SMALL, "synthesis": "syntumor"}, progress=False)  # fmt: skip
