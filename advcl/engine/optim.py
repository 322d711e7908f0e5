"""AdamW with decoupled weight decay (none on biases and norms) and linear warm-up then decay."""

from __future__ import annotations

import torch
from torch import nn


def build_optimizer(modules: list[nn.Module], lr: float, weight_decay: float, fused: bool = False) -> torch.optim.AdamW:
    """AdamW over every trainable parameter of ``modules`` (each once); ``fused``: one fused kernel per step for
    all parameters (the engine asks for it on CUDA; the same update up to rounding)."""
    decay, no_decay = [], []
    seen = set()
    for module in modules:
        for param in module.parameters():
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            (decay if param.ndim >= 2 else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, **({"fused": True} if fused else {}))


def linear_schedule(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int):
    """lr factor: step/warmup during warm-up, then a straight line down to 0 at ``total_steps``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
