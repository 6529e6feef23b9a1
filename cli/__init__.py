"""The ``tumorsynth`` command line: a click group; each command parses its options and calls one API
function. Installed as ``tumorsynth.cli``."""

from __future__ import annotations

import sys

import click
from tumorsynth.cli.generate import generate

from tumorsynth import TumorSynthError, __version__

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tumorsynth")
def cli() -> None:
    """Synthesise liver tumours into healthy CT, reproducibly, on CPU or GPU."""


cli.add_command(generate)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: runs the group, turning tumorsynth errors into one line and exit 1."""
    try:
        cli.main(args=argv, prog_name="tumorsynth", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except TumorSynthError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(1)
