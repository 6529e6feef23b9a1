"""Training step time with and without on-the-fly synthesis inside the step.

Usage::

    python benchmarks/train_step.py [--networks unet swin_unetr] [--patch 96] [--batch 2]
                                    [--steps 30] [--device auto] [--out benchmarks/results/train_step.json]

For each network, the same pre-drawn batches of healthy phantom crops (already on the device; data
loading is left out of both) are trained on twice, alternating step by step so that clock drift
hits both alike:

- ``plain``: window, forward, DiceCE, backward, AdamW step;
- ``synth``: :func:`tumorsynth.stream.insert_tumours` renders the batch's tumours first (on a GPU one
  batched launch on the step's stream; on the CPU the numba engine, crop by crop), then the same.

It prints the median step time of each and their ratio (target on an H100: ``synth`` within 5 % of
``plain`` for UNet and SwinUNETR at 96^3, batch 2). Times are wall clock around a synchronised step.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from tumorsynth.phantom import make_phantom
from tumorsynth.segment.networks import build_network
from tumorsynth.segment.predict import window
from tumorsynth.stream import insert_tumours
from tumorsynth.stream.crops import TumorStream, collate
from tumorsynth.train import load_train_config


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def batches(patch: int, batch: int, n: int, device: torch.device) -> list[dict]:
    """``n`` batches of healthy crops with their drawn (not rendered) tumours, on ``device``."""
    stream = TumorStream([make_phantom(seed=0)], patch_size=(patch,) * 3, pos_fraction=1.0,
                         prob=1.0, config="liver", seed=0, render=False)  # fmt: skip
    rng = stream.generator()
    out = []
    for _ in range(n):
        b = collate([stream.sample(rng) for _ in range(batch)])
        out.append({"image": b["image"].to(device), "label": b["label"].to(device),
                    "params": b["params"]})  # fmt: skip
    return out


def time_network(name: str, patch: int, batch: int, steps: int, device: torch.device) -> dict:
    cfg = load_train_config(None, [f"network={name}", f"patch_size=[{patch},{patch},{patch}]"])
    model = build_network(cfg).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=4e-4, weight_decay=1e-5)
    from monai.losses import DiceCELoss

    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    amp = device.type == "cuda"
    data = batches(patch, batch, 4, device)

    def step(b: dict, synth: bool) -> float:
        _sync(device)
        t0 = time.perf_counter()
        image, label = b["image"], b["label"]
        if synth:
            image, label = insert_tumours(image, label, b["params"])
        x = window(image, cfg.window_hu)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            loss = loss_fn(model(x), label.long())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        _sync(device)
        return time.perf_counter() - t0

    for k in range(3):  # warm-up: kernels, cuDNN autotuning, numba cache
        step(data[k % 4], True)
        step(data[k % 4], False)
    times = {"plain": [], "synth": []}
    for k in range(steps):
        order = ("plain", "synth") if k % 2 == 0 else ("synth", "plain")
        for mode in order:
            times[mode].append(step(data[k % 4], mode == "synth"))
    plain, synth = (float(np.median(times[m])) for m in ("plain", "synth"))
    return {"network": name, "plain_ms": 1e3 * plain, "synth_ms": 1e3 * synth,
            "ratio": synth / plain, "steps": steps}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--networks", nargs="+", default=["unet", "swin_unetr"])
    parser.add_argument("--patch", type=int, default=96)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default="benchmarks/results/train_step.json")
    args = parser.parse_args()
    name = (
        args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    )
    device = torch.device(name)
    label = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    print(f"device: {label or device}; patch {args.patch}^3, batch {args.batch}")
    rows = [time_network(n, args.patch, args.batch, args.steps, device) for n in args.networks]
    print(f"{'network':<12} {'plain ms':>10} {'synth ms':>10} {'ratio':>7}")
    for r in rows:
        print(
            f"{r['network']:<12} {r['plain_ms']:>10.1f} {r['synth_ms']:>10.1f} {r['ratio']:>7.3f}"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "device": str(label or device),
        "patch": args.patch,
        "batch": args.batch,
        "rows": rows,
    }
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
