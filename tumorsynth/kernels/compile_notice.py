"""A notice, once per process, when a numba kernel has to be compiled.

The CPU kernels are compiled on first use and cached on disk (``cache=True``): a fresh install
compiles for about a minute, later processes load them in well under a second. Without a word,
that first minute looks like a hang (a progress bar frozen at 0 %). numba's event API reports the
start of every compilation (none is reported when a kernel loads from the cache); the first one
logs a warning on the ``tumorsynth`` logger. ``tumorsynth warmup`` compiles them all ahead.
"""

from __future__ import annotations

import logging
import threading

from numba.core import event

__all__ = ["NOTICE", "install", "silence"]

NOTICE = (
    "compiling numba kernels: first run only, about a minute (later runs load them from the "
    "cache; `tumorsynth warmup` compiles them all ahead)"
)

log = logging.getLogger("tumorsynth")


class _FirstCompile(event.Listener):
    """Logs :data:`NOTICE` at the first compilation in this process, then nothing."""

    def __init__(self) -> None:
        self.told = False
        self._lock = threading.Lock()

    def on_start(self, ev: event.Event) -> None:
        with self._lock:
            if self.told:
                return
            self.told = True
        log.warning(NOTICE)

    def on_end(self, ev: event.Event) -> None:
        pass


_LISTENER = _FirstCompile()
_installed = False


def install() -> None:
    """Register the notice with numba (once per process; later calls do nothing)."""
    global _installed
    if not _installed:
        event.register("numba:compile", _LISTENER)
        _installed = True


def silence() -> None:
    """No notice in this process (one that compiles on purpose, and has said so already)."""
    _LISTENER.told = True
