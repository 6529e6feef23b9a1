r"""The segmenters a benchmark scores: a tumorsynth checkpoint, a TorchScript file or a Python
callable, each turned into ``predict(image_hu, spacing_mm) -> labels``.

- **Checkpoint** (``.pt`` from ``tumorsynth train``): :class:`tumorsynth.segment.predict.Predictor`, with the
  checkpoint's own HU window, voxel size (the CT is resampled to it and the labels back) and
  sliding windows.
- **TorchScript** (``torch.jit.save``): called on a (1, 1, X, Y, Z) float32 tensor, by default the
  CT windowed to [0, 1] (``torchscript.input: windowed``, ``window_hu`` -21 to 189 HU, the
  reference's) or in HU (``input: hu``). On the whole crop at once it may return logits
  (1, C, X, Y, Z), taken by argmax over C, or labels of shape (1, 1, X, Y, Z), (1, X, Y, Z) or
  (X, Y, Z). With ``torchscript.patch_size`` it is run by sliding windows with Gaussian blending,
  as :func:`tumorsynth.segment.predict.predict_volume` runs a checkpoint (MONAI's
  ``sliding_window_inference``), and must return logits (1, C, X, Y, Z).
- **Callable** ``module:function`` (an importable module or a ``.py`` file) or any Python callable:
  ``function(image_hu, spacing_mm)`` with a (X, Y, Z) float32 array in HU and a tuple of 3 mm
  values, returning a (X, Y, Z) label array (NumPy, or a torch tensor).

Labels are 0 background, 1 organ, 2 tumour. Each model gets its own copy of each case's CT. A
model that raises, calls ``sys.exit``, returns another shape, NaN or non-integer labels stops the
run with a :class:`BenchmarkError` naming the model and the case.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import warnings
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from tumorsynth.errors import InputError, TumorSynthError

__all__ = [
    "BenchmarkError",
    "Model",
    "TorchScriptConfig",
    "load_segmenter",
    "load_segmenters",
    "run_model",
]

Predict = Callable[[np.ndarray, tuple[float, float, float]], Any]
_GENERIC_STEMS = {"best", "last", "model", "checkpoint", "final"}


class BenchmarkError(TumorSynthError):
    """A model that failed on a benchmark case (the message names the model and the case)."""


@dataclass(frozen=True)
class TorchScriptConfig:
    """How a TorchScript model is fed.

    Attributes
    ----------
    input : {"windowed", "hu"}
        The CT windowed linearly to [0, 1] (clipped), or in HU.
    window_hu : tuple of 2 float
        The window, HU.
    patch_size : tuple of 3 int or None
        Sliding-window size in voxels (None: the whole crop in one call); the model must then
        return logits.
    overlap : float
        Sliding-window overlap.
    """

    input: Literal["windowed", "hu"] = "windowed"
    window_hu: tuple[float, float] = (-21.0, 189.0)
    patch_size: tuple[int, int, int] | None = None
    overlap: float = 0.5


@dataclass(frozen=True)
class Model:
    """A segmenter under test.

    Attributes
    ----------
    name : str
        Its name in the reports.
    kind : str
        ``checkpoint``, ``torchscript`` or ``callable``.
    source : str
        The file or ``module:function`` it came from.
    predict : callable
        ``predict(image_hu, spacing_mm)`` -> (X, Y, Z) labels.
    """

    name: str
    kind: str
    source: str
    predict: Predict


def _is_torchscript(path: Path) -> bool:
    """TorchScript archives hold ``<name>/constants.pkl`` and ``<name>/code/``; ``torch.save``
    archives do not."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(n.endswith("/constants.pkl") for n in archive.namelist())


def _as_labels(out: Any) -> Any:
    """Logits or labels of a TorchScript model as (X, Y, Z) labels."""
    if isinstance(out, (tuple, list)):
        out = out[0]
    if out.ndim == 5:
        return out.argmax(1)[0] if out.shape[1] > 1 else out[0, 0]
    return out[0] if out.ndim == 4 else out


def _torchscript(path: Path, cfg: TorchScriptConfig, device: str) -> Predict:
    import torch

    from tumorsynth.segment.predict import predict_volume, window

    try:
        with warnings.catch_warnings():  # recent torch deprecates TorchScript, which we read
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location=device).eval()
    except Exception as err:
        raise InputError(f"{path}: cannot load the TorchScript model ({err})") from None

    @torch.no_grad()
    def predict(image_hu: np.ndarray, spacing_mm: tuple[float, float, float]) -> Any:
        image = np.ascontiguousarray(image_hu, dtype=np.float32)
        if cfg.patch_size is not None and cfg.input == "windowed":  # as tumorsynth predict does
            return predict_volume(
                module, image, patch_size=cfg.patch_size, window_hu=cfg.window_hu, device=device,
                overlap=cfg.overlap, name=str(path),
            )  # fmt: skip
        x = torch.from_numpy(image)[None, None].to(device)
        if cfg.input == "windowed":
            x = window(x, cfg.window_hu)
        if cfg.patch_size is None:
            out = module(x)
        else:  # HU input: predict_volume would window it, so MONAI is called as it calls it
            from monai.inferers import sliding_window_inference

            out = sliding_window_inference(
                x, tuple(cfg.patch_size), 4, module, overlap=cfg.overlap, mode="gaussian"
            )
        return _as_labels(out).cpu()

    return predict


