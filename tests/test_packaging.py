"""The package list in pyproject.toml names every package on disk (a wheel would miss the rest)."""

from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from 3.11")

REPO = Path(__file__).resolve().parents[1]


def test_every_package_is_listed():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = {
        ".".join(p.parent.relative_to(REPO).parts)
        for p in (REPO / "tumorsynth").rglob("__init__.py")
        if "__pycache__" not in p.parts
    }
    on_disk |= {"tumorsynth.cli"}  # installed from cli/ (package-dir), so that no top-level `cli`
    assert on_disk == listed
    assert config["package-dir"]["tumorsynth.cli"] == "cli"
    assert (REPO / "cli" / "__init__.py").exists()
