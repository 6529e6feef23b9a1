"""``tumorsynth warmup``: compile the CPU kernels now, so that the first real run starts at once."""

from __future__ import annotations

import click


@click.command()
@click.option("--serial", is_flag=True, help="Compile in this process only (default: two at once).")
def warmup(serial):
    """Compile and cache the engine's and the phantom's CPU kernels (about a minute, once).

    Every command compiles the kernels it needs on its first run anyway and caches them; this does
    it ahead, e.g. right after installing (`make` runs it). Where they are cached, it takes about
    a second.
    """
    from tumorsynth.dataset.warmup import warm_up

    click.echo("compiling the CPU kernels (once; later runs load them from the cache) ...")
    report = warm_up(parallel=not serial)
    parts = ", ".join(f"{name} {cpu:.0f} s" for name, cpu in report.cpu_seconds.items())
    click.echo(f"kernels ready in {report.seconds:.0f} s (CPU time: {parts})")
