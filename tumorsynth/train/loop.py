r"""``tumorsynth train``: a label-free segmenter trained on healthy CT with tumours made on the fly.

One process per device; under ``torchrun`` every process is one rank of a DistributedDataParallel
run (NCCL on GPUs, Gloo on CPUs) with its own synthesis stream. Every rank validates its share of
the validation cases (the scores are summed over the ranks); rank 0 writes the checkpoints
(``best.pt``, ``last.pt``), ``metrics.csv`` and TensorBoard events, and shows the progress bar;
every rank records the crops and tumours it trained on in ``streams/rank{r}.jsonl`` (replayable
with :meth:`tumorsynth.stream.TumorStream.replay`).

Examples
--------
>>> from tumorsynth.train import load_train_config, train              # doctest: +SKIP
>>> result = train(load_train_config("train.yaml", ["steps=2000"]))    # doctest: +SKIP
>>> result.best_dice, result.out_dir                                   # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from tumorsynth.errors import ConfigError, TumorSynthError
from tumorsynth.io import write_atomic, write_text_atomic
from tumorsynth.predict import Predictor
from tumorsynth.train.checkpoint import load_checkpoint, save_checkpoint
from tumorsynth.train.config import TrainConfig, dumps
from tumorsynth.train.data import augment, load_hosts, load_val_cases, make_loader, window
from tumorsynth.train.hooks import insert_tumours
from tumorsynth.train.logs import MetricsLog, StreamLog
from tumorsynth.train.networks import build_network, network_spec
from tumorsynth.train.validate import validate

__all__ = ["TrainResult", "train"]

log = logging.getLogger("tumorsynth.train")

ARCHITECTURE = ("network", "channels", "swin_feature_size")
"""Fields of :func:`~tumorsynth.train.networks.network_spec` a resumed run must keep (the patch
size may change: it does not shape the weights)."""

DIST_TIMEOUT = timedelta(hours=1)
"""How long ranks wait for each other (every rank validates a share of the volumes; a rank
reading or resampling large CTs at start-up may keep the others waiting for a while)."""


@dataclass(frozen=True)
class TrainResult:
    """What a run produced (on rank 0; other ranks get the same paths).

    Attributes
    ----------
    out_dir : Path
    step : int
        Steps done in all (a resumed run counts the earlier ones).
    best_dice : float or None
        Best mean tumour Dice at validation (None without validation cases).
    last_loss : float
        Training loss of the last step.
    """

    out_dir: Path
    step: int
    best_dice: float | None
    last_loss: float


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    gpu_synth: bool = False  # tumours rendered into the batch on the device, in the step
    owns_group: bool = False  # this run initialised the process group (and destroys it)

    @property
    def main(self) -> bool:
        return self.rank == 0


def _gpu_synthesis(config: TrainConfig, device: torch.device) -> bool:
    """Whether the step renders the tumours on the GPU (else the DataLoader workers do)."""
    if device.type != "cuda" or config.synth_device == "cpu":
        if config.synth_device == "gpu":
            raise ConfigError("synth_device 'gpu' needs a CUDA device (device is the CPU)")
        return False
    from tumorsynth.backend import get_backend

    try:
        get_backend("cuda")
    except TumorSynthError as err:
        if config.synth_device == "gpu":
            raise ConfigError(f"synth_device 'gpu': {err}") from None
        log.info("tumours are rendered in the DataLoader workers: %s", err)
        return False
    return True


def _setup(config: TrainConfig) -> _Dist:
    """Pick the device and, under torchrun, join the process group."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    want = config.device
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    if want.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {config.device!r}: torch sees no CUDA device")
    if want.startswith("cuda:") and world > 1:
        raise ConfigError(
            f"device {config.device!r} would put every rank on one GPU: under torchrun use "
            "'cuda' or 'auto' (each rank takes the GPU of its LOCAL_RANK)"
        )
    if want == "cuda":
        want = f"cuda:{local}" if world > 1 else "cuda"
    device = torch.device(want)
    gpu_synth = _gpu_synthesis(config, device)
    if config.threads:
        torch.set_num_threads(config.threads)
    if world == 1:
        return _Dist(0, 1, device, gpu_synth)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    owns = not torch.distributed.is_initialized()
    if owns:
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend=backend, timeout=DIST_TIMEOUT)
    rank, size = torch.distributed.get_rank(), torch.distributed.get_world_size()
    return _Dist(rank, size, device, gpu_synth, owns)


