"""``tumorsynth realism``: synthetic tumours against labelled real ones, attribute by attribute."""

from __future__ import annotations

from pathlib import Path

import click
from tumorsynth.cli.options import SEED


@click.command("realism")
@click.argument("real", nargs=-1, required=True, type=click.Path())
@click.option("--images", multiple=True,
              help="The real label maps' CTs (files, folders, globs), paired by name or in order; "
                   "contrast and texture need them.")  # fmt: skip
@click.option("--hosts", multiple=True,
              help="Healthy CT files, folders or globs (with --host-masks), or a dataset.json, "
                   "to synthesise on; default: built-in phantoms.")  # fmt: skip
@click.option("--host-masks", multiple=True, help="Organ masks of the --hosts CTs.")
@click.option("--host-organ-label", type=int, default=None,
              help="The organ's value in label-map host masks (e.g. 5: liver in "
                   "TotalSegmentator).")  # fmt: skip
@click.option(
    "--config",
    default="liver",
    show_default=True,
    help="Synthesis config compared: a preset (liver, syntumor) or a JSON/YAML file.",
)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for realism.json, realism.md, tumours.csv, realism.png and "
                   "calibrated_config.json.")  # fmt: skip
@click.option("--scans-per-host", type=click.IntRange(min=1), default=4, show_default=True,
              help="Synthetic scans drawn on each host.")  # fmt: skip
@click.option("--calibrate", is_flag=True,
              help="Also write a synthesis config fitted to the real tumours, and compare its "
                   "tumours too.")  # fmt: skip
@click.option(
    "--seed", type=SEED, default=0, show_default=True, help="Seed of the synthetic scans."
)
@click.option("--tumour-label", default=2, show_default=True, help="Tumour value in the labels.")
@click.option("--organ-label", default=1, show_default=True, help="Organ value in the labels.")
@click.option("--min-voxels", default=5, show_default=True, type=click.IntRange(min=1),
              help="Smaller tumour components are left out (both sides).")  # fmt: skip
@click.option("--phantoms", type=click.IntRange(min=1), default=2, show_default=True,
              help="Phantom hosts (seeds 2000, 2001, ...) when no --hosts are given.")  # fmt: skip
@click.option("--phantom-spacing", type=click.FloatRange(min=0.3), default=2.0,
              show_default=True, help="Voxel size of the phantom hosts, mm.")  # fmt: skip
@click.option("--quiet", is_flag=True, help="No progress bar.")
def realism(real, images, hosts, host_masks, host_organ_label, config, out_dir, scans_per_host,
            calibrate, seed, tumour_label, organ_label, min_voxels, phantoms, phantom_spacing,
            quiet) -> None:  # fmt: skip
    """Compare the tumours a synthesis config draws on healthy hosts with the labelled real
    tumours of REAL (label maps: files, folders, globs, or an nnU-Net / MSD dataset folder with
    labelsTr/ and imagesTr/): size, contrast, texture, elongation, depth and number per scan, with
    Kolmogorov-Smirnov and Wasserstein distances, histograms, and with --calibrate a config that
    matches them."""
    from tumorsynth.bench.realism import PHANTOM_SEEDS, host_sources, run_realism
    from tumorsynth.bench.realism_report import markdown_table

    report = run_realism(
        real, out_dir, images=images or None,
        hosts=host_sources(hosts, host_masks, host_organ_label), config=config,
        scans_per_host=scans_per_host, seed=seed, calibrate=calibrate,
        tumour_label=tumour_label, organ_label=organ_label, min_voxels=min_voxels,
        phantom_seeds=range(PHANTOM_SEEDS[0], PHANTOM_SEEDS[0] + phantoms),
        phantom_spacing_mm=phantom_spacing, progress=not quiet,
    )  # fmt: skip
    click.echo(markdown_table(report.result), nl=False)
    for note in report.result["notes"]:
        click.echo(f"note: {note}")
    names = ", ".join(p.name for p in report.files.values())
    click.echo(f"wrote {names} to {click.format_filename(str(Path(out_dir)))}")
