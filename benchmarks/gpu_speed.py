"""GPU engine: CPU/GPU parity, speed (CUDA events), bandwidth, compile time and its cache.

Usage::

    python benchmarks/gpu_speed.py [--parity 200] [--params params.jsonl] [--repeats 30]
                                   [--out benchmarks/results/gpu_speed.json]
    python benchmarks/gpu_speed.py --write-params params.jsonl   # draw the parity params (host only)

Reports

- parity: for ``--parity`` params over both presets, every size class and two phantoms (1 mm and
  0.75 x 0.75 x 2.5 mm), the tumour Dice and volume difference between CPU and GPU labels, the 99.9th
  percentile and maximum of |GPU - CPU| HU over the organ, and whether a GPU replay is bit-identical;
- speed on a 320 x 320 x 240 phantom (``liver`` preset, ``mix``): ``render`` as called (host packing
  included), the device part alone (replayed from a CUDA graph: no host in the loop) and its split
  into the output copy, the texture passes and the render launch; the same for a batch of 16 crops
  of 96^3 with one tumour each; achieved bandwidth against a device-to-device copy;
- host round-trips in the render path (device-to-host reads; 0 expected);
- NVRTC compile time in a fresh process with an empty kernel cache, and again with the cache filled.
All times are medians of CUDA-event timings after warm-up.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import tumorsynth as ts

PRESETS = ("syntumor", "liver")
CLASSES = ("tiny", "small", "medium", "large", "mix")
PHANTOMS = {"1mm": (0, (1.0, 1.0, 1.0)), "aniso": (1, (0.75, 0.75, 2.5))}


def _phantom(name: str):
    from tumorsynth.phantom import make_phantom

    seed, spacing = PHANTOMS[name]
    return make_phantom(seed=seed, spacing_mm=spacing)


def parity_plan(n: int) -> list[tuple[str, str, str, int]]:
    """(phantom, preset, size class, seed) for ``n`` cases, cycling through every combination."""
    combos = [(ph, pr, sc) for ph in PHANTOMS for pr in PRESETS for sc in CLASSES]
    return [(*combos[i % len(combos)], 1000 + i) for i in range(n)]


def write_params(path: Path, n: int) -> None:
    """Draw the parity params on the host and write them as JSON lines."""
    cases = {name: _phantom(name) for name in PHANTOMS}
    with path.open("w") as f:
        for i, (ph, preset, size, seed) in enumerate(parity_plan(n)):
            cfg = {"preset": preset, "size_class": size}
            params = ts.sample_params(cases[ph], config=cfg, rng=seed)
            f.write(json.dumps({"phantom": ph, "preset": preset, "size_class": size,
                                "params": params.to_dict()}) + "\n")  # fmt: skip
            print(f"  {i + 1}/{n} {ph} {preset} {size}: {len(params.lesions)} tumours", flush=True)


class Timer:
    """Median CUDA-event time (ms) of a function, after warm-up."""

    def __init__(self, cp):
        self.cp = cp
        self.start = cp.cuda.Event()
        self.end = cp.cuda.Event()

    def __call__(self, fn, repeats: int, warmup: int = 3) -> float:
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(repeats):
            self.start.record()
            fn()
            self.end.record()
            self.end.synchronize()
            times.append(self.cp.cuda.get_elapsed_time(self.start, self.end))
        return float(np.median(times))


def device_info(cp) -> dict:
    props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    info = {"gpu": name, "sms": int(props["multiProcessorCount"]), "cupy": cp.__version__}
    info["cuda_runtime"] = cp.cuda.runtime.runtimeGetVersion()
    info["memory_gib"] = round(props["totalGlobalMem"] / 2**30, 1)
    return info


def copy_ceiling(cp, timer: Timer, nbytes: int = 2 << 30) -> float:
    """GB/s of a device-to-device cudaMemcpy (bytes read + written)."""
    a = cp.empty(nbytes, cp.uint8)
    b = cp.empty(nbytes, cp.uint8)
    a.fill(1)
    ms = timer(lambda: b.data.copy_from_device_async(a.data, nbytes), 10)
    return 2 * nbytes / ms / 1e6


def graph_of(cp, fn):
    """A CUDA graph of ``fn``'s launches (capture fails on any host synchronisation)."""
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        fn()  # warm-up: compile, fill the memory pool
        stream.synchronize()
        stream.begin_capture()
        fn()
        graph = stream.end_capture()
    return graph, stream


