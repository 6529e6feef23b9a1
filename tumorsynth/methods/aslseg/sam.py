r"""The Segment Anything Model through the ``segment-anything`` package: built, loaded, prompted.

- **Import without torchvision.** ``import segment_anything`` imports torchvision (for its
  ``SamPredictor``), which the package does not declare and which the CPU torch of this project
  cannot load (PyPI's torchvision wheels fail next to a ``+cpu`` torch). The model classes need
  only torch: :func:`import_sam_modeling` imports ``segment_anything.modeling`` without running
  the package's ``__init__`` when torchvision is absent or broken.
- **Weights from a local file only** (nothing is downloaded): the official checkpoints (a plain
  state dict) and MedSAM's (the same keys, or ``{"model": ...}`` with ``module.`` prefixes when
  saved from DistributedDataParallel), read on the CPU and moved to any device. A file of another
  architecture gives one line naming the first tensor that does not fit.
- **Preprocessing** (slices are windowed to [0, 1] and square): ``"sam"``, the official one
  (0-255, three channels, resized to the encoder's side, ``(x - mean) / std``); ``"medsam"``,
  MedSAM's (min-max to [0, 1], resized, no mean / std). Boxes are scaled to the encoder's frame.
- **Batches.** The stock ``MaskDecoder`` decodes one image with many prompts; :meth:`SamPrompter.decode`
  is called per image with all of its boxes (the image encoder runs batched).

``tiny`` is a 0.09 M-parameter SAM of the same classes (64 px input, 8 px patches, 2 blocks) with
random weights, for tests and CPU demos: it has none of SAM's knowledge.

References
----------
Kirillov A. et al., "Segment Anything", ICCV 2023. https://doi.org/10.1109/ICCV51070.2023.00371
Ma J. et al., "Segment anything in medical images", Nat Commun 15, 654 (2024).
https://doi.org/10.1038/s41467-024-44824-z
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tumorsynth.errors import ConfigError, InputError
from tumorsynth.io.volume import write_atomic
from tumorsynth.methods.aslseg.config import SAM_MODELS, SAM_PREPROCESSING
from tumorsynth.methods.aslseg.prompts import boxes as boxes_of

__all__ = [
    "TINY_SAM",
    "SamPrompter",
    "build_sam",
    "import_sam_modeling",
    "load_sam",
    "read_sam_state",
    "save_sam",
]

TINY_SAM = {"img_size": 64, "patch": 8, "embed_dim": 32, "depth": 2, "heads": 2, "prompt_dim": 32}
"""The ``tiny`` SAM's sizes (input side and patch in pixels)."""


def import_sam_modeling() -> types.ModuleType:
    """``segment_anything.modeling``, imported without torchvision where that is missing or broken.

    Raises
    ------
    ConfigError
        segment-anything is not installed.
    """
    loaded = sys.modules.get("segment_anything.modeling")
    if loaded is not None:
        return loaded
    spec = importlib.util.find_spec("segment_anything")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "ASLseg's stage II needs the segment-anything package: "
            "pip install 'tumorsynth[aslseg]' (torchvision is not needed)"
        )
    if importlib.util.find_spec("torchvision") is not None:
        try:
            return importlib.import_module("segment_anything.modeling")
        except (ImportError, RuntimeError, OSError):  # a torchvision built for another torch
            for name in [k for k in sys.modules if k.split(".")[0] == "segment_anything"]:
                del sys.modules[name]
    package = types.ModuleType("segment_anything")  # the package without its __init__
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["segment_anything"] = package
    return importlib.import_module("segment_anything.modeling")


