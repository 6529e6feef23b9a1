"""Synthesis speed, start-up time and memory, on the built-in phantom.

Usage::

    python benchmarks/synthesis_speed.py [--repeats 15] [--out benchmarks/results/synthesis_speed.json]

Reports, on a 320 x 320 x 240 phantom at 1 mm:

- the median time of ``synthesize`` per volume for each preset and size class (params drawn and
  rendered; the inputs are checked every call, as for a user passing arrays), and its split into
  ``sample_params`` and ``render``;
- the start-up cost of a fresh process: ``import tumorsynth`` and the first call (numba cache warm);
- the peak resident memory of a process that synthesises into one 512 x 512 x 300 volume;
- the same tumours rendered into a 256 x 256 x 160 and a 512 x 512 x 300 volume, with the cost of
  copying each volume once measured apart.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numba
import numpy as np

import tumorsynth as ts
from tumorsynth.backend.copies import copy_outputs
from tumorsynth.phantom import make_phantom

CLASSES = ("tiny", "small", "medium", "large", "mix")
PRESETS = ("syntumor", "liver")


def _median_ms(fn, repeats: int) -> tuple[float, list[float]]:
    times = []
    for i in range(repeats):
        t = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - t) * 1e3)
    return float(np.median(times)), times


def bench_one(case, preset: str, size: str, repeats: int) -> dict:
    """Median times of one preset and size class."""
    cfg = ts.load_config({"preset": preset, "size_class": size})
    args = (case.image, case.organ, case.spacing_mm)
    ts.synthesize(*args, config=cfg, seed=10_000)  # warm-up (JIT cache load)
    total, _ = _median_ms(lambda i: ts.synthesize(*args, config=cfg, seed=i), repeats)
    prepared = ts.as_case(*args)
    params = [ts.sample_params(prepared, config=cfg, rng=i) for i in range(repeats)]
    sample, _ = _median_ms(lambda i: ts.sample_params(prepared, config=cfg, rng=i), repeats)
    render, _ = _median_ms(lambda i: ts.render(prepared, params=params[i]), repeats)
    return {
        "preset": preset,
        "size_class": size,
        "median_ms": total,
        "sample_ms": sample,
        "render_ms": render,
        "median_tumours": float(np.median([len(p.lesions) for p in params])),
    }


def bench_presets(case, repeats: int) -> list[dict]:
    rows = []
    for preset in PRESETS:
        for size in CLASSES:
            row = bench_one(case, preset, size, repeats)
            rows.append(row)
            print(
                "  {preset:9s} {size_class:7s} {median_ms:7.1f} ms  (sample {sample_ms:5.1f}, "
                "render {render_ms:6.1f})  tumours {median_tumours:4.1f}".format(**row),
                flush=True,
            )
    return rows


_STARTUP = """
import time
t0 = time.perf_counter()
import tumorsynth, numpy as np
from tumorsynth.phantom import make_phantom
t1 = time.perf_counter()
case = make_phantom(seed=0, spacing_mm=2.0)
t2 = time.perf_counter()
tumorsynth.synthesize(case, config="liver", seed=0)
t3 = time.perf_counter()
print(t1 - t0, t3 - t2)
"""


def bench_startup() -> dict:
    runs = []
    for _ in range(3):  # the first run may fill the numba cache; report the warm ones
        out = subprocess.run([sys.executable, "-c", _STARTUP], capture_output=True, text=True)
        if out.returncode:
            raise RuntimeError(out.stderr)
        runs.append([float(v) for v in out.stdout.split()])
    warm = np.median(np.array(runs[1:]), axis=0)
    return {
        "import_s": float(warm[0]),
        "first_call_s": float(warm[1]),
        "total_s": float(warm.sum()),
    }


_MAKE_LARGE = """
import sys, numpy as np
from tumorsynth.phantom import make_phantom
case = make_phantom(seed=0, spacing_mm=1.0)
image = np.full((512, 512, 300), -1000, np.float32)
organ = np.zeros((512, 512, 300), np.uint8)
o = [(512 - s) // 2 for s in case.shape[:2]] + [(300 - case.shape[2]) // 2]
sl = tuple(slice(a, a + n) for a, n in zip(o, case.shape))
image[sl], organ[sl] = case.image, case.organ
np.save(sys.argv[1] + "/image.npy", image)
np.save(sys.argv[1] + "/organ.npy", organ)
"""

_MEMORY = """
import resource, sys, numpy as np
import tumorsynth
image = np.load(sys.argv[1] + "/image.npy")
organ = np.load(sys.argv[1] + "/organ.npy")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
cfg = {"preset": "liver", "size_class": "mix"}
out = tumorsynth.synthesize(image, organ, 1.0, config=cfg, seed=0)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(before, peak)
"""


def bench_memory() -> dict:
    """Peak resident memory of a fresh process that loads a 512 x 512 x 300 CT (float32) and its
    mask, then synthesises into it (the volume is prepared by another process)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for script in (_MAKE_LARGE, _MEMORY):
            out = subprocess.run(
                [sys.executable, "-c", script, tmp], capture_output=True, text=True
            )
            if out.returncode:
                raise RuntimeError(out.stderr)
    before, peak = (float(v) for v in out.stdout.split())
    return {"peak_rss_mb": peak, "rss_inputs_loaded_mb": before, "volume": [512, 512, 300]}


def _embed(case, shape, offset):
    image = np.full(shape, -1000, np.float32)
    organ = np.zeros(shape, np.uint8)
    src = tuple(
        slice(max(-o, 0), max(-o, 0) + min(n, s - max(o, 0)))
        for o, n, s in zip(offset, case.shape, shape, strict=False)
    )
    dst = tuple(
        slice(max(o, 0), max(o, 0) + (sl.stop - sl.start))
        for o, sl in zip(offset, src, strict=False)
    )
    image[dst], organ[dst] = case.image[src], case.organ[src]
    return ts.as_case(image, organ, case.spacing_mm)


def bench_scaling(case, repeats: int) -> dict:
    """Render the same tumours into a small and a large volume."""
    from dataclasses import replace

    stats = case.organ_stats
    centre = (np.array(stats.bbox_lo) + np.array(stats.bbox_hi)) // 2
    small_shape, large_shape = (256, 256, 160), (512, 512, 300)
    small = _embed(
        case, small_shape, tuple(int(n // 2 - c) for n, c in zip(small_shape, centre, strict=False))
    )
    params = ts.sample_params(small, config={"preset": "liver", "size_class": "mix"}, rng=7)
    shift = np.array([(b - a) // 2 for a, b in zip(small_shape, large_shape, strict=False)])
    large = _embed(small, large_shape, tuple(int(v) for v in shift))
    lesions = tuple(
        replace(
            lesion,
            center_mm=tuple(
                float(c + d * s)
                for c, d, s in zip(lesion.center_mm, shift, case.spacing_mm, strict=True)
            ),
        )
        for lesion in params.lesions
    )
    params_large = replace(params, volume_shape=large_shape, lesions=lesions)
    out = {"tumours": len(params.lesions)}
    for name, host, p in (("256x256x160", small, params), ("512x512x300", large, params_large)):
        render, _ = _median_ms(lambda i, h=host, q=p: ts.render(h, params=q), repeats)
        copy, _ = _median_ms(
            lambda i, h=host: copy_outputs(h.image, h.organ),
            repeats,
        )
        out[name] = {"render_ms": render, "copy_ms": copy, "beyond_copy_ms": render - copy}
        print(
            f"  {name}: render {render:.1f} ms, copy {copy:.1f} ms, beyond copy "
            f"{render - copy:.1f} ms",
            flush=True,
        )
    out["ratio_beyond_copy"] = (
        out["512x512x300"]["beyond_copy_ms"] / out["256x256x160"]["beyond_copy_ms"]
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", default="benchmarks/results/synthesis_speed.json")
    args = parser.parse_args()
    print(
        f"tumorsynth {ts.__version__}, numba {numba.__version__}, "
        f"{numba.get_num_threads()} threads, {platform.processor() or platform.machine()}"
    )
    case = make_phantom(seed=0)
    print(f"phantom {case.shape} at {case.spacing_mm} mm; median of {args.repeats} volumes:")
    result = {
        "machine": {
            "python": platform.python_version(),
            "threads": numba.get_num_threads(),
            "platform": platform.platform(),
        },
        "presets": bench_presets(case, args.repeats),
    }
    print("start-up (fresh process, numba cache warm):")
    result["startup"] = bench_startup()
    print("  import {import_s:.2f} s, first call {first_call_s:.2f} s".format(**result["startup"]))
    print("peak memory, 512 x 512 x 300:")
    result["memory"] = bench_memory()
    print(
        "  peak RSS {peak_rss_mb:.0f} MB (inputs loaded: {rss_inputs_loaded_mb:.0f} MB)".format(
            **result["memory"]
        )
    )
    print("same tumours, small and large volume:")
    result["scaling"] = bench_scaling(case, args.repeats)
    print(f"  large / small, beyond the copy: {result['scaling']['ratio_beyond_copy']:.2f}")
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
