"""``tumorsynth bench``: benchmarks of segmenters on synthetic tumours (``bench robustness``) and of
synthesis configs by the segmenters they train (``bench transfer``)."""

from __future__ import annotations

from pathlib import Path

import click
from tumorsynth.cli.options import LABEL_MAP, ORGAN, SEED


@click.group()
def bench() -> None:
    """Benchmarks of tumour segmenters on synthetic tumours."""


def _sources(hosts: tuple[str, ...], masks: tuple[str, ...], organ_label: int | None,
             organ: str | None, label_map: str):  # fmt: skip
    """None for the built-in phantoms, else the host Sources (files, folders, globs with their
    masks, or one dataset.json)."""
    from tumorsynth.dataset.sources import dataset_json_sources, expand_paths, pair_sources
    from tumorsynth.engine.label_maps import select_organ
    from tumorsynth.errors import InputError

    if not hosts or hosts == ("phantom",):
        if masks:
            raise InputError("--host-masks needs --hosts (the CTs they belong to)")
        return None
    if len(hosts) == 1 and hosts[0].endswith(".json") and not masks:
        return dataset_json_sources(hosts[0], organ_label, organ or "liver")
    images = expand_paths(hosts, "hosts")
    masks = expand_paths(masks, "host-masks")
    selection = select_organ(organ, label_map, organ_label)
    sources, _ = pair_sources(images, masks, selection, ("--hosts", "--host-masks"))
    return sources


@bench.command()
@click.option("--model", "models", multiple=True, required=True,
              help="A checkpoint (.pt of tumorsynth train), a TorchScript file, or "
                   "module:function / file.py:function; NAME=... names it. Repeat for several.")  # fmt: skip
@click.option("--hosts", multiple=True,
              help="'phantom' (default: built-in phantoms), healthy CT files, folders or globs "
                   "(with --host-masks), or a dataset.json; the location's μ and σ are then "
                   "measured on them unless the config's stats set it.")  # fmt: skip
@click.option("--host-masks", multiple=True, help="Organ masks of the --hosts CTs.")
@ORGAN
@LABEL_MAP
@click.option("--organ-label", type=int, default=None,
              help="The organ's value in label-map masks, instead of its name (e.g. 5: liver "
                   "in TotalSegmentator).")  # fmt: skip
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for cases.csv, grid.csv, robustness.json, robustness.md and PNGs.")  # fmt: skip
@click.option("--cases-per-shell", type=click.IntRange(min=1), default=None,
              help="Test tumours per attribute and shell (default: the config's, 10).")  # fmt: skip
@click.option("--config", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Benchmark settings (JSON/YAML), e.g. the output of tumorsynth fit-stats.")  # fmt: skip
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the test tumours.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def robustness(models, hosts, host_masks, organ, label_map, organ_label, out_dir,
               cases_per_shell, config, seed, device, quiet) -> None:  # fmt: skip
    """Score segmenters on synthetic tumours whose shape, size, texture, intensity or location is
    moved out of distribution one shell (μ±σ, μ±2σ, μ±3σ) at a time, as in Fig. 6 of Hu et al.
    (CVPR 2023); also over a size x intensity grid. --organ pancreas|kidney tests that organ's
    tumours (its preset, the phantoms' organ, the hosts' masks by name)."""
    from tumorsynth.bench.report import markdown_table
    from tumorsynth.bench.robustness import run_robustness

    report = run_robustness(
        list(models), out_dir, hosts=_sources(hosts, host_masks, organ_label, organ, label_map),
        config=config, cases_per_shell=cases_per_shell, seed=seed, device=device,
        progress=not quiet, organ=organ,
    )  # fmt: skip
    settings = report.result["settings"]
    click.echo("tumour Dice (%) per attribute and shell:")
    click.echo(markdown_table(report.result["summary"], settings["attributes"]))
    names = sorted({p.name for p in report.files.values()})
    click.echo(f"wrote {', '.join(names)} to {click.format_filename(str(Path(out_dir)))}")


@bench.command()
@click.argument("config", type=click.Path(dir_okay=False, exists=True))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for runs/<config>_seed<seed>/ (train run folders), transfer.md, "
                   "transfer.png, runs.csv and transfer.json; run again to continue it.")  # fmt: skip
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a setting (repeatable), e.g. --set seeds=[0,1] --set recipe.steps=200.")  # fmt: skip
@click.option("--device", default="auto", show_default=True,
              help="Where the models segment the test scans (the recipe's device trains).")  # fmt: skip
@click.option("--quiet", is_flag=True, help="No progress bars.")
def transfer(config, out_dir, overrides, device, quiet) -> None:
    """Train the same recipe under two or more synthesis configs (CONFIG: a YAML or JSON file of
    TransferConfig fields), several seeds each, score every model on the same test scans and
    compare the configs, paired by seed and by case."""
    from tumorsynth.bench.transfer import run_transfer
    from tumorsynth.bench.transfer_report import score_table
    from tumorsynth.engine.config_files import parse_override

    report = run_transfer(
        config, out_dir, overrides=dict(map(parse_override, overrides)), device=device,
        progress=not quiet,
    )  # fmt: skip
    click.echo(score_table(report.result["summary"], ("dice", "sensitivity_5mm", "fp_per_case")))
    names = sorted(p.name for p in report.files.values())
    click.echo(f"wrote {', '.join(names)} to {click.format_filename(str(Path(out_dir)))}")