def _tiny(m: types.ModuleType) -> nn.Module:
    t = TINY_SAM
    grid = t["img_size"] // t["patch"]
    encoder = m.ImageEncoderViT(
        img_size=t["img_size"], patch_size=t["patch"], embed_dim=t["embed_dim"],
        depth=t["depth"], num_heads=t["heads"], mlp_ratio=4, out_chans=t["prompt_dim"],
        qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6), use_rel_pos=True,
        window_size=4, global_attn_indexes=(t["depth"] - 1,),
    )  # fmt: skip
    prompt = m.PromptEncoder(embed_dim=t["prompt_dim"], image_embedding_size=(grid, grid),
                             input_image_size=(t["img_size"],) * 2, mask_in_chans=16)  # fmt: skip
    decoder = m.MaskDecoder(
        num_multimask_outputs=3, transformer_dim=t["prompt_dim"], iou_head_depth=3,
        iou_head_hidden_dim=t["prompt_dim"],
        transformer=m.TwoWayTransformer(depth=2, embedding_dim=t["prompt_dim"], mlp_dim=64,
                                        num_heads=2),
    )  # fmt: skip
    return m.Sam(image_encoder=encoder, prompt_encoder=prompt, mask_decoder=decoder)


def build_sam(model: str, *, seed: int = 0) -> nn.Module:
    """A SAM with random weights (``seed``; the global torch generator is left as it was).

    Parameters
    ----------
    model : str
        ``tiny``, ``vit_b``, ``vit_l`` or ``vit_h`` (the official architectures, 1024 px input).
    seed : int
    """
    if model not in SAM_MODELS:
        raise ConfigError(f"sam_model: unknown {model!r}; choose from {', '.join(SAM_MODELS)}")
    m = import_sam_modeling()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if model == "tiny":
            return _tiny(m).eval()
        build = importlib.import_module("segment_anything.build_sam").sam_model_registry[model]
        return build(checkpoint=None).eval()


