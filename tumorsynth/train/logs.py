"""Training metrics: one CSV row per step and per validation, mirrored to TensorBoard.

``metrics.csv`` has the columns ``step, split, loss, lr, data_s, step_s, tumour_dice, organ_dice``
(empty where a value does not apply); a resumed run appends to it. TensorBoard events go to
``tensorboard/`` when the ``tensorboard`` package is installed (the ``train`` extra installs it).
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

__all__ = ["COLUMNS", "MetricsLog"]

log = logging.getLogger("tumorsynth.train")

COLUMNS = ("step", "split", "loss", "lr", "data_s", "step_s", "tumour_dice", "organ_dice")


class MetricsLog:
    """Append metrics of a run in ``out_dir`` (a no-op where ``enabled`` is False: ranks > 0)."""

    def __init__(self, out_dir: Path, enabled: bool = True) -> None:
        self.enabled = enabled
        self._file = self._csv = self._tb = None
        if not enabled:
            return
        path = Path(out_dir) / "metrics.csv"
        new = not path.exists() or path.stat().st_size == 0
        self._file = path.open("a", newline="")
        self._csv = csv.DictWriter(self._file, fieldnames=COLUMNS)
        if new:
            self._csv.writeheader()
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            log.info("tensorboard is not installed: metrics go to metrics.csv only")
        else:
            self._tb = SummaryWriter(str(Path(out_dir) / "tensorboard"))

    def write(self, step: int, split: str, **values: float) -> None:
        """One row: ``values`` keyed by :data:`COLUMNS` names."""
        if not self.enabled:
            return
        unknown = set(values) - set(COLUMNS)
        if unknown:
            raise KeyError(f"unknown metric columns {sorted(unknown)}")
        self._csv.writerow({"step": step, "split": split, **values})
        if split != "train" or step % 10 == 0:
            self._file.flush()
        if self._tb is not None:
            for key, value in values.items():
                self._tb.add_scalar(f"{split}/{key}", value, step)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._tb is not None:
            self._tb.close()
