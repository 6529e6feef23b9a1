"""SAR: scale-aware restoration pre-training (Zhang, Feng, Zhou, Zhang, Wang, MICCAI 2021), then
label-free fine-tuning on the synthetic stream.

A 3-D segmentation network (the one ``tumorsynth train`` builds) learns without labels to restore
corrupted crops (Models Genesis' corruptions), to tell which of several physical sizes a crop was
taken at (scale discrimination), and to hide which source of CT a crop came from (a domain head
behind a gradient reversal layer). Its weights then start ``tumorsynth train`` (``init_from``).

- :mod:`~tumorsynth.methods.sar.config`: the settings (``pretrain``, ``finetune``, ``compare``);
- :mod:`~tumorsynth.methods.sar.domains`, :mod:`~tumorsynth.methods.sar.crops`,
  :mod:`~tumorsynth.methods.sar.corruption`: the data;
- :mod:`~tumorsynth.methods.sar.network`, :mod:`~tumorsynth.methods.sar.reversal`,
  :mod:`~tumorsynth.methods.sar.losses`: the model and its loss;
- :mod:`~tumorsynth.methods.sar.trainer`: :func:`pretrain` (``tumorsynth sar pretrain``);
- :mod:`~tumorsynth.methods.sar.compare`: :func:`compare` (``tumorsynth sar compare``): fine-tuning
  from scratch, from restoration-only pre-training and from SAR, at several budgets.

Needs the ``sar`` extra (torch, MONAI, matplotlib, TensorBoard).
"""

from tumorsynth.methods.sar.config import (
    CompareConfig,
    DomainConfig,
    PretrainConfig,
    SarConfig,
    finetune_config,
    load_sar_config,
)
from tumorsynth.methods.sar.network import SarNet, SarOutput
from tumorsynth.methods.sar.reversal import GradientReversal, dann_lambda
from tumorsynth.methods.sar.trainer import SarTrainer, pretrain

__all__ = [
    "CompareConfig",
    "DomainConfig",
    "GradientReversal",
    "PretrainConfig",
    "SarConfig",
    "SarNet",
    "SarOutput",
    "SarTrainer",
    "dann_lambda",
    "finetune_config",
    "load_sar_config",
    "pretrain",
]
