"""``tumorsynth spars``: tumour localisation from image-level labels by self-play RL (SPARS)."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def spars() -> None:
    """SPARS: a presence classifier and two competing agents that map the tumours it sees."""


@spars.command("train")
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Run folder (the config's out_dir).")  # fmt: skip
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config field (repeatable), e.g. --set ppo_steps=4096.")  # fmt: skip
@click.option("--device", help="auto, cpu, cuda or cuda:N (the config's device).")
@click.option("--resume", is_flag=True,
              help="Continue the run in the out folder (a complete classifier is skipped).")  # fmt: skip
@click.option("--overwrite", is_flag=True, help="Start again in an out folder that holds a run.")
@click.option("--print-config", is_flag=True, help="Print the resolved config and exit.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def train(config, out_dir, overrides, device, resume, overwrite, print_config, quiet):
    """Train the presence classifier, then the agents (CONFIG: YAML/JSON of SparsConfig fields;
    without one, the tiny CPU settings on the built-in phantoms, or with --resume the run's own
    config.json)."""
    from tumorsynth.engine.config_files import parse_override
    from tumorsynth.methods.spars.config import dumps, load_spars_config

    values = dict(map(parse_override, overrides))
    values.update({k: v for k, v in {"out_dir": out_dir, "device": device}.items() if v})
    if config is None and resume:  # continue the run with its own settings
        saved = Path(values.get("out_dir") or load_spars_config().out_dir) / "config.json"
        config = str(saved) if saved.is_file() else None
    cfg = load_spars_config(config, values)
    if print_config:
        click.echo(dumps(cfg))
        return
    from tumorsynth.methods.spars.run import train_spars

    result = train_spars(cfg, resume=resume, overwrite=overwrite, progress=not quiet)
    if result.classifier_auc is not None:
        click.echo(f"classifier: best held-out AUC {result.classifier_auc:.3f}")
    click.echo(f"agents: {result.agent_steps} environment steps; run in {result.out_dir}")


@spars.command("segment")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.argument("cts", nargs=-1, required=True, type=click.Path())
@click.option("--masks", multiple=True, type=click.Path(),
              help="Liver mask (or label map) per CT, paired by name or in order (repeatable).")  # fmt: skip
@click.option("--organ-label", type=int,
              help="The liver's value in label-map masks (5 in TotalSegmentator).")  # fmt: skip
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for <case>.nii.gz label maps (0 background, 1 liver, 2 tumour).")  # fmt: skip
@click.option("--method", default="spars", show_default=True,
              type=click.Choice(["spars", "random_walk", "sliding_window", "gradcam"]),
              help="SPARS, or one of its baselines from the same classifier.")  # fmt: skip
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--seed", default=0, show_default=True, help="Seed of the agents' episodes.")
@click.option("--overwrite", is_flag=True, help="Replace label maps that exist.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def segment(run_dir, cts, masks, organ_label, out_dir, method, device, seed, overwrite, quiet):
    """Segment CTS (files, DICOM folders, folders of them, globs) with the SPARS run RUN_DIR."""
    from tumorsynth.methods.spars.segment import segment_files

    paths = segment_files(
        run_dir, cts, out_dir, masks=masks, organ_label=organ_label, method=method,
        device=device, seed=seed, overwrite=overwrite, progress=not quiet,
    )  # fmt: skip
    click.echo(f"wrote {len(paths)} label map(s) to {out_dir}")
