"""``tumorsynth train``: a label-free segmenter, from a config file and overrides."""

from __future__ import annotations

import click


@click.command()
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config field (repeatable), e.g. --set steps=2000 "
              "--set patch_size=[64,64,64].")  # fmt: skip
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Run folder (the config's out_dir).")  # fmt: skip
@click.option("--steps", type=click.IntRange(min=1), help="Optimiser steps (the config's steps).")
@click.option("--network", help="unet, basic_unet or swin_unetr (the config's network).")
@click.option("--device", help="auto, cpu, cuda or cuda:N (the config's device).")
@click.option("--resume", is_flag=True, help="Continue the run in the out folder from last.pt.")
@click.option("--overwrite", is_flag=True, help="Start again in an out folder that holds a run.")
@click.option("--print-config", is_flag=True, help="Print the resolved config and exit.")
def train(config, overrides, out_dir, steps, network, device, resume, overwrite, print_config):
    """Train a tumour segmenter on healthy CT with tumours synthesised on the fly.

    CONFIG is a YAML or JSON file of TrainConfig fields (every field has a default: with no
    CONFIG, a UNet trains on the built-in phantom). Under torchrun, each process is one rank of a
    DistributedDataParallel run: torchrun --nproc_per_node 2 -m tumorsynth.cli train CONFIG
    """
    from tumorsynth.engine.config_files import parse_override
    from tumorsynth.train.config import dumps, load_train_config

    values = dict(map(parse_override, overrides))  # --set values are read as YAML, flags are not
    flags = {"out_dir": out_dir, "steps": steps, "network": network, "device": device}
    values.update({k: v for k, v in flags.items() if v is not None})
    cfg = load_train_config(config, values)
    if print_config:
        click.echo(dumps(cfg))
        return
    from tumorsynth.train import train as run

    result = run(cfg, resume=resume, overwrite=overwrite)
    if result.best_score is not None:
        click.echo(f"best validation tumour Dice {result.best_score:.3f}")
    click.echo(f"{result.step} steps; checkpoints in {result.out_dir / 'checkpoints'}")
