"""The ``tumorsynth`` command line: a click group; each command parses its options and calls one API
function. Installed as ``tumorsynth.cli``."""

from __future__ import annotations

import logging
import sys

import click
from tumorsynth.cli.aslseg import aslseg
from tumorsynth.cli.bench import bench
from tumorsynth.cli.evaluate import evaluate
from tumorsynth.cli.fit_stats import fit_stats
from tumorsynth.cli.generate import generate
from tumorsynth.cli.phantom import phantom
from tumorsynth.cli.predict import predict
from tumorsynth.cli.preview import preview
from tumorsynth.cli.realism import realism
from tumorsynth.cli.replay import replay
from tumorsynth.cli.sar import sar
from tumorsynth.cli.spars import spars
from tumorsynth.cli.train import train
from tumorsynth.cli.warmup import warmup

from tumorsynth.errors import TumorSynthError
from tumorsynth.version import __version__

__all__ = ["cli", "main"]


class _EchoHandler(logging.Handler):
    """Log lines to stderr without breaking a progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm.auto import tqdm

        tqdm.write(self.format(record), file=sys.stderr)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tumorsynth")
def cli() -> None:
    """Synthesise liver tumours into healthy CT, reproducibly, on CPU or GPU."""
    logger = logging.getLogger("tumorsynth")
    if not any(isinstance(h, _EchoHandler) for h in logger.handlers):
        logger.addHandler(_EchoHandler())
        logger.setLevel(logging.INFO)
        logger.propagate = False


for command in (
    generate,
    replay,
    phantom,
    preview,
    train,
    predict,
    evaluate,
    bench,
    fit_stats,
    realism,
    warmup,
    spars,
    aslseg,
    sar,
):
    cli.add_command(command)


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
