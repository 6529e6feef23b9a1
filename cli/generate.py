"""``tumorsynth generate``: a synthetic dataset on disk."""

from __future__ import annotations

import click

from tumorsynth.generate import generate_dataset


@click.command()
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Output folder (nnU-Net v2 layout), e.g. Dataset501_SynthLiver.",
)
@click.option(
    "--n-cases",
    default=10,
    show_default=True,
    type=click.IntRange(min=1),
    help="Number of cases to synthesise.",
)
@click.option(
    "--config",
    default="liver",
    show_default=True,
    help="Preset (liver, syntumor) or a JSON/YAML config file.",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Run seed.")
@click.option(
    "--phantoms",
    "n_phantoms",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Distinct phantom anatomies to cycle through.",
)
@click.option(
    "--spacing",
    "spacing_mm",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Phantom voxel size, mm.",
)
@click.option(
    "--dtype",
    default="int16",
    show_default=True,
    type=click.Choice(["int16", "float32"]),
    help="Image dtype on disk.",
)
@click.option("--prefix", default="liver", show_default=True, help="Case identifier prefix.")
@click.option("--overwrite", is_flag=True, help="Replace a dataset already in --out.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def generate(
    out_dir, n_cases, config, seed, n_phantoms, spacing_mm, dtype, prefix, overwrite, quiet
) -> None:
    """Synthesise tumours into the built-in phantom and write an nnU-Net v2 dataset
    (imagesTr/, labelsTr/, dataset.json) with manifest.jsonl, which replays every case."""
    summary = generate_dataset(
        out_dir,
        n_cases,
        config=config,
        seed=seed,
        n_phantoms=n_phantoms,
        spacing_mm=spacing_mm,
        dtype=dtype,
        prefix=prefix,
        overwrite=overwrite,
        progress=not quiet,
    )
    click.echo(
        f"wrote {summary.n_cases} cases ({summary.n_tumours} tumours) to {summary.out_dir} "
        f"in {summary.seconds:.1f} s"
    )