def read_sam_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The weights of a SAM checkpoint on the CPU: a plain state dict, or ``{"model": ...}``
    (MedSAM's training checkpoints), with ``module.`` prefixes removed.

    Raises
    ------
    InputError
        A missing or unreadable file, or one that holds no weights.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such SAM checkpoint")
    try:
        state: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a damaged or foreign file
        raise InputError(f"{path}: cannot read the SAM checkpoint ({err})") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if (
        not isinstance(state, dict)
        or not state
        or not all(isinstance(v, torch.Tensor) for v in state.values())
    ):
        raise InputError(f"{path}: not a SAM checkpoint (no state dict of tensors in it)")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_sam(
    model: str, checkpoint: str | Path | None, device: str | torch.device = "cpu"
) -> nn.Module:
    """A SAM of architecture ``model`` with the weights of ``checkpoint``, in eval mode on
    ``device`` (None: random weights, ``tiny`` only).

    Raises
    ------
    InputError
        The file is missing or unreadable, or holds another architecture (the message names the
        first tensor whose shape differs, or the keys that are missing).
    """
    if checkpoint is None:
        if model != "tiny":
            raise ConfigError(f"sam_checkpoint: {model} needs its weights (a local file)")
        return build_sam(model).to(device)
    state = read_sam_state(checkpoint)
    sam = build_sam(model)
    own = sam.state_dict()
    for key, value in state.items():
        if key in own and own[key].shape != value.shape:
            raise InputError(
                f"{checkpoint}: a SAM of another size than {model}: {key} is "
                f"{tuple(value.shape)} in the file, {tuple(own[key].shape)} in {model}"
            )
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        what = f"lacks {missing[0]}" if missing else f"has {unexpected[0]}"
        raise InputError(
            f"{checkpoint}: not a {model} SAM checkpoint ({len(missing)} tensors missing, "
            f"{len(unexpected)} unknown; it {what})"
        )
    sam.load_state_dict(state, strict=True)
    return sam.to(device).eval()


def save_sam(sam: nn.Module, path: str | Path) -> Path:
    """Write ``sam``'s state dict (the official checkpoints' layout) to ``path``, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in sam.state_dict().items()}
    return write_atomic(path, lambda tmp: torch.save(state, tmp))


class SamPrompter:
    """A SAM used on square slices windowed to [0, 1]: image embeddings, box-prompted masks.

    Parameters
    ----------
    sam : torch.nn.Module
        A ``segment_anything.modeling.Sam`` (on ``device``).
    preprocess : str
        ``"sam"`` or ``"medsam"`` (see the module).
    device : torch.device
    amp : bool
        bfloat16 autocast for the image encoder on CUDA (embeddings are kept in bfloat16).
    """

    def __init__(self, sam: nn.Module, preprocess: str, device: torch.device, amp: bool = False):
        if preprocess not in SAM_PREPROCESSING:
            raise ConfigError(f"sam_preprocess: {preprocess!r}; choose from {SAM_PREPROCESSING}")
        self.sam, self.preprocess, self.device = sam, preprocess, torch.device(device)
        self.amp = bool(amp) and self.device.type == "cuda"
        self.img_size = int(sam.image_encoder.img_size)

    def encoder_input(self, images01: torch.Tensor) -> torch.Tensor:
        """(N, S, S) slices in [0, 1] -> (N, 3, side, side) input of the image encoder."""
        x = images01.float()
        if self.preprocess == "medsam":
            lo = x.amin(dim=(1, 2), keepdim=True)
            hi = x.amax(dim=(1, 2), keepdim=True)
            x = (x - lo) / (hi - lo).clamp_min(1e-8)
        side = (self.img_size, self.img_size)
        shrink = x.shape[-1] > self.img_size
        x = F.interpolate(x[:, None].expand(-1, 3, -1, -1), size=side, mode="bilinear",
                          align_corners=False, antialias=shrink)  # fmt: skip
        return self.sam.preprocess(x * 255.0) if self.preprocess == "sam" else x

    @torch.no_grad()
    def embed(self, images01: np.ndarray, batch_size: int = 8) -> torch.Tensor:
        """Image embeddings of (N, S, S) slices: (N, C, h, w) on the device (bfloat16 under
        ``amp``, else float32)."""
        out = []
        for start in range(0, len(images01), batch_size):
            chunk = torch.as_tensor(np.asarray(images01[start : start + batch_size]))
            x = self.encoder_input(chunk.to(self.device))
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.amp):
                out.append(self.sam.image_encoder(x))
        if not out:
            c = self.sam.prompt_encoder.embed_dim
            h, w = self.sam.prompt_encoder.image_embedding_size
            return torch.zeros((0, c, h, w), device=self.device)
        return torch.cat(out)

    def decode(self, embedding: torch.Tensor, box_xyxy: np.ndarray, size_px: int) -> torch.Tensor:
        """Mask logits (K, S, S) of one image's embedding (1, C, h, w) for its K boxes (pixels
        of the ``size_px`` slice); differentiable in the mask decoder."""
        scale = self.img_size / float(size_px)
        b = torch.as_tensor(np.asarray(box_xyxy, np.float32) * scale, device=self.device)
        sparse, dense = self.sam.prompt_encoder(points=None, boxes=b, masks=None)
        low, _ = self.sam.mask_decoder(
            image_embeddings=embedding.float(), image_pe=self.sam.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
            multimask_output=False,
        )  # fmt: skip
        if self.preprocess == "sam":
            side = (self.img_size, self.img_size)
            logits = self.sam.postprocess_masks(low, side, (size_px, size_px))
        else:  # MedSAM: no padding, a plain resize
            logits = F.interpolate(low, (size_px, size_px), mode="bilinear", align_corners=False)
        return logits[:, 0]

    @torch.no_grad()
    def probabilities(
        self, embeddings: torch.Tensor, prompts: np.ndarray, min_area_px: int = 1
    ) -> np.ndarray:
        """SAM's tumour probability per slice: prompted with one box per component of its
        prompt mask, the union (maximum) over the boxes; 0 where the prompt is empty.

        Parameters
        ----------
        embeddings : (N, C, h, w) tensor
        prompts : (N, S, S) bool array
        min_area_px : int
            Components smaller than this give no box.

        Returns
        -------
        (N, S, S) float32 array
        """
        size = prompts.shape[-1]
        out = np.zeros(prompts.shape, np.float32)
        for i, prompt in enumerate(prompts):
            b = boxes_of(prompt, min_area_px)
            if len(b):
                logits = self.decode(embeddings[i : i + 1], b, size)
                out[i] = torch.sigmoid(logits.float()).amax(0).cpu().numpy()
        return out
