"""Data-parallel training on PyTorch's DistributedDataParallel, launched by ``torchrun``.

``torchrun --nproc_per_node=N -m advcl train --recipe R`` starts N processes; each reads RANK, WORLD_SIZE and
LOCAL_RANK from the environment, joins the process group (NCCL on CUDA, gloo on CPU), trains on its slice
of every global batch, and DDP averages the gradients. A single process (plain ``advcl train``) skips all of it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from advcl.errors import BadInput


@dataclass(frozen=True)
class Topology:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launched_topology() -> Topology:
    """What torchrun asked for (1 process when not launched by it)."""
    return Topology(
        int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))
    )


def init_process_group(topology: Topology, device: torch.device) -> None:
    if not topology.distributed or dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_backend_available(backend):
        raise BadInput(f"distributed backend '{backend}' is not available in this torch build")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    # a short timeout: if another rank dies, collectives fail within a minute instead of hanging
    dist.init_process_group(backend, timeout=timedelta(seconds=int(os.environ.get("ADVCL_DIST_TIMEOUT", 60))))


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def world() -> Topology:
    """The current topology of the process group (1 process when none is initialised)."""
    if dist.is_initialized():
        return Topology(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return Topology()


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def gather_with_grad(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Concatenate every rank's ``x`` along dim 0, gradients flowing back to their owners.

    Every rank must pass the same number of rows (the engine splits batches evenly). Returns (all rows,
    offset of this rank's rows); with one process: (x, 0).
    """
    topology = world()
    if not topology.distributed:
        return x, 0
    from torch.distributed._functional_collectives import all_gather_tensor_autograd

    gathered = all_gather_tensor_autograd(x.contiguous(), gather_dim=0, group=dist.group.WORLD)
    return gathered, topology.rank * x.shape[0]  # every rank holds the same number of rows


def gather_objects(obj) -> list:
    """Every rank's ``obj`` (picklable), in rank order."""
    if not dist.is_initialized():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out
