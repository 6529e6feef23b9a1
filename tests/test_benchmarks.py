"""The benchmark scripts still import and parse their options (they run outside the test suite)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from toy import REPO

SCRIPTS = sorted(p.name for p in (REPO / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("name", SCRIPTS)
def test_benchmark_script_imports_and_shows_its_help(name):
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / name), "--help"],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage" in proc.stdout.lower()
