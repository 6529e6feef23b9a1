"""File locks of a dataset folder: an exclusive lock around each check-and-write of its shared
state, and a shared lock each running ``generate`` holds on the folder while it runs.

Locks are ``flock`` locks (on Linux NFS clients, byte-range locks on the server), held by an open
file and released by the kernel when the process ends, however it ends: a killed run never
leaves a stale lock. Where the platform has no ``fcntl`` (Windows) there is no locking: runs into
one folder must then go one at a time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["ActiveRun", "exclusive"]


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created) for the ``with`` block, waiting for it.

    Raises
    ------
    OSError
        The lock file cannot be opened for writing (a read-only or full file system).
    """
    with open(path, "a") as f:
        if fcntl is None:
            yield
            return
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class ActiveRun:
    """A run's claim on a folder: a shared lock on ``path`` held until :meth:`close`.

    Several runs may hold it at once (shards of one run); :attr:`alone` says whether this one
    was the only run when it opened, which a run must be to change what other runs rely on
    (delete the folder's dataset, start one with other settings). Open it under
    :func:`exclusive`, so that no other run opens or decides in between.
    """

    def __init__(self, path: Path):
        self._file: IO[str] | None = open(path, "a")  # noqa: SIM115 (held until close)
        self.alone = True
        if fcntl is not None:
            try:
                fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.alone = False
            fcntl.flock(self._file, fcntl.LOCK_SH)  # from now on, one of the runs

    def close(self) -> None:
        """Release the claim (closing the file releases the lock)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
