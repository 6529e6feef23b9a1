"""The package's layers: imports go one way (down), no cycles, no reaching into private names."""

from __future__ import annotations

from pathlib import Path

import pytest
from import_graph import check, project_packages
from toy import REPO


def test_the_package_keeps_its_import_rules():
    problems = check(project_packages(REPO))
    assert problems == [], "\n".join(problems)


def _package(root: Path, files: dict[str, str]) -> dict[Path, str]:
    for name, text in files.items():
        path = root / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return {root / "pkg": "pkg"}


LAYERS = ("low", "high")
CLEAN = {
    "__init__.py": "",
    "low/__init__.py": "",
    "low/a.py": "def f():\n    return 1\n\n\ndef _hidden():\n    return 2\n",
    "high/__init__.py": "",
    "high/b.py": "from pkg.low.a import f\n",
}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"low/c.py": "def g():\n    from pkg.high.b import f\n"},
            "pkg.low.c (low) imports pkg.high.b",
        ),
        ({"high/b.py": "from pkg.low.a import _hidden\n"}, "imports the private name _hidden"),
        (
            {
                "high/c.py": "from pkg.high.d import x\n",
                "high/d.py": "def x():\n    from pkg.high.c import y\n",
            },
            "import cycle: pkg.high.c -> pkg.high.d",
        ),
        ({"low/_private.py": "", "high/e.py": "import pkg.low._private\n"}, "private name"),
        ({"other/__init__.py": ""}, "pkg.other: in no layer"),
    ],
)
def test_the_check_fails_on_each_kind_of_broken_rule(tmp_path, extra, message):
    assert check(_package(tmp_path / "clean", CLEAN), LAYERS) == []
    problems = check(_package(tmp_path / "broken", {**CLEAN, **extra}), LAYERS)
    assert any(message in p for p in problems), problems
