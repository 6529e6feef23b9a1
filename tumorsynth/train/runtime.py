"""Where a training run executes: its device and, under ``torchrun``, its rank in the process group.

One process per device; under ``torchrun`` every process is one rank of a DistributedDataParallel
run (NCCL on GPUs, Gloo on CPUs). :func:`start_runtime` picks the device from a config's
``device`` field and joins the group; :meth:`Runtime.close` leaves it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import torch

from tumorsynth.errors import ConfigError

__all__ = ["DIST_TIMEOUT", "Runtime", "start_runtime"]

DIST_TIMEOUT = timedelta(hours=1)
"""How long ranks wait for each other (every rank validates a share of the volumes; a rank
reading or resampling large CTs at start-up may keep the others waiting for a while)."""


@dataclass
class Runtime:
    """One process of a run.

    Attributes
    ----------
    rank, world : int
        This process's rank and the number of processes (1 without ``torchrun``).
    device : torch.device
        Where the network and its batches live.
    owns_group : bool
        Whether this run initialised the process group (and so destroys it on :meth:`close`).
    """

    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    owns_group: bool = False

    @property
    def main(self) -> bool:
        """Rank 0: the process that writes checkpoints and logs and shows the progress bar."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every rank (nothing to wait for in a single process)."""
        if self.world > 1:
            torch.distributed.barrier()

    def sum(self, values: np.ndarray) -> np.ndarray:
        """``values`` summed over the ranks (as they are in a single process)."""
        if self.world == 1:
            return values
        t = torch.as_tensor(values, dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(t)
        return t.cpu().numpy()

    def close(self) -> None:
        """Leave the process group if this run made it."""
        if self.owns_group:
            torch.distributed.destroy_process_group()
            self.owns_group = False


def _device(name: str, world: int, local: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r}: torch sees no CUDA device")
    if name.startswith("cuda:") and world > 1:
        raise ConfigError(
            f"device {name!r} would put every rank on one GPU: under torchrun use "
            "'cuda' or 'auto' (each rank takes the GPU of its LOCAL_RANK)"
        )
    if name == "cuda":
        name = f"cuda:{local}" if world > 1 else "cuda"
    return torch.device(name)


def start_runtime(device: str = "auto", threads: int | None = None) -> Runtime:
    """Pick the device (``auto``, ``cpu``, ``cuda`` or ``cuda:N``) and, under ``torchrun``, join
    the process group; ``threads`` sets torch's CPU threads when given.

    Raises
    ------
    ConfigError
        A CUDA device that torch does not see, or ``cuda:N`` under ``torchrun``.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = _device(device, world, local)
    if threads:
        torch.set_num_threads(threads)
    if world == 1:
        return Runtime(0, 1, dev)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    owns = not torch.distributed.is_initialized()
    if owns:
        backend = "nccl" if dev.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend=backend, timeout=DIST_TIMEOUT)
    rank, size = torch.distributed.get_rank(), torch.distributed.get_world_size()
    return Runtime(rank, size, dev, owns)
