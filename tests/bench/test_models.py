"""Models under benchmark that misbehave: one that changes its input in place, one that calls
``sys.exit``; the messages of the benchmark's own options."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tumorsynth.cli import main

from tumorsynth.bench import BenchmarkError, load_segmenter, run_robustness
from tumorsynth.bench.models import run_model
from tumorsynth.io.volume import write_volume

SMALL = {
    "phantom_seeds": [2000],
    "phantom_spacing_mm": 3.0,
    "grid_cases_per_cell": 0,
    "bootstrap_resamples": 50,
    "attributes": ["size"],
    # the models label tumour without organ: scored as they are, without predict's post-processing
    "min_organ_contact": None,
    "min_tumour_mm3": 0.0,
}

MODELS = '''
import sys

import numpy as np


def vandal(image, spacing):
    """Segments nothing, and leaves the CT at -1000 HU."""
    image[...] = -1000.0
    return np.zeros(image.shape, np.uint8)


def dark(image, spacing):
    """Tumour wherever the CT is between -20 and 80 HU (darker than the liver)."""
    return np.where((image > -20) & (image < 80), 2, 0).astype(np.uint8)


def quitter(image, spacing):
    sys.exit(3)
'''


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "bad_models.py"
    path.write_text(MODELS)
    return path


def test_a_model_that_changes_its_input_changes_nothing_the_next_sees(models, tmp_path):
    image = np.linspace(-200, 300, 20 * 18 * 16, dtype=np.float32).reshape(20, 18, 16)
    kept = image.copy()
    vandal, dark = load_segmenter(f"{models}:vandal"), load_segmenter(f"{models}:dark")
    run_model(vandal, image, (3.0, 3.0, 3.0), "case 0")
    np.testing.assert_array_equal(image, kept)
    assert run_model(dark, image, (3.0, 3.0, 3.0), "case 0").any()
    # in the benchmark: the dark model's scores do not depend on who ran before it
    alone = run_robustness({"dark": f"{models}:dark"}, tmp_path / "a", config=SMALL,
                           cases_per_shell=1, progress=False)  # fmt: skip
    after = run_robustness(
        {"vandal": f"{models}:vandal", "dark": f"{models}:dark"}, tmp_path / "b",
        config=SMALL, cases_per_shell=1, progress=False,
    )  # fmt: skip
    rows = [r for r in after.result["cases"] if r["model"] == "dark"]
    assert rows == alone.result["cases"] and len(rows) == 3  # size: shells +1, +2, +3
    assert all(r["dice"] > 0 for r in rows)  # it saw the CT, not -1000 HU


def test_a_model_that_calls_sys_exit_stops_the_run_with_one_line(models, tmp_path, capsys):
    with pytest.raises(BenchmarkError, match=r"model 'quitter' .* called sys.exit\(3\) on case"):
        run_robustness([f"{models}:quitter"], tmp_path / "o", config=SMALL, cases_per_shell=1,
                       progress=False)  # fmt: skip
    config = tmp_path / "bench.json"
    config.write_text(json.dumps(SMALL))
    with pytest.raises(SystemExit) as info:
        main(["bench", "robustness", "--model", f"{models}:quitter", "--out", str(tmp_path / "o"),
              "--cases-per-shell", "1", "--config", str(config), "--quiet"])  # fmt: skip
    assert info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: model 'quitter'") and "called sys.exit(3) on case (host" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "o").exists()


def test_hosts_without_masks_names_the_bench_options(tmp_path, capsys):
    ct = write_volume(tmp_path / "ct.nii.gz", np.zeros((8, 8, 8), np.int16), (1.0, 1.0, 1.0))
    with pytest.raises(SystemExit):
        main(["bench", "robustness", "--model", "x:y", "--hosts", str(ct), "--out",
              str(tmp_path / "o")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert err == "error: --hosts needs --host-masks: one organ mask (or label map) per image"
