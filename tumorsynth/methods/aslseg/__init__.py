"""ASLseg: SAM in a semi-supervised loop for liver-tumour segmentation (Chen, Lin, Cheng, Tang 2024),
with the synthetic stream as the labelled set and the user's real CT as the unlabelled set.

A semi-supervised segmenter (stage I) proposes pseudo-labels on unlabelled slices; they prompt a
fine-tuned SAM (stage II); an adaptation network trained on synthetic pseudo-labels repairs SAM's
masks (stage III); the reliable ones join the labelled set, round after round. See
``docs/aslseg.md``.

- :func:`run_aslseg` / :func:`load_aslseg_config`: ``tumorsynth aslseg run``;
- :func:`segment_files`: ``tumorsynth aslseg segment`` (label maps in each CT's geometry);
- the stages: :class:`SemiSupervisedTrainer`, :class:`SamTuner`, :class:`AdaptTrainer`, each a
  :class:`tumorsynth.train.Trainer`;
- SAM: :func:`import_sam_modeling` (no torchvision), :func:`build_sam`, :func:`load_sam`.

Needs the ``train`` and ``aslseg`` extras (torch, MONAI, segment-anything).
"""

from tumorsynth.methods.aslseg.adapt import AdaptTrainer
from tumorsynth.methods.aslseg.config import ASLsegConfig, load_aslseg_config
from tumorsynth.methods.aslseg.predict import segment_files
from tumorsynth.methods.aslseg.run import RunResult, run_aslseg
from tumorsynth.methods.aslseg.sam import build_sam, import_sam_modeling, load_sam, save_sam
from tumorsynth.methods.aslseg.sam_tune import SamTuner
from tumorsynth.methods.aslseg.ssl import SemiSupervisedTrainer

__all__ = [
    "ASLsegConfig",
    "AdaptTrainer",
    "RunResult",
    "SamTuner",
    "SemiSupervisedTrainer",
    "build_sam",
    "import_sam_modeling",
    "load_aslseg_config",
    "load_sam",
    "run_aslseg",
    "save_sam",
    "segment_files",
]
