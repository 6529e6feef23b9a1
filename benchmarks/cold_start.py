"""Cold and warm start: the time to a first synthesised volume in a fresh process.

Usage::

    python benchmarks/cold_start.py [CHECKOUT ...] [--rounds 1]

For each checkout (default: this one; several are run in turn, for a side-by-side comparison),
with numba's cache in an empty temporary folder (``NUMBA_CACHE_DIR``):

- ``cold``: a fresh process imports tumorsynth, makes the phantom at 1 mm and synthesises one
  volume: what the first run after a plain install costs (every kernel compiled);
- ``warmup``: ``tumorsynth.dataset.warmup.warm_up()`` in a fresh empty cache, where the checkout
  has it (what ``make`` spends at set-up), then ``after warmup``: the cold run's steps in a fresh
  process that finds the cache it filled;
- ``warm``: the same steps once more, everything cached.

Each line gives wall seconds for import, phantom and first volume.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

FIRST = r"""
import json, time
t0 = time.perf_counter()
import tumorsynth as ts
from tumorsynth.phantom import make_phantom
t1 = time.perf_counter()
case = make_phantom(seed=0)
t2 = time.perf_counter()
ts.synthesize(case, seed=1)
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "phantom_s": t2 - t1, "first_volume_s": t3 - t2,
                  "total_s": t3 - t0, "file": ts.__file__}))
"""

WARMUP = r"""
import json, time
t0 = time.perf_counter()
from tumorsynth.dataset.warmup import warm_up
report = warm_up()
print(json.dumps({"warmup_s": time.perf_counter() - t0, "cpu_s": report.cpu_seconds}))
"""


def _run(checkout: Path, code: str, cache: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(checkout), "NUMBA_CACHE_DIR": cache}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=checkout, env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(f"{checkout}: {proc.stderr.strip().splitlines()[-1]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _has_warmup(checkout: Path) -> bool:
    return (checkout / "tumorsynth" / "dataset" / "warmup.py").exists()


def measure(checkout: Path) -> dict:
    """Cold, after-warm-up and warm starts of one checkout."""
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        out["cold"] = _run(checkout, FIRST, cache)
        out["warm"] = _run(checkout, FIRST, cache)
    if _has_warmup(checkout):
        with tempfile.TemporaryDirectory() as cache:
            out["warmup"] = _run(checkout, WARMUP, cache)
            out["after warmup"] = _run(checkout, FIRST, cache)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkouts", nargs="*", type=Path)
    parser.add_argument("--rounds", type=int, default=1)
    a = parser.parse_args()
    checkouts = [c.resolve() for c in a.checkouts] or [Path(__file__).resolve().parents[1]]
    for r in range(a.rounds):
        for checkout in checkouts if r % 2 == 0 else checkouts[::-1]:
            for name, row in measure(checkout).items():
                row.pop("file", None)
                text = ", ".join(
                    f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()
                )
                print(f"round {r + 1} {checkout.name}: {name}: {text}", flush=True)


if __name__ == "__main__":
    main()
