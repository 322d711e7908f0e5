"""Device choice, precision and determinism."""

from __future__ import annotations

import contextlib
import os
import random

import numpy as np
import torch

from advcl.errors import BadInput


def pick_device(choice: str) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise BadInput("run.device = 'cuda' but no CUDA device is available (use 'auto' or 'cpu')")
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)


def autocast(device: torch.device, precision: str):
    """bf16/fp16 autocast on CUDA; fp32 everywhere else (mixed precision on CPU is refused earlier)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """A collated batch on ``device``. To CUDA: staged in pinned (page-locked) memory and copied asynchronously
    (the copy overlaps the host's work until a kernel needs it); on the CPU the tensors themselves."""
    if device.type != "cuda":
        return {k: v.to(device) for k, v in batch.items()}
    return {k: v.pin_memory().to(device, non_blocking=True) for k, v in batch.items()}


def check_precision(device: torch.device, precision: str) -> None:
    if precision != "fp32" and device.type != "cuda":
        raise BadInput(f"run.precision = '{precision}' needs a CUDA device; on {device.type} use 'fp32'")
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        raise BadInput("run.precision = 'bf16' is not supported by this GPU; use 'fp16'")


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
