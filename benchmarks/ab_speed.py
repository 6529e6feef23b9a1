"""Two versions of tumorsynth side by side: ``synthesize`` timed in alternating processes.

Usage::

    python benchmarks/ab_speed.py OLD_CHECKOUT NEW_CHECKOUT [--rounds 6] [--repeats 15]

Each round starts one process per checkout (in turn, the order swapped every round), each of
which imports its checkout's ``tumorsynth`` (by ``PYTHONPATH``), warms up, and reports the median
time per volume of ``synthesize`` on the 320 x 320 x 240 phantom at 1 mm, per preset, with the
``mix`` size class. Printed: the median over the rounds of each version's medians and their
ratio (new / old). The machine's drift from hour to hour moves both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

CHILD = r"""
import json, sys, time
import numpy as np
import tumorsynth as ts
from tumorsynth.phantom import make_phantom
case = make_phantom(seed=0)
args = (case.image, case.organ, case.spacing_mm)
out = {}
for preset in ("syntumor", "liver"):
    cfg = ts.load_config({"preset": preset, "size_class": "mix"})
    ts.synthesize(*args, config=cfg, seed=10_000)
    times = []
    for i in range(int(sys.argv[1])):
        t = time.perf_counter()
        ts.synthesize(*args, config=cfg, seed=i)
        times.append((time.perf_counter() - t) * 1e3)
    out[preset] = float(np.median(times))
print(json.dumps({"file": ts.__file__, **out}))
"""


def run(checkout: Path, repeats: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(repeats)],
        cwd=checkout, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if not result.pop("file").startswith(str(checkout)):
        raise SystemExit(f"{checkout}: the child imported another tumorsynth")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=15)
    a = parser.parse_args()
    old, new = a.old.resolve(), a.new.resolve()
    runs: dict[str, list[dict]] = {"old": [], "new": []}
    for r in range(a.rounds):
        order = [("old", old), ("new", new)] if r % 2 == 0 else [("new", new), ("old", old)]
        for name, path in order:
            runs[name].append(run(path, a.repeats))
        print(f"round {r + 1}: old {runs['old'][-1]}  new {runs['new'][-1]}", flush=True)
    for preset in ("syntumor", "liver"):
        o = float(np.median([x[preset] for x in runs["old"]]))
        n = float(np.median([x[preset] for x in runs["new"]]))
        print(f"{preset} mix: old {o:.1f} ms, new {n:.1f} ms, new/old {n / o:.3f}")


if __name__ == "__main__":
    main()
