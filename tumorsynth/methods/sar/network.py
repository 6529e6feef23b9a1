r"""SAR's network: the very MONAI segmenter ``tumorsynth train`` builds, with three heads.

:class:`SarNet` wraps :func:`tumorsynth.segment.networks.build_network`'s network (``unet``,
``basic_unet`` or ``swin_unetr``) as ``backbone``, so that its weights start a segmenter through
``init_from`` (the checkpoint's ``backbone_prefix`` is ``"backbone."``). A forward hook on the
backbone's deepest block (:func:`bottleneck`) keeps the bottleneck features :math:`z`:

- restoration: a 1 x 1 x 1 convolution from the backbone's 3 output channels to 1, then a sigmoid
  (the restored crop, in [0, 1]);
- scale: :math:`h(\mathrm{GAP}(z))`, ``Linear(C, 128) - ReLU - Linear(128, S)``;
- domain: :math:`d(\mathrm{GAP}(\mathrm{GRL}_\lambda(z)))`, ``Linear(C, 128) - LeakyReLU(0.2) -
  Linear(128, 64) - LeakyReLU(0.2) - Linear(64, M)`` behind a gradient reversal layer.

The heads see the features of the corrupted input, or (``heads_input: clean``, the default) of
the clean crop, run beside it in the same forward pass. A head whose loss weight is 0 is not
built (restoration-only pre-training is Models Genesis), so that every parameter of the network
gets a gradient (DistributedDataParallel requires it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import torch
from torch import nn

from tumorsynth.methods.sar.reversal import GradientReversal
from tumorsynth.segment.networks import N_CLASSES, build_network, default_channels

__all__ = ["BACKBONE_PREFIX", "SarNet", "SarOutput", "bottleneck", "bottleneck_channels"]

BACKBONE_PREFIX = "backbone."
"""Where the segmenter's weights sit in a :class:`SarNet`'s state dict."""

HEAD_WIDTH = 128
"""Hidden width of the scale and domain heads."""


class SarOutput(NamedTuple):
    """What :class:`SarNet` returns for a (B, 1, X, Y, Z) batch.

    Attributes
    ----------
    restored : torch.Tensor
        (B, 1, X, Y, Z) in [0, 1].
    scale_logits, domain_logits : torch.Tensor or None
        (B, S) and (B, M) logits; None when the head is not built.
    """

    restored: torch.Tensor
    scale_logits: torch.Tensor | None
    domain_logits: torch.Tensor | None


def _unet_bottom(network: nn.Module) -> nn.Module:
    """MONAI ``UNet``'s bottom layer: the innermost ``SkipConnection``'s sub-module."""
    from monai.networks.layers.simplelayers import SkipConnection

    block = network.model
    while True:
        sub = block[1].submodule
        if isinstance(sub, nn.Sequential) and len(sub) == 3 and isinstance(sub[1], SkipConnection):
            block = sub
        else:
            return sub


def bottleneck(network: nn.Module, name: str) -> nn.Module:
    """The block of ``network`` (built by ``build_network`` as ``name``) whose output is the
    bottleneck: ``UNet``'s bottom residual unit (input / 2^(levels - 2)), ``BasicUNet``'s
    ``down_4`` (input / 16), ``SwinUNETR``'s ``encoder10`` (input / 32)."""
    if name == "unet":
        return _unet_bottom(network)
    if name == "basic_unet":
        return network.down_4
    if name == "swin_unetr":
        return network.encoder10
    raise ValueError(f"no bottleneck known for network {name!r}")


def bottleneck_channels(spec: Mapping[str, Any]) -> int:
    """Channels of :func:`bottleneck`'s output for a network spec."""
    name = spec["network"]
    channels = list(spec.get("channels") or default_channels(name))
    if name == "unet":
        return int(channels[-1])
    if name == "basic_unet":
        return int(channels[4])
    return 16 * int(spec["swin_feature_size"])


def _mlp(width_in: int, width_out: int, domain: bool) -> nn.Sequential:
    pool = [nn.AdaptiveAvgPool3d(1), nn.Flatten()]
    if not domain:
        return nn.Sequential(*pool, nn.Linear(width_in, HEAD_WIDTH), nn.ReLU(),
                             nn.Linear(HEAD_WIDTH, width_out))  # fmt: skip
    return nn.Sequential(
        *pool, nn.Linear(width_in, HEAD_WIDTH), nn.LeakyReLU(0.2),
        nn.Linear(HEAD_WIDTH, HEAD_WIDTH // 2), nn.LeakyReLU(0.2),
        nn.Linear(HEAD_WIDTH // 2, width_out),
    )  # fmt: skip


class SarNet(nn.Module):
    """A segmentation backbone with restoration, scale and domain heads (see the module).

    Parameters
    ----------
    spec : dict
        :func:`~tumorsynth.segment.networks.network_spec` of the backbone.
    n_scales, n_domains : int
        Classes of the scale and domain heads; 0 builds no such head.
    reversal : float
        Initial strength of the gradient reversal (:attr:`reversal` ``.strength`` changes it).
    """

    def __init__(
        self, spec: Mapping[str, Any], n_scales: int, n_domains: int, reversal: float = 1.0
    ) -> None:
        super().__init__()
        self.backbone = build_network(spec)
        self.restore = nn.Conv3d(N_CLASSES, 1, kernel_size=1)
        width = bottleneck_channels(spec)
        self.scale_head = _mlp(width, n_scales, domain=False) if n_scales else None
        self.reversal = GradientReversal(reversal)
        self.domain_head = _mlp(width, n_domains, domain=True) if n_domains else None
        self._features: torch.Tensor | None = None
        bottleneck(self.backbone, spec["network"]).register_forward_hook(self._keep)

    def _keep(self, module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        self._features = output

    def forward(self, x: torch.Tensor, clean: torch.Tensor | None = None) -> SarOutput:
        """Restore ``x`` (B, 1, X, Y, Z); the heads see the bottleneck features of ``x``, or of
        ``clean`` (B, 1, X, Y, Z) when it is given (both run as one batch of 2B: the backbones
        normalise each crop on its own, so the halves do not mix)."""
        self._features = None
        both = x if clean is None else torch.cat([x, clean])
        out = self.backbone(both)
        z, self._features = self._features, None
        if clean is not None:
            out, z = out[: len(x)], z[len(x) :]
        restored = torch.sigmoid(self.restore(out))
        scale = None if self.scale_head is None else self.scale_head(z)
        domain = None if self.domain_head is None else self.domain_head(self.reversal(z))
        return SarOutput(restored, scale, domain)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The bottleneck features of ``x`` (the whole backbone runs)."""
        self._features = None
        self.backbone(x)
        z, self._features = self._features, None
        return z
