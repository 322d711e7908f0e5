"""In-batch InfoNCE with cosine similarity (van den Oord et al. 2018; SCAL, Miao et al. 2021, eq. 4; SimCSE).

docs/methods.md, "Losses / InfoNCE" (SCAL eq. 7):
``L_ct = −1/N Σ_i log[exp(sim(z_i, z⁺_i)/τ) / Σ_k exp(sim(z_i, z⁺_k)/τ)]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from advcl.config.ranges import positive
from advcl.runtime.distributed import gather_with_grad
from advcl.hookspecs import hookimpl
from advcl.losses.base import Loss


def cosine_logits(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """``sim(a_i, b_k)/τ`` for every pair: (n, dim) and (m, dim) -> (n, m), in float32.

    Autocast is off here: under it the product of float32 tensors would still run in bf16/fp16, and bf16 keeps
    8 significant bits: a logit near 1/τ = 20 would be off by up to 0.06 (docs/methods.md, "Conventions").
    """
    with torch.autocast(a.device.type, enabled=False):
        return F.normalize(a.float(), dim=-1) @ F.normalize(b.float(), dim=-1).T / temperature


class InfoNCE(Loss):
    """Each anchor ``z_i`` must pick its own positive ``z⁺_i`` among all N positives of the batch.

    Expects two (N, dim) tensors, row i of one paired with row i of the other: (clean, adversarial) views
    in SCAL, two dropout views in SimCSE. Related: :class:`advcl.losses.nt_xent.NTXent` (2N views).

    >>> loss = InfoNCE()(torch.randn(4, 8), torch.randn(4, 8))


    In distributed training (``gather_across_ranks``) the candidates are every process's positives, so N
    processes with batch b give each anchor the N·b candidates of one big batch.
    """

    name = "infonce"

    @dataclass
    class Config:
        temperature: float = 0.05
        gather_across_ranks: bool = True

        def __post_init__(self):
            positive("temperature", self.temperature)

    def forward(self, anchors: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
        offset = 0
        if self.config.gather_across_ranks:
            positives, offset = gather_with_grad(positives)
        logits = cosine_logits(anchors, positives, self.config.temperature)
        return F.cross_entropy(logits, offset + torch.arange(len(anchors), device=logits.device))


@hookimpl
def register_losses(register):
    register(InfoNCE)
