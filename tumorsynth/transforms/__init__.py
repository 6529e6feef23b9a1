"""Adapters that put tumour synthesis into training pipelines.

- :class:`RandTumorSynth`, :class:`RandTumorSynthd`: MONAI random transforms
  (``tumorsynth.transforms.monai``; needs ``torch`` and ``monai``, the ``train`` extra).
- :class:`RandomTumorSynth`: the TorchIO twin (``tumorsynth.transforms.torchio``; needs ``torchio``,
  which is not a dependency).

The names are resolved on first use, so importing this package (or ``tumorsynth``) imports neither
torch nor MONAI.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["RandTumorSynth", "RandTumorSynthd", "RandomTumorSynth"]

_SOURCES = {
    "RandTumorSynth": "tumorsynth.transforms.monai",
    "RandTumorSynthd": "tumorsynth.transforms.monai",
    "RandomTumorSynth": "tumorsynth.transforms.torchio",
}


def __getattr__(name: str) -> Any:
    if name in _SOURCES:
        return getattr(importlib.import_module(_SOURCES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