def _callable(spec: str) -> Predict:
    module_name, _, attr = spec.rpartition(":")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_file():
                raise InputError(f"model {spec}: no such file {path}")
            name = f"_tumorsynth_bench_{re.sub(r'[^A-Za-z0-9_]', '_', path.stem)}"
            loader = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(loader)
            sys.modules[name] = module
            loader.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except InputError:
        raise
    except Exception as err:
        raise InputError(
            f"model {spec}: cannot import {module_name} ({type(err).__name__}: {err})"
        ) from None
    fn = module
    for part in attr.split("."):
        fn = getattr(fn, part, None)
    if not callable(fn):
        raise InputError(f"model {spec}: {module_name} has no callable {attr!r}")
    return fn


def _default_name(path: Path) -> str:
    if path.stem.lower() not in _GENERIC_STEMS:
        return path.stem
    parents = [p.name for p in path.resolve().parents if p.name and p.name != "checkpoints"]
    return f"{parents[0]}/{path.stem}" if parents else path.stem


def load_segmenter(
    spec: str | Path | Predict,
    *,
    name: str | None = None,
    device: str = "auto",
    torchscript: TorchScriptConfig | None = None,
) -> Model:
    """Load one segmenter (not :func:`tumorsynth.segment.load_model`, which loads a network).

    Parameters
    ----------
    spec : str, Path or callable
        A checkpoint or TorchScript file, ``module:function``, ``file.py:function``, or a callable;
        ``name=...`` in front of a string names the model.
    name : str, optional
        Its name in the reports (default: the file's stem, with its run folder for ``best.pt`` or
        ``last.pt``; the function's name).
    device : str
        ``auto`` (CUDA when available), ``cpu`` or ``cuda[:N]``, for checkpoints and TorchScript.
    torchscript : TorchScriptConfig, optional

    Raises
    ------
    InputError
        A missing or unreadable file, or a callable that cannot be imported.
    """
    if callable(spec):
        qualname = getattr(spec, "__qualname__", type(spec).__qualname__)
        source = (
            f"{getattr(spec, '__module__', None) or '?'}:{qualname}"  # no address: reproducible
        )
        return Model(name or getattr(spec, "__name__", "model"), "callable", source, spec)
    text = str(spec)
    match = re.match(r"^([A-Za-z0-9_.+-]+)=(.+)$", text)
    if match and not Path(text).exists():
        name, text = name or match[1], match[2]
    path = Path(text)
    if path.is_file():
        if device == "auto":
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        if _is_torchscript(path):
            predict = _torchscript(path, torchscript or TorchScriptConfig(), device)
            return Model(name or _default_name(path), "torchscript", str(path), predict)
        from tumorsynth.segment.predict import Predictor

        # raw labels: the benchmark post-processes every model's alike (its config's rules)
        predictor = Predictor.from_checkpoint(path, device, postprocess=None)
        return Model(name or _default_name(path), "checkpoint", str(path), predictor)
    if ":" in text and not path.exists():
        return Model(name or text.rpartition(":")[2], "callable", text, _callable(text))
    raise InputError(
        f"model {text}: no such file (a checkpoint, a TorchScript file, or module:function)"
    )


def load_segmenters(
    specs: Sequence[str | Path | Predict] | dict[str, str | Path | Predict],
    *,
    device: str = "auto",
    torchscript: TorchScriptConfig | None = None,
) -> list[Model]:
    """Load several models (a dict gives their names); equal names get ``#2``, ``#3``, ..."""
    items = list(specs.items()) if isinstance(specs, dict) else [(None, s) for s in specs]
    if not items:
        raise InputError("no model to benchmark: give at least one --model")
    models, seen = [], {}
    for name, spec in items:
        model = load_segmenter(spec, name=name, device=device, torchscript=torchscript)
        count = seen[model.name] = seen.get(model.name, 0) + 1
        if count > 1:
            model = Model(f"{model.name}#{count}", model.kind, model.source, model.predict)
        models.append(model)
    return models


def _to_numpy(out: Any) -> np.ndarray:
    if hasattr(out, "detach"):
        out = out.detach().cpu().numpy()
    return np.asarray(out)


def run_model(
    model: Model, image_hu: np.ndarray, spacing_mm: tuple[float, float, float], where: str
) -> np.ndarray:
    """The model's labels of one case, checked: (X, Y, Z) uint8.

    The model gets its own copy of ``image_hu``: one that changes its input in place changes
    nothing another model (or the scoring) sees.

    Raises
    ------
    BenchmarkError
        The model raised, called ``sys.exit``, or returned another shape, NaN, infinite,
        negative, non-integer or too large labels; the message names the model and ``where``
        (the case).
    """

    def fail(what: str) -> BenchmarkError:
        return BenchmarkError(f"model {model.name!r} ({model.source}) {what} on {where}")

    try:
        out = _to_numpy(model.predict(np.array(image_hu, copy=True), spacing_mm))
    except BenchmarkError:
        raise
    except SystemExit as err:  # the benchmark stops, saying who stopped it
        raise fail(f"called sys.exit({err.code!r})") from None
    except Exception as err:
        raise fail(f"raised {type(err).__name__}: {err}") from err
    if out.shape != image_hu.shape:
        raise fail(f"returned an array of shape {out.shape} for a CT of shape {image_hu.shape}")
    if out.dtype == np.bool_:
        return out.astype(np.uint8)
    if not np.issubdtype(out.dtype, np.number):
        raise fail(f"returned {out.dtype} values, not labels")
    if np.issubdtype(out.dtype, np.floating):
        if not np.isfinite(out).all():
            bad = "NaN" if np.isnan(out).any() else "infinite values"
            raise fail(f"returned {bad}")
        if (out != np.round(out)).any():
            raise fail("returned non-integer labels (probabilities or logits?)")
    if out.size and (out.min() < 0 or out.max() > 255):
        raise fail(f"returned labels outside 0-255 ({out.min()} to {out.max()})")
    return out.astype(np.uint8)
