"""``tumorsynth aslseg``: ASLseg's loop (``run``) and its label maps for CT files (``segment``)."""

from __future__ import annotations

import click


@click.group()
def aslseg() -> None:
    """ASLseg: SAM in a semi-supervised loop, from synthetic tumours towards real CT."""


@aslseg.command()
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Run folder (the config's out_dir).")  # fmt: skip
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config field (repeatable), e.g. --set rounds=3.")  # fmt: skip
@click.option("--device", help="auto, cpu, cuda or cuda:N (the config's device).")
@click.option("--resume", is_flag=True, help="Continue the run in the out folder.")
@click.option("--overwrite", is_flag=True, help="Start again in an out folder that holds a run.")
@click.option("--print-config", is_flag=True, help="Print the resolved config and exit.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def run(config, out_dir, overrides, device, resume, overwrite, print_config, quiet):
    """Run ASLseg from CONFIG (YAML or JSON; every field has a default), resumable per stage
    and round; writes the rounds' records and the ablation table on held-out volumes."""
    import json

    from tumorsynth.methods.aslseg.config import load_aslseg_config

    flags = {"out_dir": out_dir, "device": device}
    cfg = load_aslseg_config(config, list(overrides))
    cfg = load_aslseg_config(cfg, {k: v for k, v in flags.items() if v is not None})
    if print_config:
        click.echo(json.dumps(cfg.to_dict(), indent=2))
        return
    from tumorsynth.methods.aslseg.run import run_aslseg

    result = run_aslseg(cfg, resume=resume, overwrite=overwrite, progress=not quiet)
    accepted = sum(r["n_accepted"] for r in result.rounds)
    click.echo(f"{len(result.rounds)} round(s), {accepted} unlabelled slices accepted")
    if result.ablation is not None:
        click.echo(f"ablation: {result.out_dir / 'ablation.md'}")
        for row in result.ablation:
            click.echo(f"  {row['label']:<32} tumour Dice {row['dice_mean']:.3f}")
    click.echo(f"run folder: {result.out_dir}")


@aslseg.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--masks", multiple=True, type=click.Path(),
              help="Liver mask of each CT (repeatable; files, folders or globs).")  # fmt: skip
@click.option(
    "--organ-label", type=int, help="The liver's value in label-map masks (5: TotalSegmentator)."
)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder of <case>.nii.gz label maps: 0 background, 1 liver, 2 tumour.")  # fmt: skip
@click.option("--use", type=click.Choice(["segmenter", "sam", "refined"]),
              default="segmenter", show_default=True,
              help="Stage I alone, + SAM, or + the adaptation network.")  # fmt: skip
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--overwrite", is_flag=True, help="Replace label maps that exist.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def segment(run_dir, images, masks, organ_label, out_dir, use, device, overwrite, quiet):
    """Segment IMAGES (CT files, DICOM folders, globs) with the run in RUN_DIR."""
    from tumorsynth.methods.aslseg.predict import segment_files

    paths = segment_files(
        run_dir, images, masks, out_dir, organ_label=organ_label, use=use, device=device,
        overwrite=overwrite, progress=not quiet,
    )  # fmt: skip
    click.echo(f"wrote {len(paths)} label map(s) to {out_dir}")
