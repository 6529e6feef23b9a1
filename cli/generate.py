"""``tumorsynth generate``: a synthetic dataset on disk, from your CT or from the phantom."""

from __future__ import annotations

import click
from tumorsynth.cli.options import LABEL_MAP, LABEL_SCHEME, ORGAN, SEED, host_organ

from tumorsynth.dataset.generate import generate_dataset, parse_shard
from tumorsynth.dataset.layout import FORMATS
from tumorsynth.dataset.sources import dataset_json_sources, expand_paths, pair_sources
from tumorsynth.engine.label_maps import select_organ
from tumorsynth.errors import InputError, TumorSynthError


class _ManyValues(click.Command):
    """Lets ``--images`` and ``--masks`` take several values (``--images a.nii b.nii``, or what a
    shell glob expands to): the values after such an option, up to the next option, are passed
    to click as one repeated option each."""

    many = ("--images", "--masks")

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        out: list[str] = []
        current, taken = None, False
        for i, arg in enumerate([*args, None]):
            if current and arg is not None and not arg.startswith("-"):
                out += [current, arg]
                taken = True
                continue
            if current and not taken:
                raise click.UsageError(f"{current} needs at least one PATH", ctx=ctx)
            current = None
            if arg is None:
                break
            if arg == "--":
                out.extend(args[i:])
                break
            if arg in self.many:
                current, taken = arg, False
                continue
            out.append(arg)
        return super().parse_args(ctx, out)


@click.command(cls=_ManyValues)
@click.option(
    "--images",
    multiple=True,
    metavar="PATH...",
    help="CT files, DICOM series folders, folders of them, or glob patterns (quoted).",
)
@click.option(
    "--masks",
    multiple=True,
    metavar="PATH...",
    help="Organ masks (0/1, or label maps with --organ-label), paired with --images by name or "
    "in order.",
)
@click.option(
    "--dataset",
    "dataset_json",
    type=click.Path(dir_okay=False),
    help="An MSD or nnU-Net v2 dataset.json listing CTs and label maps.",
)
@ORGAN
@LABEL_MAP
@click.option(
    "--organ-label",
    type=int,
    help="The organ's value in label-map masks, instead of its name (5: liver in "
    "TotalSegmentator, 6 in BTCV).",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Output folder (nnU-Net v2 layout), e.g. Dataset501_SynthLiver.",
)
@click.option("--n-per-case", default=1, show_default=True, type=click.IntRange(min=1),
              help="Synthetic cases per input CT.")  # fmt: skip
@click.option("--n-cases", type=click.IntRange(min=1), help="Phantom only: cases  [default: 10]")
@click.option(
    "--config",
    help="Preset (liver, syntumor, pancreas, kidney) or a JSON/YAML config file  [default: the "
    "organ's preset, liver]",
)
@LABEL_SCHEME
@click.option("--seed", default=0, show_default=True, type=SEED, help="Run seed.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Processes on this machine.")  # fmt: skip
@click.option("--shard", metavar="K/N", help="Make only part K of N (job arrays); same --out.")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@click.option(
    "--phantoms",
    "n_phantoms",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Phantom only: distinct anatomies to cycle through.",
)
@click.option(
    "--spacing",
    "spacing_mm",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Phantom only: voxel size, mm.",
)
@click.option(
    "--dtype",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "int16", "float32"]),
    help="Image dtype on disk (auto: int16 when the input holds whole HU that int16 holds; "
    "int16 refuses NaN and values out of its range).",
)
@click.option(
    "--format",
    "fmt",
    default="nii.gz",
    show_default=True,
    type=click.Choice(list(FORMATS)),
    help="File format (nrrd and mha keep DICOM geometry exactly; NIfTI to float32).",
)
@click.option("--prefix", help="Case id prefix: letters, digits, _ and -  [default: liver for the "
              "phantom, none for files]")  # fmt: skip
@click.option("--preview", is_flag=True, help="Also write previews/<case>.png.")
@click.option("--strict", is_flag=True, help="Stop at the first failing case.")
@click.option("--overwrite", is_flag=True,
              help="Delete the dataset generate made in --out first (only the files it wrote).")  # fmt: skip
@click.option("--quiet", is_flag=True, help="No progress bar.")
def generate(
    images, masks, dataset_json, organ, label_map, organ_label, out_dir, n_per_case, n_cases,
    config, label_scheme, seed, workers, shard, device, n_phantoms, spacing_mm, dtype, fmt,
    prefix, preview, strict, overwrite, quiet,
) -> None:  # fmt: skip
    """Synthesise tumours into CT and write an nnU-Net v2 dataset (imagesTr/, labelsTr/,
    dataset.json) with manifest.jsonl, which replays every case.

    Input: --images with --masks, or --dataset, or nothing (the built-in phantom, whose liver,
    pancreas or kidneys host the tumours: --organ). The organ (--organ, default liver) picks its
    mask from label maps (--label-map) and the preset (--config). Re-running the same command
    resumes an interrupted run; shards (--shard 1/4 ... 4/4) may run at once on several machines
    into the same --out.
    """
    if dataset_json and (images or masks):
        raise InputError("give either --dataset or --images/--masks, not both")
    if masks and not images:
        raise InputError("--masks needs --images")
    sources = None
    how = ""
    selection = select_organ(organ, label_map, organ_label)
    if dataset_json:
        sources = dataset_json_sources(dataset_json, organ_label, organ or "liver")
    elif images:
        sources, how = pair_sources(
            expand_paths(images, "images"), expand_paths(masks, "masks"), selection
        )
    elif organ_label is not None:
        raise InputError("--organ-label needs --images/--masks or --dataset")
    if sources is not None and n_cases is not None:
        raise InputError("--n-cases is for the phantom; with input files use --n-per-case")
    if sources is None and n_per_case != 1:
        raise InputError("--n-per-case is for input files; for the phantom use --n-cases")
    if sources is not None and not quiet:
        click.echo(f"{len(sources)} input CTs" + (f", masks paired {how}" if how else ""), err=True)
    summary = generate_dataset(
        out_dir,
        n_cases,
        sources=sources,
        n_per_case=n_per_case,
        config=config or host_organ(organ or "liver"),
        organ=organ,
        label_scheme=label_scheme,
        seed=seed,
        n_phantoms=n_phantoms,
        spacing_mm=spacing_mm,
        dtype=dtype,
        fmt=fmt,
        prefix=prefix,
        workers=workers,
        shard=parse_shard(shard),
        device=device,
        preview=preview,
        strict=strict,
        overwrite=overwrite,
        progress=not quiet,
    )
    rate = summary.n_cases / summary.seconds if summary.seconds > 0 else 0.0
    click.echo(
        f"wrote {summary.n_cases} cases ({summary.n_tumours} tumours) to {summary.out_dir} "
        f"in {summary.seconds:.1f} s ({rate:.2f} cases/s); {summary.n_skipped} already done, "
        f"{summary.n_failed} failed; the dataset now holds {summary.n_total} cases"
    )
    if summary.n_failed:
        total = summary.n_cases + summary.n_skipped + summary.n_failed
        k = len(summary.failures)
        raise TumorSynthError(
            f"{summary.n_failed} of {total} cases failed ({k} distinct problem{'s' * (k > 1)}, "
            "listed above)"
        )