def device_time(
    cp, timer: Timer, image, organ, out, label, params, repeats, tile=16, overlap=True
) -> float:
    """Median time of the device part (copy, texture passes, render), replayed from a graph;
    ``overlap``: the texture passes on a side stream during the copy (``synthesize_pack``)."""
    from tumorsynth.engine.batch import pack_batch
    from tumorsynth.kernels import cuda

    device = cuda.upload(pack_batch(params, tile=tile))
    work: dict = {}

    def device_part():
        if overlap:
            cuda.synthesize_pack(image, organ, out, label, device, work)
        else:
            cuda.copy_into(image, organ, out, label)
            cuda.render_pack(image, organ, out, label, device, work)

    graph, stream = graph_of(cp, device_part)
    with stream:
        return timer(graph.launch, repeats)


def bench_volume(cp, timer: Timer, case, params_list, repeats: int) -> dict:
    """One volume: render as called, the device part from a graph, its split, and variants."""
    from tumorsynth.engine.batch import pack_batch
    from tumorsynth.kernels import cuda
    from tumorsynth.kernels.cuda import _compile, render

    g_case = ts.as_case(cp.asarray(case.image), cp.asarray(case.organ), case.spacing_mm)
    image, organ = g_case.image[None], g_case.organ[None]
    out, label = cp.empty(image.shape, cp.float32), cp.empty(organ.shape, cp.uint8)
    rows = {"call_ms": [], "call_wall_ms": [], "pack_host_ms": [], "device_ms": [],
            "copy_ms": [], "copy_kernel_ms": [], "texture_ms": [], "render_ms": [],
            "tumours": []}  # fmt: skip
    for p in params_list:
        rows["tumours"].append(len(p.lesions))
        rows["call_ms"].append(timer(lambda p=p: ts.render(g_case, params=p), repeats))
        t = time.perf_counter()
        for _ in range(repeats):
            ts.render(g_case, params=p)
        cp.cuda.get_current_stream().synchronize()
        rows["call_wall_ms"].append((time.perf_counter() - t) / repeats * 1e3)
        t = time.perf_counter()
        for _ in range(repeats):
            host = pack_batch([p])
        rows["pack_host_ms"].append((time.perf_counter() - t) / repeats * 1e3)
        rows["device_ms"].append(device_time(cp, timer, image, organ, out, label, [p], repeats))
        device = cuda.upload(host)
        work: dict = {}
        with cp.cuda.Stream(non_blocking=True):
            rows["copy_ms"].append(timer(lambda: cuda.copy_into(image, organ, out, label), repeats))
            render.COPY = "kernel"
            rows["copy_kernel_ms"].append(
                timer(lambda: cuda.copy_into(image, organ, out, label), repeats)
            )
            render.COPY = "memcpy"
            rows["texture_ms"].append(
                timer(lambda d=device, w=work: cuda.build_textures(d, w), repeats)
            )
            tex = cuda.build_textures(device, work)
            rows["render_ms"].append(
                timer(
                    lambda d=device, tex=tex: cuda.render_lesions(
                        image[0], organ[0], out[0], label[0], case.spacing_mm, d["rows"],
                        d["tiles"], d["tile_ptr"], d["tile_lesions"], tex,
                    ),
                    repeats,
                )
            )  # fmt: skip
    result = {k: float(np.median(v)) for k, v in rows.items()}
    copy_bytes = 2 * (case.image.astype(np.float32).nbytes + case.organ.nbytes)
    result["copy_bytes"] = copy_bytes
    result["copy_gbps"] = copy_bytes / result["copy_ms"] / 1e6
    result["copy_kernel_gbps"] = copy_bytes / result["copy_kernel_ms"] / 1e6
    # variants of the device part, on the first params (medians over those)
    few = params_list[:3]
    variants = {}

    def variant(name, **kw):
        variants[name] = float(
            np.median([device_time(cp, timer, image, organ, out, label, [p], repeats, **kw)
                       for p in few])
        )  # fmt: skip

    variant("baseline")
    variant("sequential", overlap=False)
    variant("tile8", tile=8)
    render.COPY = "kernel"
    variant("copy_kernel")
    render.COPY = "memcpy"
    render.THREADS = 256
    variant("threads256")
    render.THREADS = 128
    cp.cuda.Device().synchronize()
    _compile.OPTIONS, fmad_off = ("--std=c++17",), _compile.OPTIONS
    cp.clear_memo()
    variant("fmad_on")
    diffs = []
    for p in few:  # what fused multiply-add costs in agreement with the CPU
        want = ts.render(case, params=p)
        got = ts.render(g_case, params=p)
        diffs.append(
            {"max_abs_hu": float(cp.abs(got.image - cp.asarray(want.image)).max()),
             "label_voxels_differing": int((got.label != cp.asarray(want.label)).sum())}
        )  # fmt: skip
    cp.cuda.Device().synchronize()
    _compile.OPTIONS = fmad_off
    cp.clear_memo()
    result["variants_device_ms"] = variants
    result["fmad_on_vs_cpu"] = diffs
    return result