def _prepare_out_dir(config: TrainConfig, resume: bool, overwrite: bool) -> Path:
    out = Path(config.out_dir)
    last = out / "checkpoints" / "last.pt"
    if resume and not last.is_file():
        raise ConfigError(f"--resume: {last} does not exist (nothing to resume)")
    if not resume and not overwrite and last.exists():
        raise ConfigError(
            f"{out} holds a run already: pass --resume to continue it or --overwrite to start again"
        )
    return out


def _common_spacing(hosts) -> list[float] | None:
    """The hosts' voxel size if they share one (to 1 %), else None (native spacing)."""
    spacings = np.array([h.spacing_mm for h in hosts], dtype=float)
    if np.allclose(spacings, spacings[0], rtol=0.01, atol=0):
        return [float(s) for s in spacings[0]]
    return None


def _schedule(optimizer, config: TrainConfig):
    from monai.optimizers import WarmupCosineSchedule

    return WarmupCosineSchedule(
        optimizer, warmup_steps=config.warmup_steps, t_total=config.steps, end_lr=0.0
    )


def train(
    config: TrainConfig, *, resume: bool = False, overwrite: bool = False, progress: bool = True
) -> TrainResult:
    """Train a segmenter on healthy hosts with on-the-fly synthetic tumours.

    Parameters
    ----------
    config : TrainConfig
        See :func:`tumorsynth.train.load_train_config`.
    resume : bool
        Continue the run in ``config.out_dir`` from ``checkpoints/last.pt`` (weights, optimiser,
        schedule and step; the synthesis stream goes on with fresh crops).
    overwrite : bool
        Start again in an ``out_dir`` that holds a run (its checkpoints and logs are replaced).
    progress : bool
        Show a progress bar (rank 0).

    Returns
    -------
    TrainResult

    Raises
    ------
    ConfigError, InputError
        At start-up, before any step: a bad config, missing or unreadable files, a patch larger
        than a volume, an ``out_dir`` that holds a run without ``resume`` / ``overwrite``.
    """
    dist = _setup(config)
    try:
        return _run(config, dist, resume, overwrite, progress)
    finally:
        if dist.owns_group:
            torch.distributed.destroy_process_group()


def _restore(state, model, optimizer, scheduler, config: TrainConfig) -> tuple[int, float | None]:
    """Load a checkpoint for ``--resume``; the config, not the checkpoint, sets the learning rate,
    weight decay and schedule from here on (so ``--set steps=...`` extends the cosine)."""
    spec = network_spec(config)
    if any(state["network"].get(k) != spec[k] for k in ARCHITECTURE):
        have = {k: state["network"].get(k) for k in ARCHITECTURE}
        want = {k: spec[k] for k in ARCHITECTURE}
        raise ConfigError(
            f"--resume: the checkpoint's network {have} differs from the config's {want}"
        )
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    scheduler.t_total = config.steps
    scheduler.warmup_steps = min(config.warmup_steps, config.steps)
    scheduler.base_lrs = [config.lr for _ in optimizer.param_groups]
    for group in optimizer.param_groups:
        group["initial_lr"], group["weight_decay"] = config.lr, config.weight_decay
        group["lr"] = config.lr * scheduler.lr_lambda(scheduler.last_epoch)
    return int(state["step"]), state.get("best_dice")


