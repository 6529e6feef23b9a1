"""``tumorsynth evaluate``: Dice, surface Dice and lesion-wise detection of predicted label maps."""

from __future__ import annotations

import click

from tumorsynth.engine.label_maps import PER_ORGAN_CODES, label_codes
from tumorsynth.errors import InputError
from tumorsynth.evaluate import evaluate_files, summary_table


def _organ_label(ctx: click.Context, param: click.Parameter, value: str) -> int | None:
    if value.strip().lower() == "none":
        return None
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an integer or 'none'") from None


@click.command()
@click.argument("pred", type=click.Path())
@click.argument("gt", type=click.Path())
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for cases.csv, lesions.csv, summary.json and summary.png.")  # fmt: skip
@click.option("--tumour-label", default=2, show_default=True, help="Tumour value in both maps.")
@click.option("--organ-label", default="1", show_default=True, callback=_organ_label,
              help="Organ value, for the organ Dice; 'none' to skip it.")  # fmt: skip
@click.option("--organ", type=click.Choice(list(PER_ORGAN_CODES)),
              help="Score this organ of per-organ label maps (liver 1/2, pancreas 3/4, kidney "
              "5/6 in both), instead of --organ-label and --tumour-label.")  # fmt: skip
@click.option("--tolerance-mm", default=2.0, show_default=True, type=click.FloatRange(min=0),
              help="Surface Dice tolerance, mm.")  # fmt: skip
@click.option("--quiet", is_flag=True, help="No progress bar.")
def evaluate(pred, gt, out_dir, tumour_label, organ_label, organ, tolerance_mm, quiet) -> None:
    """Score predicted label maps PRED against the ground truth GT: tumour Dice and surface Dice,
    organ Dice, and lesion-wise sensitivity by equivalent radius with false positives per case.

    PRED and GT are two label-map files or two folders of them, paired by case name as
    tumorsynth predict names its outputs (the file name without its format and a trailing _0000,
    other characters than letters, digits, _ and - as _). A prediction on another grid of the
    same region is resampled onto the ground truth's.
    """
    if organ is not None:
        if (tumour_label, organ_label) != (2, 1):
            raise InputError("give --organ or --organ-label/--tumour-label, not both")
        organ_label, tumour_label = label_codes(organ, "per_organ")
    report = evaluate_files(
        pred, gt, out_dir,
        tumour_label=tumour_label, organ_label=organ_label, tolerance_mm=tolerance_mm,
        progress=not quiet,
    )  # fmt: skip
    n = len(report.cases)
    click.echo(f"evaluated {n} case{'s' * (n != 1)}")
    click.echo(summary_table(report.summary))
    names = ", ".join(path.name for path in report.files.values())
    click.echo(f"wrote {names} to {click.format_filename(str(out_dir))}")
