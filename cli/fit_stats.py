"""``tumorsynth fit-stats``: the robustness benchmark's μ and σ measured on labelled CT."""

from __future__ import annotations

import click


@click.command("fit-stats")
@click.argument("labels", nargs=-1, required=True, type=click.Path())
@click.option("--images", multiple=True,
              help="The CTs (files, folders, globs), paired with the labels by name or in order; "
                   "needed for the intensity.")  # fmt: skip
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Stats file (JSON): a config for tumorsynth bench robustness --config.")  # fmt: skip
@click.option("--tumour-label", default=2, show_default=True, help="Tumour value in the labels.")
@click.option("--organ-label", default=1, show_default=True, help="Organ value in the labels.")
@click.option("--min-voxels", default=5, show_default=True, type=click.IntRange(min=1),
              help="Smaller tumour components are left out.")  # fmt: skip
@click.option("--quiet", is_flag=True, help="No progress bar.")
def fit_stats(labels, images, out, tumour_label, organ_label, min_voxels, quiet) -> None:
    """Measure every tumour in LABELS (label maps: files, folders, globs, or an nnU-Net / MSD
    dataset folder with labelsTr/ and imagesTr/) and write the mean and standard deviation of its
    size, shape, location and, with the CTs, intensity, for the robustness benchmark."""
    from tumorsynth.bench.fit import fit_stats as run

    doc = run(
        labels, out, images=images or None, tumour_label=tumour_label, organ_label=organ_label,
        min_voxels=min_voxels, progress=not quiet,
    )  # fmt: skip
    click.echo(doc["description"])
    for name, s in doc["stats"].items():
        click.echo(
            f"  {name:<10} mu {s['mu']:9.3f}  sigma {s['sigma']:8.3f}  {s['unit']:<5} n={s['n']}"
        )
    missing = doc["fitted_from"]["not_fitted"]
    if missing:
        click.echo(f"  not fitted (the synthesis config's values are kept): {', '.join(missing)}")
    click.echo(f"wrote {out}")
