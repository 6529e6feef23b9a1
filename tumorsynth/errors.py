"""Exceptions raised by tumorsynth.

Every error names what was wrong and, where there is one, the file or case it came from, so that a
user who sees only the last line of a traceback knows what to fix.
"""

from __future__ import annotations

__all__ = ["ConfigError", "InputError", "PlacementError", "TumorSynthError"]


class TumorSynthError(Exception):
    """Base class of every error tumorsynth raises on purpose."""


class InputError(TumorSynthError, ValueError):
    """An image, organ mask or spacing that cannot be synthesised into (shape, NaN, empty organ, ...)."""


class ConfigError(TumorSynthError, ValueError):
    """A configuration that is unknown, malformed or inconsistent."""


class PlacementError(TumorSynthError):
    """No position in the organ can hold a requested tumour (organ too small, too many vessels)."""
