"""CuPy kernels (GPU): the same public names and signatures as :mod:`tumorsynth.kernels.cpu`.

CUDA sources live in ``_src/`` and are compiled on first use (NVRTC, cached on disk by CuPy). Nothing
here imports CuPy until a kernel is first asked for, so ``tumorsynth.kernels.cuda.hostpack`` (pure
NumPy) can lay out batches on machines without a GPU.
"""

from importlib import import_module

_WHERE = {
    "ball_inside_organ": "organ",
    "build_textures": "texture",
    "copy_into": "render",
    "copy_outputs": "render",
    "measure_organ_arrays": "organ",
    "render_lesions": "render",
    "render_pack": "render",
    "screen_centres": "organ",
    "start_copy": "render",
    "synthesize_pack": "render",
    "texture_grid": "texture",
    "upload": "transfer",
    "vessel_overlap": "organ",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
