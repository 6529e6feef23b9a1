"""Every speed benchmark of the project in one run: one table, and one JSON with the machine.

Usage::

    python benchmarks/run_all.py [--quick] [--only synthesis,generate,train_step,gpu,train_step_gpu]
                                 [--out benchmarks/results/run_all.json]

Runs, each in its own process (so that one failing, or a CUDA error, does not stop the others):

- ``synthesis_speed.py`` (CPU): ``synthesize`` per preset and size class, start-up, peak memory,
  scaling with the volume;
- ``generate_speed.py`` (CPU): ``tumorsynth generate`` throughput with file output;
- ``train_step.py`` on the CPU (a UNet at 64^3, batch 1: the full GPU setting would take hours);
- where CuPy sees a CUDA GPU: ``gpu_speed.py`` (render times, batches, CPU/GPU parity, compile
  time) and ``train_step.py`` on the GPU (UNet and SwinUNETR at 96^3, batch 2).

``--quick`` uses few repeats and small settings (a few minutes on a 2-core machine) and is for
checking that everything runs, not for figures to quote. The JSON holds the machine (CPU model,
cores, memory, GPU, driver) and the versions of Python, tumorsynth, NumPy, numba, SciPy, torch,
MONAI and CuPy, each benchmark's own JSON, and the printed table, so that machines and versions
can be compared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name: (script, device, quick arguments, full arguments)
_CPU_STEP = ["--device", "cpu", "--networks", "unet", "--batch", "1"]
BENCHMARKS = {
    "synthesis": ("synthesis_speed.py", "cpu", ["--repeats", "3"], ["--repeats", "15"]),
    "generate": ("generate_speed.py", "cpu", ["--n-cases", "4", "--workers", "1"], []),
    "train_step": (
        "train_step.py",
        "cpu",
        [*_CPU_STEP, "--patch", "32", "--steps", "3"],
        [*_CPU_STEP, "--patch", "64", "--steps", "10"],
    ),
    "gpu": ("gpu_speed.py", "gpu", ["--parity", "10", "--repeats", "5", "--skip", "compile"], []),
    "train_step_gpu": (
        "train_step.py",
        "gpu",
        ["--device", "cuda", "--networks", "unet", "--steps", "5"],
        ["--device", "cuda"],
    ),
}

_PROBE = r"""
import json, importlib
out = {}
for name in ("tumorsynth", "numpy", "numba", "llvmlite", "scipy", "torch", "monai", "cupy"):
    try:
        out[name] = importlib.import_module(name).__version__
    except Exception as err:
        out[name] = None
gpu = {"cupy_devices": 0}
try:
    import cupy
    n = cupy.cuda.runtime.getDeviceCount()
    gpu["cupy_devices"] = n
    if n:
        props = cupy.cuda.runtime.getDeviceProperties(0)
        name = props["name"]
        gpu["name"] = name.decode() if isinstance(name, bytes) else str(name)
        gpu["memory_gib"] = round(props["totalGlobalMem"] / 2**30, 1)
        gpu["cuda_runtime"] = cupy.cuda.runtime.runtimeGetVersion()
except Exception as err:
    gpu["cupy_error"] = f"{type(err).__name__}: {err}"
try:
    import numba
    gpu["numba_threads"] = numba.config.NUMBA_NUM_THREADS
except Exception:
    pass
