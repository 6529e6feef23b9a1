"""What a run logs: metrics (CSV mirrored to TensorBoard) and the tumours each rank trained on.

``metrics.csv`` has the columns ``step, split`` and the trainer's own (a segmentation run's:
``loss, lr, data_s, step_s, tumour_dice, organ_dice``), empty where a value does not apply;
TensorBoard events go to ``tensorboard/`` when the
``tensorboard`` package is installed (the ``train`` extra installs it). ``streams/rank{r}.jsonl``
holds one line per step: for each crop of the batch its host case, its position, the seed of its
tumours and, in a mixed run, its source, enough to render them again
(:func:`tumorsynth.stream.crops.TumorStream.replay`).

A resumed run continues these files from its checkpoint's step: lines of later steps, written
after the checkpoint by a run that was then killed, are dropped first.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tumorsynth.io.volume import write_text_atomic

__all__ = ["MetricsLog", "StreamLog"]

log = logging.getLogger("tumorsynth.train")


def _drop_after(path: Path, step: int, step_of) -> None:
    """Rewrite ``path`` (atomically) without the lines whose step is above ``step``."""
    if not path.exists():
        return
    lines = path.read_text().splitlines(keepends=True)
    kept = [line for i, line in enumerate(lines) if step_of(i, line) <= step]
    if len(kept) < len(lines):
        write_text_atomic(path, "".join(kept))


class MetricsLog:
    """Append metrics of a run in ``out_dir`` (a no-op where ``enabled`` is False: ranks > 0).

    ``columns``: the values a row may hold (after ``step`` and ``split``); ``resume_step``: the
    step of the checkpoint a resumed run starts from (rows after it go).
    """

    def __init__(
        self,
        out_dir: Path,
        columns: Sequence[str],
        enabled: bool = True,
        resume_step: int | None = None,
    ) -> None:
        self.enabled = enabled
        self.columns = ("step", "split", *columns)
        self._file = self._csv = self._tb = None
        if not enabled:
            return
        path = Path(out_dir) / "metrics.csv"
        if resume_step is not None:
            _drop_after(path, resume_step, lambda i, line: 0 if i == 0 else int(line.split(",")[0]))
        new = not path.exists() or path.stat().st_size == 0
        self._file = path.open("a", newline="")
        self._csv = csv.DictWriter(self._file, fieldnames=self.columns)
        if new:
            self._csv.writeheader()
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            log.info("tensorboard is not installed: metrics go to metrics.csv only")
        else:
            purge = None if resume_step is None else resume_step + 1
            self._tb = SummaryWriter(str(Path(out_dir) / "tensorboard"), purge_step=purge)

    def write(self, step: int, split: str, **values: float) -> None:
        """One row: ``values`` keyed by column names."""
        if not self.enabled:
            return
        unknown = set(values) - set(self.columns)
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


class StreamLog:
    """``streams/rank{rank}.jsonl`` of a run: the crops and tumours of every step of one rank."""

    def __init__(self, out_dir: Path, rank: int, resume_step: int | None = None) -> None:
        path = Path(out_dir) / "streams" / f"rank{rank}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is not None:
            _drop_after(path, resume_step, lambda i, line: json.loads(line)["step"])
        self._file = path.open("a")

    def write(self, step: int, batch: dict[str, Any]) -> None:
        """One line: per crop, ``case``, ``crop_lo_vox``, the tumours' ``seed`` (None: none) and,
        in a mixed run, its ``source``."""
        items = [
            {
                "case": int(c),
                "crop_lo_vox": [int(v) for v in lo],
                "seed": p.get("seed") if p else None,
            }
            for c, lo, p in zip(batch["case"], batch["crop_lo_vox"], batch["params"], strict=True)
        ]
        for item, source in zip(items, batch.get("source", ()), strict=False):
            item["source"] = source
        self._file.write(json.dumps({"step": step, "items": items}) + "\n")

    def close(self) -> None:
        self._file.close()
