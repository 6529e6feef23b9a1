"""Train a small label-free tumour segmenter on the built-in phantom, then use it on a real CT.

Usage::

    python examples/train_phantom.py [--steps 500] [--out runs/phantom_example]
                                     [--data ../shared/data] [--checkpoint CKPT]

1. trains a small UNet on 2 mm phantom crops with tumours synthesised on the fly (no tumour label
   drawn by anyone; about two minutes on two CPU cores);
2. scores it on held-out synthetic tumours (another phantom, other seeds), per size class, with
   ``tumorsynth predict``'s post-processing (tumour specks and tumours off the liver removed) and
   keeping only the largest connected liver with its tumours, as the reference's evaluation does
   (``tumorsynth predict --largest-organ``); false positives per case and the sensitivity for
   tumours of 5 mm radius and more are given before and after the post-processing;
3. segments a real CT (``totalsegmentator_example/example_ct.nii.gz`` of the shared data: 3 mm,
   contrast-enhanced) as ``tumorsynth predict`` does, writing the label map in the CT's geometry,
   and scores the liver against the TotalSegmentator mask;
4. puts synthetic tumours into that real CT (with its liver mask) and scores their segmentation
   (before and after the post-processing), writing ``real_ct_with_tumours.png`` (slices through
   each tumour, prediction outlined).

``--checkpoint`` skips step 1 and scores that checkpoint instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

import numpy as np

import tumorsynth as ts
from tumorsynth.dataset.preview import write_preview
from tumorsynth.evaluate import detection, dice, evaluate_case
from tumorsynth.io.case import read_case
from tumorsynth.io.volume import read_volume, write_volume
from tumorsynth.phantom import make_phantom
from tumorsynth.segment.postprocess import DEFAULT_POSTPROCESS
from tumorsynth.segment.predict import Predictor, predict_files
from tumorsynth.train import load_train_config, train

RECIPE = {
    "phantom_spacing_mm": 2.0,
    "patch_size": [48, 48, 48],
    "channels": [8, 16, 32, 64],
    "batch_size": 4,
    "lr": 3e-3,
    "warmup_steps": 20,
    "synth_prob": 0.8,
    "pos_fraction": 0.5,
    "num_workers": 1,
}


POST = dataclasses.replace(DEFAULT_POSTPROCESS, largest_organ=True)


def detection_line(raw: list, post: list) -> str:
    """False positives per case and sensitivity for tumours of 5 mm radius and more, raw -> post."""

    def rates(found):
        pairs = [p for d in found for p in zip(d.lesions, d.detected, strict=True)]
        big = [hit for lesion, hit in pairs if lesion.radius_mm >= 5]
        fp = np.mean([d.n_false_positives for d in found])
        return fp, f"{sum(big)}/{len(big)}"

    (fp_raw, s_raw), (fp_post, s_post) = rates(raw), rates(post)
    return (f"false positives per case {fp_raw:.1f} -> {fp_post:.1f}, tumours of 5 mm radius "
            f"and more found {s_raw} -> {s_post} (raw -> post-processed)")  # fmt: skip


def held_out(predictor: Predictor) -> None:
    case = make_phantom(seed=1001, spacing_mm=2.0)
    raw_found, post_found = [], []
    for size in ("small", "medium", "large"):
        scores = []
        for seed in (100, 101, 102):
            result = ts.synthesize(case, config={"preset": "liver", "size_class": size}, seed=seed)
            raw = predictor(result.image, case.spacing_mm)
            labels = POST(raw, case.spacing_mm)
            scores.append(dice(labels == 2, result.label == 2))
            raw_found.append(detection(raw == 2, result.label == 2, case.spacing_mm))
            post_found.append(detection(labels == 2, result.label == 2, case.spacing_mm))
        print(f"  held-out phantom, {size:<6} tumours: Dice {np.mean(scores):.3f}")
    print(f"  held-out phantom: {detection_line(raw_found, post_found)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--out", type=Path, default=Path("runs/phantom_example"))
    default_data = os.environ.get("TUMORSYNTH_DATA", "../shared/data")
    parser.add_argument("--data", type=Path, default=Path(default_data))
    parser.add_argument("--checkpoint", type=Path, help="score this checkpoint (no training)")
    args = parser.parse_args()

    checkpoint = args.checkpoint or args.out / "run" / "checkpoints" / "last.pt"
    if args.checkpoint is None:
        config = load_train_config(
            {**RECIPE, "steps": args.steps, "val_every": args.steps,
             "out_dir": str(args.out / "run")}
        )  # fmt: skip
        train(config, overwrite=True)
    predictor = Predictor.from_checkpoint(checkpoint, "cpu", postprocess=None)
    held_out(predictor)

    folder = args.data / "totalsegmentator_example"
    ct, liver = folder / "example_ct.nii.gz", folder / "example_ct_liver_mask.nii.gz"
    if not ct.exists():
        print(f"no real CT at {ct}: pass --data (the shared data folder) for steps 3 and 4")
        return
    (pred,) = predict_files(
        checkpoint, [ct], args.out / "pred", largest_organ=True, overwrite=True, progress=False
    )  # tumorsynth predict --largest-organ: its default post-processing, the largest liver
    host = read_case(ct, liver).case
    predicted = read_volume(pred).array
    print(f"  real CT, liver Dice vs TotalSegmentator: {dice(predicted >= 1, host.organ == 1):.3f}")

    result = ts.synthesize(host, config={"preset": "liver", "size_class": "large"}, seed=7)
    raw = predictor(result.image, host.spacing_mm)
    labels = POST(raw, host.spacing_mm)
    scores = evaluate_case(labels, result.label, host.spacing_mm)
    found = f"{scores.detection.n_detected}/{scores.detection.n_lesions}"
    raw_found = detection(raw == 2, result.label == 2, host.spacing_mm)
    print(f"  real CT + synthetic tumours: Dice {scores.dice:.3f}, detected {found}; "
          f"{detection_line([raw_found], [scores.detection])}")  # fmt: skip
    image = args.out / "real_ct_with_tumours.nii.gz"
    write_volume(image, result.image, host.spacing_mm, host.origin_mm, host.direction)
    write_volume(args.out / "predicted.nii.gz", labels, host.spacing_mm, host.origin_mm,
                 host.direction)  # fmt: skip
    print(f"wrote {pred}, {image} and predicted.nii.gz")
    if (labels == 2).any():
        png = args.out / "real_ct_with_tumours.png"
        write_preview(png, result.image, labels, host.spacing_mm, host.direction)
        print(f"wrote {png} (the predicted tumours outlined in red)")


if __name__ == "__main__":
    main()
