"""Compiling ``_src/*.cu`` with NVRTC through CuPy: once per device, source and image dtype.

CuPy keeps the compiled binaries in its on-disk kernel cache (``~/.cupy/kernel_cache``, or
``$CUPY_CACHE_DIR``), keyed by the source, the options and the GPU architecture: only the first
process on a machine pays the compilation; later ones load the cached binary. Within a process the
loaded functions are memoised per device.
"""

from __future__ import annotations

from pathlib import Path

import cupy
import numpy as np

from tumorsynth.errors import InputError
from tumorsynth.kernels import layout
from tumorsynth.kernels.edge import cuda_table

SRC = Path(__file__).with_name("_src")
# --fmad=false: no fused multiply-add, so double arithmetic rounds exactly as in the numba kernels
OPTIONS = ("--std=c++17", "--fmad=false")
TEMPLATED = {
    "texture": (),
    "render": ("ts_render", "ts_copy"),
    "organ": ("ts_measure", "ts_vessel"),
}
_CTYPES = {
    "float32": "float",
    "float64": "double",
    "int8": "signed char",
    "uint8": "unsigned char",
    "int16": "short",
    "uint16": "unsigned short",
    "int32": "int",
    "uint32": "unsigned int",
    "int64": "long long",
    "uint64": "unsigned long long",
}


def ctype(dtype) -> str:
    """The C type of an image dtype, or a clear error for one the kernels do not take."""
    name = np.dtype(dtype).name
    if name not in _CTYPES:
        raise InputError(f"GPU kernels take real images of {sorted(_CTYPES)}, not {name}")
    return _CTYPES[name]


def source(name: str) -> str:
    """Full CUDA source of ``_src/<name>.cu``: layout constants, the edge table, common code, the
    kernels."""
    defines = [f"#define L_{k} {getattr(layout, k)!r}" for k in sorted(dir(layout)) if k.isupper()]
    parts = [
        "\n".join(defines),
        cuda_table(),
        (SRC / "common.cuh").read_text(),
        (SRC / f"{name}.cu").read_text(),
    ]
    return "\n".join(parts)


@cupy.memoize(for_each_device=True)
def _module(name: str, c_type: str) -> cupy.RawModule:
    expressions = [f"{k}<{c_type}>" for k in TEMPLATED[name]]
    return cupy.RawModule(code=source(name), options=OPTIONS, name_expressions=expressions or None)


@cupy.memoize(for_each_device=True)
def _function(name: str, kernel: str, c_type: str):
    templated = kernel in TEMPLATED[name]
    module = _module(name, c_type if templated else "float")
    return module.get_function(f"{kernel}<{c_type}>" if templated else kernel)


def function(name: str, kernel: str, dtype=None):
    """The compiled kernel ``kernel`` of ``_src/<name>.cu`` (templated ones for ``dtype``)."""
    return _function(name, kernel, ctype(dtype) if dtype is not None else "float")


def blocks(n: int, threads: int) -> int:
    """Blocks of ``threads`` covering ``n`` elements (at least one)."""
    return max((int(n) + threads - 1) // threads, 1)