def _crops(case, n: int, size: int, rng):
    idx = np.argwhere(case.organ)
    images, organs = [], []
    for c in idx[rng.choice(len(idx), n, replace=False)]:
        lo = np.clip(c - size // 2, 0, np.array(case.shape) - size)
        sl = tuple(slice(int(a), int(a) + size) for a in lo)
        images.append(case.image[sl])
        organs.append(case.organ[sl])
    return np.stack(images), np.stack(organs)


def bench_batch(cp, timer: Timer, case, size_class: str, repeats: int, n=16, size=96) -> dict:
    """A batch of ``n`` crops of ``size``^3, one tumour each."""
    from tumorsynth.engine.batch import pack_batch, render_batch, synthesize_batch
    from tumorsynth.kernels import cuda

    rng = np.random.default_rng(0)
    cfg = {"preset": "liver", "size_class": size_class}
    for _ in range(20):
        images, organs = _crops(case, n, size, rng)
        try:
            params = [
                ts.sample_params(im, org, case.spacing_mm, config=cfg, rng=i)
                for i, (im, org) in enumerate(zip(images, organs, strict=True))
            ]
            break
        except ts.PlacementError:
            continue
    params = [dataclasses.replace(p, lesions=p.lesions[:1]) for p in params]
    g_images, g_organs = cp.asarray(images), cp.asarray(organs)
    out = {"batch": list(images.shape), "size_class": size_class}
    out["synthesize_batch_ms"] = timer(
        lambda: synthesize_batch(g_images, g_organs, params_list=params), repeats
    )
    host = pack_batch(params)
    out["render_batch_ms"] = timer(lambda: render_batch(g_images, g_organs, host), repeats)
    t = time.perf_counter()
    for _ in range(repeats):
        pack_batch(params)
    out["pack_host_ms"] = (time.perf_counter() - t) / repeats * 1e3
    dst, lab = cp.empty(g_images.shape, cp.float32), cp.empty(g_organs.shape, cp.uint8)
    from tumorsynth.kernels.cuda import render

    for tile in (8, 16):
        out[f"device_ms_tile{tile}"] = device_time(
            cp, timer, g_images, g_organs, dst, lab, params, repeats, tile=tile
        )
    out["device_ms_tile8_sequential"] = device_time(
        cp, timer, g_images, g_organs, dst, lab, params, repeats, tile=8, overlap=False
    )
    render.COPY = "kernel"
    out["device_ms_tile8_copy_kernel"] = device_time(
        cp, timer, g_images, g_organs, dst, lab, params, repeats, tile=8
    )
    with cp.cuda.Stream(non_blocking=True):
        out["copy_kernel_ms"] = timer(lambda: cuda.copy_into(g_images, g_organs, dst, lab), repeats)
        render.COPY = "memcpy"
        out["copy_ms"] = timer(lambda: cuda.copy_into(g_images, g_organs, dst, lab), repeats)
    copy_bytes = 2 * (g_images.nbytes + g_organs.nbytes)
    out["copy_bytes"] = copy_bytes
    out["copy_gbps"] = copy_bytes / out["copy_ms"] / 1e6
    out["copy_kernel_gbps"] = copy_bytes / out["copy_kernel_ms"] / 1e6
    try:
        import torch

        t_images = torch.from_dlpack(g_images)
        t_organs = torch.from_dlpack(g_organs)
        out["torch_render_batch_ms"] = timer(
            lambda: render_batch(t_images, t_organs, host), repeats
        )
    except ImportError:
        pass
    return out


def host_reads(fn) -> dict:
    """CuPy calls that read device memory on the host or wait for the device while ``fn`` runs
    (traced with ``sys.setprofile``, which sees calls into CuPy's compiled methods too)."""
    reads = {"get", "asnumpy", "copy_to_host", "copy_to_host_async", "tolist", "item"}
    waits = {"synchronize", "synchronize_device"}
    seen = {"reads": 0, "waits": 0, "names": []}

    def profile(frame, event, arg):
        if event == "c_call":  # never repr() an array here: that would read it
            name = getattr(arg, "__name__", "")
            owner = type(getattr(arg, "__self__", None)).__module__ or ""
            where = f"{owner} {getattr(arg, '__module__', '') or ''}"
        elif event == "call":
            name, where = frame.f_code.co_name, frame.f_code.co_filename
        else:
            return
        if "cupy" not in where:
            return
        if name in reads or name in waits:
            seen["reads" if name in reads else "waits"] += 1
            seen["names"].append(name)

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return seen


def parity(cp, records: list[dict]) -> dict:
    """CPU (numba) and GPU renders of the same params, compared on the device."""
    cases, g_cases = {}, {}
    per_case = []
    for i, rec in enumerate(records):
        ph = rec["phantom"]
        if ph not in cases:
            cases[ph] = _phantom(ph)
            c = cases[ph]
            g_cases[ph] = ts.as_case(cp.asarray(c.image), cp.asarray(c.organ), c.spacing_mm)
        case, g_case = cases[ph], g_cases[ph]
        params = ts.TumorParams.from_dict(rec["params"])
        want = ts.render(case, params=params)
        got = ts.render(g_case, params=params)
        again = ts.render(g_case, params=params)
        organ = g_case.organ > 0
        c_label, c_image = cp.asarray(want.label), cp.asarray(want.image)
        t_cpu, t_gpu = c_label == 2, got.label == 2
        n_cpu, n_gpu = int(t_cpu.sum()), int(t_gpu.sum())
        inter = int((t_cpu & t_gpu).sum())
        diff = cp.abs(got.image - c_image)[organ]
        per_case.append(
            {
                "phantom": ph,
                "preset": rec["preset"],
                "size_class": rec["size_class"],
                "tumours": len(params.lesions),
                "dice": 1.0 if n_cpu + n_gpu == 0 else 2 * inter / (n_cpu + n_gpu),
                "volume_rel_diff": 0.0 if n_cpu == 0 else abs(n_gpu - n_cpu) / n_cpu,
                "label_voxels_differing": int((c_label != got.label).sum()),
                "p999_abs_hu": float(cp.percentile(diff, 99.9)),
                "max_abs_hu": float(diff.max()),
                "image_identical": bool((got.image == c_image).all()),
                "replay_identical": bool(
                    (again.image == got.image).all() and (again.label == got.label).all()
                ),
            }
        )
        if (i + 1) % 20 == 0:
            print(f"  parity {i + 1}/{len(records)}", flush=True)
    keys = ("dice", "volume_rel_diff", "p999_abs_hu", "max_abs_hu")
    summary = {
        "cases": len(per_case),
        "min_dice": min(c["dice"] for c in per_case),
        "max_volume_rel_diff": max(c["volume_rel_diff"] for c in per_case),
        "max_p999_abs_hu": max(c["p999_abs_hu"] for c in per_case),
        "max_abs_hu": max(c["max_abs_hu"] for c in per_case),
        "labels_identical": sum(c["label_voxels_differing"] == 0 for c in per_case),
        "images_identical": sum(c["image_identical"] for c in per_case),
        "replays_identical": sum(c["replay_identical"] for c in per_case),
        "median": {k: float(np.median([c[k] for c in per_case])) for k in keys},
    }
    return {"summary": summary, "cases": per_case}


_COMPILE = """
import json, sys, time
t0 = time.perf_counter()
import cupy, numpy as np
import tumorsynth as ts
from tumorsynth.kernels.cuda import _compile
t1 = time.perf_counter()
modules = {}
for name in ("texture", "render", "organ"):
    t = time.perf_counter()
    _compile.function(name, {"texture": "ts_texture_stage", "render": "ts_render",
                             "organ": "ts_measure"}[name], np.float32)
    modules[name] = time.perf_counter() - t
t2 = time.perf_counter()
params = ts.TumorParams.from_dict(json.loads(sys.argv[1]))
shape = params.volume_shape
image = cupy.full(shape, 100.0, cupy.float32)
organ = cupy.ones(shape, cupy.uint8)
ts.render(image, organ, params.spacing_mm, params)
cupy.cuda.get_current_stream().synchronize()
t3 = time.perf_counter()
ts.render(image, organ, params.spacing_mm, params)
cupy.cuda.get_current_stream().synchronize()
t4 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "compile_or_load_s": t2 - t1, "per_module_s": modules,
                  "first_render_s": t3 - t2, "second_render_s": t4 - t3}))
"""


def bench_compile(params) -> dict:
    """NVRTC compile on first use (empty kernel cache), then a fresh process with the cache."""
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "CUPY_CACHE_DIR": cache}
        for label in ("empty_cache", "warm_cache"):
            run = subprocess.run(
                [sys.executable, "-c", _COMPILE, params.to_json()],
                capture_output=True, text=True, env=env,
            )  # fmt: skip
            if run.returncode:
                raise RuntimeError(run.stderr[-3000:])
            out[label] = json.loads(run.stdout.strip().splitlines()[-1])
        out["cache_files"] = sum(len(files) for _, _, files in os.walk(cache))
    return out


