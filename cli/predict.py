"""``tumorsynth predict``: label maps of a trained checkpoint for CT files, in their geometry."""

from __future__ import annotations

import click

# tumorsynth.segment.postprocess.DEFAULT_POSTPROCESS (kept here so that the command line loads
# without torch; tests/segment/test_postprocess.py checks they agree)
DEFAULT_MIN_TUMOUR_MM3, DEFAULT_MIN_ORGAN_CONTACT = 50.0, 0.25


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
@click.option("--min-tumour-mm3", type=click.FloatRange(min=0), default=None,
              help="Drop tumour components smaller than this volume, mm³ "
                   f"[default: {DEFAULT_MIN_TUMOUR_MM3:g}; 0 keeps all].")  # fmt: skip
@click.option("--min-organ-contact", type=click.FloatRange(0, 1), default=None,
              help="Keep a tumour component only when at least this fraction of the voxels "
                   "bordering it is organ [default: "
                   f"{DEFAULT_MIN_ORGAN_CONTACT:g}].")  # fmt: skip
@click.option("--tumour-anywhere", is_flag=True,
              help="Keep tumour labels outside the organ too (no organ-contact rule).")  # fmt: skip
@click.option("--raw", is_flag=True,
              help="Write the network's labels as they are: no post-processing at all.")  # fmt: skip
@click.option("--overlap", default=0.5, show_default=True, type=click.FloatRange(0, 1, max_open=True),
              help="Sliding-window overlap.")  # fmt: skip
@click.option("--overwrite", is_flag=True, help="Replace label maps that exist.")
def predict(checkpoint, inputs, out_dir, device, spacing, largest_organ, min_tumour_mm3,
            min_organ_contact, tumour_anywhere, raw, overlap, overwrite):  # fmt: skip
    """Segment INPUTS (CT files, DICOM folders, folders of them, globs) with CHECKPOINT.

    By default tumour components smaller than --min-tumour-mm3 or bordered too little by the
    organ (--min-organ-contact) are removed (the defaults were measured: docs/transfer.md)."""
    from tumorsynth.segment.postprocess import postprocess_from_options
    from tumorsynth.segment.predict import predict_files

    rules = postprocess_from_options(
        min_tumour_mm3, min_organ_contact, tumour_anywhere=tumour_anywhere, raw=raw
    )
    paths = predict_files(
        checkpoint, inputs, out_dir, device=device, spacing=spacing, postprocess=rules,
        largest_organ=largest_organ, overlap=overlap, overwrite=overwrite,
    )  # fmt: skip
    click.echo(f"wrote {len(paths)} label map(s) to {out_dir}")
