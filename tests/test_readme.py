"""The README's examples work: its Python runs, and every flag its command lines use exists."""

from __future__ import annotations

import re
import shlex

import pytest
from toy import REPO

README = (REPO / "README.md").read_text()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_the_python_example_runs():
    blocks = _blocks("python")
    assert blocks, "the README has a Python example"
    for code in blocks:
        exec(compile(code, "README.md", "exec"), {})


def _command_lines() -> list[list[str]]:
    lines = []
    for block in _blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            code = line.split("#", 1)[0].strip()
            if code.startswith("tumorsynth "):
                lines.append(shlex.split(code)[1:])
    return lines


@pytest.mark.parametrize("argv", _command_lines(), ids=lambda argv: " ".join(argv[:2]))
def test_every_command_and_flag_of_the_readme_exists(argv):
    import click
    from tumorsynth.cli import cli

    command, rest = cli, list(argv)
    while isinstance(command, click.Group):
        name = rest.pop(0)
        assert name in command.commands, f"no command {name!r}"
        command = command.commands[name]
    known = {opt for p in command.params for opt in getattr(p, "opts", [])}
    for token in rest:
        if token.startswith("--"):
            assert token.split("=")[0] in known, f"{' '.join(argv[:1])}: no option {token}"


def test_the_readme_documents_every_command():
    from tumorsynth.cli import cli

    for name in cli.commands:
        assert f"`tumorsynth {name}" in README, f"the README's table lacks `tumorsynth {name}`"
