"""Long runs stay flat: resident memory over many ``synthesize`` calls on one host.

Usage::

    python benchmarks/memory_flat.py [--calls 10000] [--spacing 2.0] [--every 500]

Synthesises into the phantom (``--spacing`` mm) ``--calls`` times with fresh seeds, dropping each
result as a training loop would, and prints the process's resident memory (``VmRSS``) every
``--every`` calls; then the growth from the first checkpoint to the last. A leak of even a few
kilobytes per call shows as tens of megabytes here.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import tumorsynth as ts
from tumorsynth.phantom import make_phantom


def rss_mb() -> float:
    """This process's resident memory, MB (Linux ``/proc``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS in /proc/self/status")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--spacing", type=float, default=2.0)
    parser.add_argument("--every", type=int, default=500)
    parser.add_argument("--config", default="liver")
    parser.add_argument("--out", type=Path, help="Write the checkpoints as JSON here.")
    a = parser.parse_args()
    case = ts.as_case(
        *(lambda c: (c.image, c.organ, c.spacing_mm))(make_phantom(0, None, a.spacing))
    )
    ts.synthesize(case, config=a.config, seed=0)  # kernels loaded, output memory pooled
    rows = [{"calls": 0, "rss_mb": rss_mb(), "s": 0.0}]
    start = time.perf_counter()
    for i in range(1, a.calls + 1):
        ts.synthesize(case, config=a.config, seed=i)
        if i % a.every == 0 or i == a.calls:
            rows.append({"calls": i, "rss_mb": rss_mb(), "s": time.perf_counter() - start})
            print(
                f"{i:6d} calls: RSS {rows[-1]['rss_mb']:.1f} MB ({rows[-1]['s']:.0f} s)", flush=True
            )
    first = rows[1]["rss_mb"] if len(rows) > 2 else rows[0]["rss_mb"]
    growth = rows[-1]["rss_mb"] - first
    per_call_kb = growth * 1024.0 / max(rows[-1]["calls"] - rows[1]["calls"], 1)
    print(
        f"RSS after warm-up {rows[0]['rss_mb']:.1f} MB, after {rows[1]['calls']} calls {first:.1f} MB, "
        f"after {rows[-1]['calls']} calls {rows[-1]['rss_mb']:.1f} MB: {growth:+.1f} MB "
        f"({per_call_kb:+.2f} kB per call); peak {max(r['rss_mb'] for r in rows):.1f} MB"
    )
    if a.out:
        a.out.write_text(json.dumps({"config": a.config, "spacing_mm": a.spacing, "rows": rows}))


if __name__ == "__main__":
    main()