def _run(config: TrainConfig, dist: _Dist, resume: bool, overwrite: bool, progress: bool):
    out = _prepare_out_dir(config, resume, overwrite)
    hosts = load_hosts(config, progress=progress and dist.main)
    val_cases = load_val_cases(config, progress and dist.main, (dist.rank, dist.world))
    has_val = bool(config.val_images or config.n_val_synthetic)
    if dist.main:
        if overwrite and not resume:
            for sub in ("checkpoints", "tensorboard", "streams"):
                shutil.rmtree(out / sub, ignore_errors=True)
            (out / "metrics.csv").unlink(missing_ok=True)
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / "config.json", dumps(config) + "\n")
    _barrier(dist)

    torch.manual_seed(config.seed)  # the same initial weights on every rank
    model = build_network(config).to(dist.device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    scheduler = _schedule(optimizer, config)
    amp = config.amp and dist.device.type == "cuda"  # bfloat16: no loss scaling needed
    step, best = 0, None
    if resume:
        state = load_checkpoint(out / "checkpoints" / "last.pt", map_location=dist.device)
        step, best = _restore(state, model, optimizer, scheduler, config)
    net: nn.Module = model
    if dist.world > 1:
        ids = [dist.device.index] if dist.device.type == "cuda" else None
        net = nn.parallel.DistributedDataParallel(model, device_ids=ids)

    from monai.losses import DiceCELoss

    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    loader = make_loader(config, hosts, step, render=not dist.gpu_synth)
    aug_seed = np.random.SeedSequence([config.seed, dist.rank, step]).generate_state(1)[0]
    aug_rng = torch.Generator().manual_seed(int(aug_seed))
    meta = {
        "network": network_spec(config),
        "window_hu": list(config.window_hu),
        "spacing_mm": _common_spacing(hosts),
        "config": config.to_dict(),
    }
    predictor = Predictor(
        model, config.patch_size, config.window_hu, meta["spacing_mm"], dist.device,
        config.sw_overlap, config.sw_batch_size, amp,
    )  # fmt: skip

    def save(name: str) -> None:
        state = {
            **meta,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "step": step,
            "best_dice": best,
        }
        save_checkpoint(out / "checkpoints" / name, state)

    since = step if resume else None
    metrics = MetricsLog(out, enabled=dist.main, resume_step=since)
    streams = StreamLog(out, dist.rank, resume_step=since)
    bar = tqdm(
        total=config.steps, initial=step, desc="train", unit="step",
        disable=not (progress and dist.main), dynamic_ncols=True,
    )  # fmt: skip
    loss_value, batches = math.nan, iter(loader)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if amp else nullcontext()
    try:
        while step < config.steps:
            t0 = time.perf_counter()
            batch = next(batches)
            image = batch["image"].to(dist.device, non_blocking=True)
            label = batch["label"].to(dist.device, non_blocking=True)
            if dist.gpu_synth:
                image, label = insert_tumours(image, label, batch["params"])
            t_data = time.perf_counter() - t0
            x, y = window(image, config.window_hu), label.long()
            if config.augment:
                x, y = augment(x, y, aug_rng)
            net.train()
            with autocast:
                loss = loss_fn(net(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            loss_value = float(loss.detach())
            streams.write(step, batch)
            lr = optimizer.param_groups[0]["lr"]
            metrics.write(step, "train", loss=loss_value, lr=lr, data_s=t_data,
                          step_s=time.perf_counter() - t0)  # fmt: skip
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.3f}", lr=f"{lr:.1e}", best=_fmt(best))
            if has_val and (step % config.val_every == 0 or step == config.steps):
                scores = validate(predictor, val_cases, _sum_over_ranks(dist))
                metrics.write(step, "val", **scores)
                if best is None or scores["tumour_dice"] > best:  # the same on every rank
                    best = scores["tumour_dice"]
                    if dist.main:
                        save("best.pt")
            if dist.main and (step % config.save_every == 0 or step == config.steps):
                save("last.pt")
    except KeyboardInterrupt:
        if dist.main and step:
            save("last.pt")
            log.info("interrupted at step %d: saved %s (continue with --resume)", step, out)
        raise
    finally:
        bar.close()
        streams.close()
        metrics.close()
    if dist.main and not has_val:  # no validation: the last weights are the best known
        last, best_path = out / "checkpoints" / "last.pt", out / "checkpoints" / "best.pt"
        write_atomic(best_path, lambda tmp: shutil.copyfile(last, tmp))
    _barrier(dist)
    return TrainResult(out, step, best, loss_value)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _sum_over_ranks(dist: _Dist):
    """A function summing a NumPy vector over the ranks (None for a single process)."""
    if dist.world == 1:
        return None

    def total(values: np.ndarray) -> np.ndarray:
        t = torch.as_tensor(values, dtype=torch.float64, device=dist.device)
        torch.distributed.all_reduce(t)
        return t.cpu().numpy()

    return total


def _barrier(dist: _Dist) -> None:
    if dist.world > 1:
        torch.distributed.barrier()
