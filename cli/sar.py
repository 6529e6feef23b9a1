"""``tumorsynth sar``: SAR pre-training, and the comparison of the segmenters it starts."""

from __future__ import annotations

import click

_SET_HELP = ("Override a config field (repeatable), e.g. --set pretrain.steps=2000 "
             "--set compare.seeds=[0,1].")  # fmt: skip


def _config(config, overrides):
    from tumorsynth.engine.config_files import parse_override
    from tumorsynth.methods.sar.config import load_sar_config

    return load_sar_config(config, dict(map(parse_override, overrides)))


@click.group()
def sar() -> None:
    """SAR: scale-aware restoration pre-training, then label-free fine-tuning (docs/sar.md)."""


@sar.command()
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Run folder (the config's pretrain.out_dir).")  # fmt: skip
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE", help=_SET_HELP)
@click.option("--resume", is_flag=True, help="Continue the run in the out folder from last.pt.")
@click.option("--overwrite", is_flag=True, help="Start again in an out folder that holds a run.")
@click.option("--print-config", is_flag=True, help="Print the resolved config and exit.")
def pretrain(config, out_dir, overrides, resume, overwrite, print_config):
    """Pre-train a segmentation network without labels: restore corrupted multi-scale crops,
    tell their scale, hide their source.

    CONFIG is a YAML or JSON file with a `pretrain` section (examples/configs/sar_tiny.yaml).
    checkpoints/best.pt then starts a segmenter: tumorsynth train --set init_from=.../best.pt.
    Under torchrun each process is one rank: torchrun --nproc_per_node 2 -m tumorsynth.cli sar
    pretrain CONFIG
    """
    import json

    from tumorsynth.methods.sar.trainer import pretrain as run

    cfg = _config(config, [*overrides, *([f"pretrain.out_dir={out_dir}"] if out_dir else [])])
    if print_config:
        click.echo(json.dumps(cfg.pretrain.to_dict(), indent=2))
        return
    result = run(cfg.pretrain, resume=resume, overwrite=overwrite)
    click.echo(f"held-out restoration MSE {result.best_score:.4f} (best); {result.step} steps; "
               f"init_from {result.out_dir / 'checkpoints' / 'best.pt'}")  # fmt: skip


@sar.command()
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="The comparison's folder.")  # fmt: skip
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE", help=_SET_HELP)
@click.option("--resume", is_flag=True, help="Keep the finished runs, continue the others.")
@click.option("--overwrite", is_flag=True, help="Start again in a folder that holds a comparison.")
def compare(config, out_dir, overrides, resume, overwrite):
    """Fine-tune on the synthetic stream from scratch, from restoration-only pre-training and
    from SAR, at several budgets; write results.csv, curves.csv, results.md and comparison.png.

    CONFIG is a YAML or JSON file with `pretrain`, `finetune` and `compare` sections
    (examples/configs/sar_tiny.yaml: about 15 minutes on 2 CPU cores).
    """
    from tumorsynth.methods.sar.compare import compare as run

    result = run(_config(config, overrides), out_dir, resume=resume, overwrite=overwrite)
    click.echo(result.table, nl=False)
    click.echo(f"results in {result.out_dir}")