print(json.dumps({"versions": out, "gpu": gpu}))
"""


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def machine_info() -> dict:
    """CPU model, cores, memory, GPU and driver, and the versions of the libraries that matter."""
    probe = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True)
    found = json.loads(probe.stdout) if probe.returncode == 0 else {"versions": {}, "gpu": {}}
    info = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "numba_threads": found["gpu"].pop("numba_threads", None),
        "memory_gib": _memory_gib(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": found["versions"],
        "gpu": found["gpu"],
    }
    try:
        smi = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        if smi.returncode == 0 and smi.stdout.strip():
            info["gpu"]["nvidia_smi"] = smi.stdout.strip().splitlines()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return info


def run_one(name: str, quick: bool, tmp: Path) -> dict:
    """Run one benchmark script in its own process; its JSON, or the error."""
    script, _, quick_args, full_args = BENCHMARKS[name]
    out = tmp / f"{name}.json"
    cmd = [
        sys.executable,
        str(HERE / script),
        *(quick_args if quick else full_args),
        "--out",
        str(out),
    ]
    print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=HERE.parent, capture_output=True, text=True)
    seconds = round(time.perf_counter() - start, 1)
    if proc.returncode != 0 or not out.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        print(f"   failed after {seconds} s: {' / '.join(tail)}", flush=True)
        return {"ok": False, "seconds": seconds, "error": "\n".join(tail)}
    print(f"   done in {seconds} s", flush=True)
    return {"ok": True, "seconds": seconds, "result": json.loads(out.read_text())}


def _rows(results: dict) -> list[tuple[str, str, str, str]]:
    """(benchmark, case, CPU, GPU) rows of the table; a case measured on both shares a row."""
    rows: dict[tuple[str, str], dict[str, str]] = {}

    def put(bench: str, case: str, column: str, text: str) -> None:
        rows.setdefault((bench, case), {})[column] = text

    r = results.get("synthesis", {}).get("result")
    if r:
        for p in r["presets"]:
            put("synthesize", f"{p['preset']} {p['size_class']}", "cpu", f"{p['median_ms']:.1f} ms")
        put("start-up", "import + first call", "cpu", f"{r['startup']['total_s']:.2f} s")
        put("peak memory", "one 512x512x300 volume", "cpu", f"{r['memory']['peak_rss_mb']:.0f} MB")
        put("scaling", "512x512x300 / 256x256x160", "cpu",
            f"{r['scaling']['ratio_beyond_copy']:.2f}x beyond the copy")  # fmt: skip
    r = results.get("generate", {}).get("result")
    if r:
        for run in r["runs"]:
            put("generate", f"{run['workers']} worker(s), {r['spacing_mm']:g} mm", "cpu",
                f"{run['cases_per_s']:.2f} cases/s")  # fmt: skip
    for name, column in (("train_step", "cpu"), ("train_step_gpu", "gpu")):
        r = results.get(name, {}).get("result")
        for row in (r or {}).get("rows", []):
            put("train step", f"{row['network']} {r['patch']}^3 x{r['batch']}", column,
                f"{row['plain_ms']:.0f} / {row['synth_ms']:.0f} ms ({row['ratio']:.2f}x)")  # fmt: skip
    r = results.get("gpu", {}).get("result")
    if r and "volume" in r:
        v = r["volume"]
        put("synthesize", "liver mix", "gpu",
            f"{v['device_ms']:.3f} ms device, {v['call_ms']:.3f} ms as called")  # fmt: skip
    for b in (r or {}).get("batch", []):
        put("batch render", f"16 x 96^3, {b['size_class']}", "gpu",
            f"{b['device_ms_tile8']:.3f} ms device")  # fmt: skip
    if r and "compile" in r:
        put("start-up", "kernel compile (empty cache)", "gpu",
            f"{r['compile']['empty_cache']['compile_or_load_s']:.2f} s")  # fmt: skip
    if r and "parity" in r:
        put("parity", "CPU vs GPU", "gpu", json.dumps(r["parity"]["summary"])[:60])
    return [(b, c, cols.get("cpu", ""), cols.get("gpu", "")) for (b, c), cols in rows.items()]


def _table(rows: list[tuple[str, str, str, str]], machine: dict) -> str:
    gpu = machine["gpu"].get("name") or "no GPU"
    head = ("benchmark", "case", f"CPU ({machine['cores']} cores)", f"GPU ({gpu})")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(4)]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(head, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    if any(r[0] == "train step" for r in rows):
        lines.append("train step: median ms without / with tumour synthesis in the step (ratio)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="few repeats, small settings")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {list(BENCHMARKS)}")
    parser.add_argument("--out", default="benchmarks/results/run_all.json")
    args = parser.parse_args()
    only = [n for n in args.only.split(",") if n] or list(BENCHMARKS)
    unknown = set(only) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmarks {sorted(unknown)}; choose from {list(BENCHMARKS)}")
    machine = machine_info()
    has_gpu = machine["gpu"].get("cupy_devices", 0) > 0
    print(f"{machine['cpu']}, {machine['cores']} cores; GPU: {machine['gpu'].get('name', 'none')}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if v))
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in only:
            if BENCHMARKS[name][1] == "gpu" and not has_gpu:
                reason = machine["gpu"].get("cupy_error", "CuPy sees no CUDA device")
                results[name] = {"ok": None, "skipped": reason}
                print(f"== {name}: skipped ({reason})")
                continue
            results[name] = run_one(name, args.quick, Path(tmp))
    rows = _rows(results)
    table = _table(rows, machine)
    print("\n" + table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"quick": args.quick, "machine": machine, "benchmarks": results, "table": table}
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out}")
    if any(r.get("ok") is False for r in results.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
