"""The segmentation networks ``tumorsynth train`` builds: MONAI's, with the reference's settings.

Every network maps a (B, 1, X, Y, Z) windowed CT to (B, 3, X, Y, Z) logits of background, organ
and tumour (the label values tumorsynth writes), or, for a run with ``label_scheme: per_organ``, to
(B, 7, X, Y, Z) logits of the per-organ codes (:data:`tumorsynth.engine.label_maps.PER_ORGAN_CODES`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tumorsynth.engine.label_maps import n_classes

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "NETWORKS",
    "N_CLASSES",
    "build_network",
    "default_channels",
    "network_spec",
    "patch_multiple",
]

NETWORKS = ("unet", "basic_unet", "swin_unetr")
"""Networks :func:`build_network` builds (all from MONAI)."""

N_CLASSES = 3
"""Output channels: background, organ, tumour."""


def default_channels(network: str) -> list[int]:
    """Channels per level when ``channels`` is not set: the reference UNet's 16 ... 256, MONAI's
    BasicUNet default."""
    return [16, 32, 64, 128, 256] if network == "unet" else [32, 32, 64, 128, 256, 32]


def patch_multiple(network: str, channels: Sequence[int] | None = None) -> int:
    """What every patch side must be a multiple of for ``network`` to map it back to its size."""
    if network == "swin_unetr":
        return 32
    if network == "basic_unet":
        return 16
    return 2 ** (len(channels or default_channels("unet")) - 1)


def network_spec(config: Any) -> dict[str, Any]:
    """The fields of a config (e.g. a :class:`~tumorsynth.train.TrainConfig`) that define the
    network's architecture: ``network``, ``channels``, ``swin_feature_size`` and ``patch_size``
    (stored in checkpoints, so that ``predict`` rebuilds the same network without the training
    config's data paths)."""
    spec = {
        "network": config.network,
        "channels": list(config.channels or default_channels(config.network)),
        "swin_feature_size": config.swin_feature_size,
        "patch_size": list(config.patch_size),
    }
    classes = n_classes(getattr(config, "label_scheme", "shared"))
    if classes != N_CLASSES:  # per-organ codes; a spec without the field has N_CLASSES
        spec["out_channels"] = classes
    return spec


def build_network(spec: Mapping[str, Any] | Any) -> nn.Module:
    """A freshly initialised MONAI network.

    Parameters
    ----------
    spec : dict or config
        :func:`network_spec` output (as stored in a checkpoint) or a config with its fields.

    Returns
    -------
    torch.nn.Module
        ``unet``: MONAI ``UNet`` with stride-2 levels and 2 residual units per level (the
        reference's); ``basic_unet``: ``BasicUNet``; ``swin_unetr``: ``SwinUNETR`` (v2 blocks, as
        the reference's ``SwinUNETR_v2``) with ``swin_feature_size``.
    """
    from monai.networks.nets import BasicUNet, SwinUNETR, UNet

    if not isinstance(spec, Mapping):
        spec = network_spec(spec)
    name, channels = spec["network"], tuple(int(c) for c in spec["channels"])
    classes = int(spec.get("out_channels", N_CLASSES))
    if name == "unet":
        return UNet(
            spatial_dims=3,
            in_channels=1,
            out_channels=classes,
            channels=channels,
            strides=(2,) * (len(channels) - 1),
            num_res_units=2,
        )
    if name == "basic_unet":
        return BasicUNet(spatial_dims=3, in_channels=1, out_channels=classes, features=channels)
    if name == "swin_unetr":
        return SwinUNETR(
            in_channels=1,
            out_channels=classes,
            feature_size=int(spec["swin_feature_size"]),
            spatial_dims=3,
            use_v2=True,
        )
    raise ValueError(f"unknown network {name!r}; choose from {', '.join(NETWORKS)}")
