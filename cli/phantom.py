"""``tumorsynth phantom``: write the built-in phantom to look at (or to feed to ``generate``)."""

from __future__ import annotations

from pathlib import Path

import click
from tumorsynth.cli.options import SEED

from tumorsynth.dataset.generate import to_int16
from tumorsynth.dataset.layout import FORMATS
from tumorsynth.errors import InputError
from tumorsynth.io.volume import write_volume


@click.command()
@click.option("--out", "out_dir", default="phantom", show_default=True,
              type=click.Path(file_okay=False), help="Output folder.")  # fmt: skip
@click.option("--seed", default=0, show_default=True, type=SEED,
              help="Phantom (patient) seed.")  # fmt: skip
@click.option("--spacing", "spacing_mm", default=1.0, show_default=True,
              type=click.FloatRange(min=0, min_open=True), help="Voxel size, mm.")  # fmt: skip
@click.option("--format", "fmt", default="nii.gz", show_default=True,
              type=click.Choice(list(FORMATS)), help="File format.")  # fmt: skip
@click.option("--organ", default="liver", show_default=True,
              type=click.Choice(["liver", "pancreas", "kidney", "kidney_right", "kidney_left"]),
              help="The host organ whose mask is written.")  # fmt: skip
@click.option("--preview", is_flag=True, help="Also write a PNG through the organ.")
def phantom(out_dir, seed, spacing_mm, fmt, organ, preview) -> None:
    """Write the built-in abdominal phantom: phantom<SEED>_ct (HU), phantom<SEED>_<ORGAN> (0/1
    organ mask: liver, pancreas, kidney) and phantom<SEED>_labels (every structure, values in
    tumorsynth.phantom.LABELS)."""
    from tumorsynth.phantom import make_phantom

    case = make_phantom(seed=seed, spacing_mm=spacing_mm, organ=organ)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"{out}: cannot write the output folder ({err.strerror})") from None
    ext = FORMATS[fmt]
    stem = out / f"phantom{seed}"
    written = [
        write_volume(f"{stem}_ct{ext}", to_int16(case.image), case.spacing_mm),
        write_volume(f"{stem}_{organ}{ext}", case.organ, case.spacing_mm),
        write_volume(f"{stem}_labels{ext}", case.extras["labels"], case.spacing_mm),
    ]
    if preview:
        from tumorsynth.dataset.preview import write_preview

        written.append(write_preview(f"{stem}.png", case.image, case.organ, case.spacing_mm))
    shape = " x ".join(str(n) for n in case.shape)
    click.echo(f"wrote {', '.join(str(p) for p in written)} ({shape} voxels at {spacing_mm:g} mm)")
