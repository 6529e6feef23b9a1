"""``tumorsynth replay``: regenerate one case of a dataset from its manifest."""

from __future__ import annotations

import click

from tumorsynth.dataset.replay import replay_case
from tumorsynth.errors import TumorSynthError


@click.command()
@click.argument("manifest", type=click.Path())
@click.option("--case", "case_id", required=True, help="Case id (manifest's case_id).")
@click.option("--out", "out_dir", default=".", show_default=True,
              type=click.Path(file_okay=False), help="Where to write the image and label.")  # fmt: skip
@click.option("--device", help="Device to render on  [default: the one recorded]")
def replay(manifest, case_id, out_dir, device) -> None:
    """Regenerate case --case of MANIFEST (manifest.jsonl or its dataset folder) and check it
    against the dataset's own files."""
    result = replay_case(manifest, case_id, out_dir, device)
    click.echo(f"wrote {result.image} and {result.label}")
    if result.identical is None:
        click.echo("the dataset's own files are not next to the manifest: nothing to compare")
    elif result.identical:
        click.echo("bit-identical to the dataset's files")
    if not result.params_from_seed:
        click.echo("note: the recorded seed and config no longer draw these params (another "
                   "tumorsynth version?); the replay used the recorded params")  # fmt: skip
    if result.identical is False:
        raise TumorSynthError(f"case {case_id}: the replay differs from the dataset's files")