def _load_records(path: str | None, n: int) -> list[dict]:
    if path and Path(path).exists():
        records = [json.loads(line) for line in Path(path).read_text().splitlines() if line]
        return records[:n]
    print("  drawing parity params on the host (pass --params to reuse a file)", flush=True)
    tmp = Path(tempfile.mkdtemp()) / "params.jsonl"
    write_params(tmp, n)
    return _load_records(str(tmp), n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parity", type=int, default=200)
    parser.add_argument("--params", default=None, help="JSON lines from --write-params")
    parser.add_argument("--write-params", default=None)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--skip", default="", help="comma-separated: compile,volume,batch,parity")
    parser.add_argument("--out", default="benchmarks/results/gpu_speed.json")
    args = parser.parse_args()
    if args.write_params:
        write_params(Path(args.write_params), args.parity)
        return
    import cupy as cp

    skip = set(filter(None, args.skip.split(",")))
    timer = Timer(cp)
    result: dict = {"device": device_info(cp), "python": platform.python_version()}
    print(json.dumps(result["device"]), flush=True)
    records = _load_records(args.params, args.parity)
    liver_mix = [
        ts.TumorParams.from_dict(r["params"])
        for r in records
        if r["phantom"] == "1mm" and r["preset"] == "liver" and r["size_class"] == "mix"
    ]
    if "compile" not in skip:
        print("compile time:", flush=True)
        result["compile"] = bench_compile(liver_mix[0])
        print("  " + json.dumps(result["compile"]), flush=True)
    result["copy_ceiling_gbps"] = copy_ceiling(cp, timer)
    print(f"device-to-device copy: {result['copy_ceiling_gbps']:.0f} GB/s", flush=True)
    case = _phantom("1mm")
    if "volume" not in skip:
        print(f"one volume {case.shape}, liver mix ({len(liver_mix)} params):", flush=True)
        result["volume"] = bench_volume(cp, timer, case, liver_mix, args.repeats)
        print("  " + json.dumps(result["volume"]), flush=True)
        g_case = ts.as_case(cp.asarray(case.image), cp.asarray(case.organ), case.spacing_mm)
        result["host_reads_in_render"] = host_reads(lambda: ts.render(g_case, params=liver_mix[0]))
    if "batch" not in skip:
        result["batch"] = []
        for size_class in ("small", "medium"):
            print(f"batch of 16 crops of 96^3, one {size_class} tumour each:", flush=True)
            row = bench_batch(cp, timer, case, size_class, args.repeats)
            result["batch"].append(row)
            print("  " + json.dumps(row), flush=True)
    if "parity" not in skip:
        print(f"parity over {len(records)} params:", flush=True)
        result["parity"] = parity(cp, records)
        print("  " + json.dumps(result["parity"]["summary"]), flush=True)
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    _print_table(result)
    print(f"wrote {path}")


def _print_table(r: dict) -> None:
    print("\n=== summary (medians, CUDA events) ===")
    print(f"GPU: {r['device']['gpu']}; d2d copy ceiling {r['copy_ceiling_gbps']:.0f} GB/s")
    if "volume" in r:
        v = r["volume"]
        print(
            f"320x320x240 liver mix ({v['tumours']:.0f} tumours): device {v['device_ms']:.3f} ms "
            f"(copy {v['copy_ms']:.3f} ms at {v['copy_gbps']:.0f} GB/s [kernel copy "
            f"{v['copy_kernel_ms']:.3f} ms at {v['copy_kernel_gbps']:.0f} GB/s], textures "
            f"{v['texture_ms']:.3f}, render {v['render_ms']:.3f}); render() as called "
            f"{v['call_ms']:.3f} ms (host pack {v['pack_host_ms']:.3f} ms)"
        )
        print(f"  variants (device ms): {json.dumps(v['variants_device_ms'])}")
        print(f"  with fused multiply-add, vs CPU: {json.dumps(v['fmad_on_vs_cpu'])}")
        print(f"host reads inside render(): {r.get('host_reads_in_render')}")
    for b in r.get("batch", []):
        print(
            f"16 x 96^3, one {b['size_class']} tumour each: device {b['device_ms_tile8']:.3f} ms "
            f"(tile 8), {b['device_ms_tile16']:.3f} ms (tile 16), "
            f"{b['device_ms_tile8_copy_kernel']:.3f} ms (tile 8, kernel copy), "
            f"{b['device_ms_tile8_sequential']:.3f} ms (tile 8, no overlap); copy "
            f"{b['copy_ms']:.3f} ms at {b['copy_gbps']:.0f} GB/s (kernel {b['copy_kernel_ms']:.3f} "
            f"ms at {b['copy_kernel_gbps']:.0f} GB/s); render_batch {b['render_batch_ms']:.3f} ms; "
            f"synthesize_batch {b['synthesize_batch_ms']:.3f} ms (host pack {b['pack_host_ms']:.3f})"
        )
    if "compile" in r:
        c = r["compile"]
        print(
            f"compile: empty cache {c['empty_cache']['compile_or_load_s']:.2f} s, "
            f"cache filled {c['warm_cache']['compile_or_load_s']:.3f} s"
        )
    if "parity" in r:
        print("parity: " + json.dumps(r["parity"]["summary"]))


if __name__ == "__main__":
    main()
