"""The segmentation networks ``tumorsynth train`` builds: MONAI's, with the reference's settings.

Every network maps a (B, 1, X, Y, Z) windowed CT to (B, 3, X, Y, Z) logits of background, organ
and tumour (the label values tumorsynth writes).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from tumorsynth.train.config import TrainConfig, default_channels

__all__ = ["N_CLASSES", "build_network", "network_spec"]

N_CLASSES = 3
"""Output channels: background, organ, tumour."""


def network_spec(config: TrainConfig) -> dict[str, Any]:
    """The fields of ``config`` that define the network's architecture (stored in checkpoints, so
    that ``predict`` rebuilds the same network without the training config's data paths)."""
    return {
        "network": config.network,
        "channels": list(config.channels or default_channels(config.network)),
        "swin_feature_size": config.swin_feature_size,
        "patch_size": list(config.patch_size),
    }


def build_network(spec: dict[str, Any] | TrainConfig) -> nn.Module:
    """A freshly initialised MONAI network.

    Parameters
    ----------
    spec : dict or TrainConfig
        :func:`network_spec` output (as stored in a checkpoint) or a config.

    Returns
    -------
    torch.nn.Module
        ``unet``: MONAI ``UNet`` with stride-2 levels and 2 residual units per level (the
        reference's); ``basic_unet``: ``BasicUNet``; ``swin_unetr``: ``SwinUNETR`` (v2 blocks, as
        the reference's ``SwinUNETR_v2``) with ``swin_feature_size``.
    """
    from monai.networks.nets import BasicUNet, SwinUNETR, UNet

    if isinstance(spec, TrainConfig):
        spec = network_spec(spec)
    name, channels = spec["network"], tuple(int(c) for c in spec["channels"])
    if name == "unet":
        return UNet(
            spatial_dims=3,
            in_channels=1,
            out_channels=N_CLASSES,
            channels=channels,
            strides=(2,) * (len(channels) - 1),
            num_res_units=2,
        )
    if name == "basic_unet":
        return BasicUNet(spatial_dims=3, in_channels=1, out_channels=N_CLASSES, features=channels)
    if name == "swin_unetr":
        return SwinUNETR(
            in_channels=1,
            out_channels=N_CLASSES,
            feature_size=int(spec["swin_feature_size"]),
            spatial_dims=3,
            use_v2=True,
        )
    raise ValueError(f"unknown network {name!r}")  # unreachable: TrainConfig checks the name
