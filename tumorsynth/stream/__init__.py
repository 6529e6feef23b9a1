"""The synthetic stream for training: :class:`TumorStream` (endless crops with tumours, their
healthy twins and params) and :func:`insert_tumours` (tumours rendered into a batch inside the
training step, on the GPU). Needs torch."""

from tumorsynth.stream.crops import TumorStream, collate
from tumorsynth.stream.insert import insert_tumours

__all__ = ["TumorStream", "collate", "insert_tumours"]
