"""``tumorsynth preview``: a PNG of any CT with its tumour labels."""

from __future__ import annotations

from pathlib import Path

import click

from tumorsynth.dataset.preview import preview_files


@click.command()
@click.argument("image", type=click.Path())
@click.argument("label", type=click.Path())
@click.option("--out", "out_path", type=click.Path(dir_okay=False),
              help="PNG to write  [default: <label name>.png here]")  # fmt: skip
@click.option("--organ-label", default=1, show_default=True, help="Organ value (green outline).")
@click.option("--tumour-label", default=2, show_default=True, help="Tumour value (red outline).")
@click.option("--max-tumours", default=6, show_default=True, type=click.IntRange(min=1),
              help="Rows: the largest tumours.")  # fmt: skip
def preview(image, label, out_path, organ_label, tumour_label, max_tumours) -> None:
    """Axial, coronal and sagittal slices through each tumour's centre of IMAGE, with the tumours
    of LABEL outlined (files or DICOM folders; a label on another grid is resampled)."""
    if out_path is None:
        name = Path(label).name
        for suffix in (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd"):
            name = name.removesuffix(suffix)
        out_path = f"{name}.png"
    path = preview_files(
        image, label, out_path,
        organ_value=organ_label, tumour_value=tumour_label, max_tumours=max_tumours,
    )  # fmt: skip
    click.echo(f"wrote {path}")
