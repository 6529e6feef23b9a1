"""``tumorsynth predict``: label maps of a trained checkpoint for CT files, in their geometry."""

from __future__ import annotations

import click


@click.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for <case>.nii.gz label maps (0 background, 1 organ, 2 tumour).")  # fmt: skip
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--spacing", type=click.Choice(["model", "native"]), default="model",
              show_default=True,
              help="Segment at the voxel size the model was trained at, or at the CT's own.")  # fmt: skip
@click.option("--largest-organ", is_flag=True,
              help="Keep only the largest connected organ (with its tumours).")  # fmt: skip
@click.option("--overlap", default=0.5, show_default=True, type=click.FloatRange(0, 1, max_open=True),
              help="Sliding-window overlap.")  # fmt: skip
@click.option("--overwrite", is_flag=True, help="Replace label maps that exist.")
def predict(checkpoint, inputs, out_dir, device, spacing, largest_organ, overlap, overwrite):
    """Segment INPUTS (CT files, DICOM folders, folders of them, globs) with CHECKPOINT."""
    from tumorsynth.segment.predict import predict_files

    paths = predict_files(
        checkpoint, inputs, out_dir, device=device, spacing=spacing,
        largest_organ=largest_organ, overlap=overlap, overwrite=overwrite,
    )  # fmt: skip
    click.echo(f"wrote {len(paths)} label map(s) to {out_dir}")
