"""SAR's domains: the user's CT read without labels, and bad input stopped at start-up in one line
that names the file (``tumorsynth sar pretrain``)."""

from __future__ import annotations

import numpy as np
import pytest
from toy import data_file, toy_volume
from tumorsynth.cli import main

from tumorsynth.io.volume import write_volume
from tumorsynth.methods.sar.config import load_sar_config
from tumorsynth.methods.sar.crops import SarCrops, fixed_crops
from tumorsynth.methods.sar.domains import load_domains

SMALL = ["pretrain.network=unet", "pretrain.channels=[4,8]", "pretrain.input_size=[8,8,8]",
         "pretrain.shuffle_blocks=50", "pretrain.steps=1", "pretrain.num_workers=0"]  # fmt: skip


def _ct(path, shape=(24, 22, 20), spacing=(2.0, 2.0, 2.0)):
    image, _ = toy_volume(shape, spacing)
    write_volume(path, image, spacing)
    return str(path)


def _domains(first: str, second: str) -> str:
    return f"pretrain.domains=[{{name: a, images: [{first}]}}, {{name: b, images: [{second}]}}]"


def run_cli(args, capsys):
    try:
        main(args)
        code = 0
    except SystemExit as err:
        code = err.code
    return code, capsys.readouterr().err


def test_unlabelled_ct_files_are_domains(tmp_path):
    a, b = _ct(tmp_path / "a.nii.gz"), _ct(tmp_path / "b.nii.gz", spacing=(1.0, 1.0, 3.0))
    cfg = load_sar_config(None, [*SMALL, _domains(a, b),
                                 "pretrain.crop_sizes_mm=[[10,10,10],[20,20,20]]"]).pretrain  # fmt: skip
    domains = load_domains(cfg, progress=False)
    assert [d.name for d in domains] == ["a", "b"] and domains[1].volumes[0].organ is None
    assert domains[1].volumes[0].spacing_mm == (1.0, 1.0, 3.0)
    batch = fixed_crops(SarCrops(domains, cfg, seed=0), 6, seed=0)
    assert batch["input"].shape == (6, 1, 8, 8, 8) and set(batch["domain"].tolist()) == {0, 1}


def _bad_inputs(tmp_path):
    good = _ct(tmp_path / "good.nii.gz")
    garbage = tmp_path / "broken.nii.gz"
    garbage.write_bytes(b"not a volume")
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "readme.txt").write_text("no CT here")
    return [
        (_domains(good, str(garbage)), f"{garbage}: cannot read image"),
        (_domains(good, str(folder)), f"{folder}: a folder, but no DICOM series in it"),
        (_domains(good, str(tmp_path / "none" / "*.nii.gz")), "the pattern matches no file"),
        (_domains(good, str(tmp_path / "missing.nii.gz")), "missing.nii.gz: no such file"),
        (_domains(good, good), "crop_sizes_mm[1] 64 x 64 x 32 mm is larger than"),
    ]


@pytest.mark.parametrize("case", range(5))
def test_bad_input_stops_pretrain_in_one_line(tmp_path, capsys, case):
    domains, message = _bad_inputs(tmp_path)[case]
    out = tmp_path / "run"
    args = ["sar", "pretrain", "--out", str(out), "--set", domains,
            *[a for s in SMALL for a in ("--set", s)]]  # fmt: skip
    code, err = run_cli(args, capsys)
    assert code == 1 and message in err and err.count("\n") == 1, err
    assert not (out / "checkpoints").exists()


def test_the_real_ct_is_an_unlabelled_domain():
    path = data_file("totalsegmentator_example/example_ct.nii.gz")
    cfg = load_sar_config(None, [*SMALL, "pretrain.domain_weight=0",
                                 f"pretrain.domains=[{{name: real, images: [{path}]}}]"]).pretrain  # fmt: skip
    (domain,) = load_domains(cfg, progress=False)
    assert domain.volumes[0].image.shape == (122, 101, 112)
    batch = fixed_crops(SarCrops([domain], cfg, seed=0), 8, seed=0)
    # crops are centred in the body: most of each one is not air
    air = (batch["target"] == 0).float().mean((1, 2, 3, 4))
    assert float(np.median(air.numpy())) < 0.9
