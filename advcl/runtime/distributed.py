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


DEFAULT_TIMEOUT_S = 600  # ADVCL_DIST_TIMEOUT's default (PyTorch's own for NCCL)


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
        per_node = int(os.environ.get("LOCAL_WORLD_SIZE", topology.world_size))
        if per_node > torch.cuda.device_count():
            raise BadInput(
                f"{per_node} processes per node but {torch.cuda.device_count()} CUDA device(s): "
                f"use --nproc_per_node={torch.cuda.device_count()} (one process per device)"
            )
        torch.cuda.set_device(device)
    # how long a collective waits for a process that neither answers nor dies (one that dies is noticed at once):
    # long enough for the others to wait while rank 0 writes a large checkpoint to a slow disk
    timeout = timedelta(seconds=int(os.environ.get("ADVCL_DIST_TIMEOUT", DEFAULT_TIMEOUT_S)))
    dist.init_process_group(backend, timeout=timeout)


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
    from torch.distributed._functional_collectives import all_gather_single_autograd

    gathered = all_gather_single_autograd(x.contiguous(), gather_dim=0, group=dist.group.WORLD)
    return gathered, topology.rank * x.shape[0]  # every rank holds the same number of rows


@torch.no_grad()
def gather_rows(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Every rank's rows of each tensor, concatenated along dim 0 in rank order, without gradients.

    For state that every rank must hold alike (CARL's memory banks): each rank passes its rows, all ranks get
    the same result. The ranks may pass different numbers of rows (the same on every rank for each tensor's
    other dimensions and dtype). With one process: the tensors themselves.
    """
    if not world().distributed:
        return tensors
    size = dist.get_world_size()
    counts = torch.tensor([len(t) for t in tensors], device=tensors[0].device)
    every = [torch.empty_like(counts) for _ in range(size)]
    dist.all_gather(every, counts)
    every = torch.stack(every).tolist()  # [rank][tensor] row counts
    out = []
    for i, t in enumerate(tensors):
        rows = [r[i] for r in every]
        padded = t.detach().new_zeros((max(rows), *t.shape[1:]))
        padded[: len(t)] = t.detach()
        parts = [torch.empty_like(padded) for _ in range(size)]
        dist.all_gather(parts, padded.contiguous())
        out.append(torch.cat([part[:n] for part, n in zip(parts, rows)]))
    return tuple(out)


@torch.no_grad()
def broadcast_from_main(tensors: list[torch.Tensor]) -> None:
    """Overwrite each tensor, in place, with rank 0's values (nothing with one process)."""
    if world().distributed:
        for tensor in tensors:
            dist.broadcast(tensor, src=0)


def any_rank(*flags: bool) -> tuple[bool, ...]:
    """For each flag: whether it is set on any rank (every rank gets the same answer); one collective."""
    if not world().distributed:
        return tuple(bool(f) for f in flags)
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    values = torch.tensor([float(bool(f)) for f in flags], device=device)
    dist.all_reduce(values, op=dist.ReduceOp.MAX)
    return tuple(bool(v) for v in values.tolist())


LOST_PEER_CLUES = ("Connection closed by peer", "Connection reset by peer", "remote worker", "Timed out waiting",
                   "NCCL communicator was aborted")


def lost_peer(exc: BaseException) -> bool:
    """Whether ``exc`` is a collective or the rendezvous store failing because another process stopped (crashed,
    was killed, hangs past the timeout), rather than an error of this process's own."""
    if isinstance(exc, (dist.DistNetworkError, dist.DistStoreError)):
        return True
    return isinstance(exc, RuntimeError) and any(clue in str(exc) for clue in LOST_PEER_CLUES)


def gather_objects(obj) -> list:
    """Every rank's ``obj`` (picklable), in rank order."""
    if not dist.is_initialized():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out
