"""Contrast by l2 distance, positives left out of the denominator (TaiChi, Chen et al. 2024, §3.4, "Data Augmentation").

../shared/methods.md, "TaiChi": with ``s(u, v) = −‖u − v‖₂``,

    CTR = −Σ_i log exp(s(z_i, z'_i)/τ) / Σ_{j≠i} exp(s(z_i, z'_j)/τ).

The paper prints ``s(u, v) = ‖u − v‖₂``, which would push each pair apart: a sign typo. Its denominator leaves the
positive out and its batch is summed, not averaged; both as published. τ = 1 in the authors' code.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from advcl.config.ranges import positive
from advcl.engine.distributed import gather_with_grad
from advcl.hookspecs import hookimpl


class L2Contrast(nn.Module):
    """Each anchor ``z_i`` is pulled to its own candidate ``z'_i`` and pushed from the others ``z'_j`` (j ≠ i).

    Expects anchors and candidates (N, dim), row i of one paired with row i of the other: TaiChi's clean and
    adversarial sentence representations, ``loss(z, z')`` for the clean model and ``loss(z', z)`` for the
    adversarial one. Related: :class:`advcl.losses.infonce.InfoNCE` (cosine similarity, positive in the
    denominator, batch mean).

    >>> loss = L2Contrast()(torch.randn(4, 8), torch.randn(4, 8))

    In distributed training (``gather_across_ranks``) the candidates are every process's, as for InfoNCE. A
    batch of one pair has no negative, and the loss is 0 there (the last, short batch of an epoch can be one row).
    """

    name = "l2_contrast"

    @dataclass
    class Config:
        temperature: float = 1.0
        gather_across_ranks: bool = True

        def __post_init__(self):
            positive("temperature", self.temperature)

    def __init__(self, config: Config | None = None):
        super().__init__()
        self.config = config or self.Config()

    def forward(self, anchors: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        offset = 0
        if self.config.gather_across_ranks:
            candidates, offset = gather_with_grad(candidates)
        if len(candidates) < 2:
            return anchors.new_zeros((), dtype=torch.float32)
        distances = torch.cdist(anchors.float(), candidates.float(), compute_mode="donot_use_mm_for_euclid_dist")
        scores = -distances / self.config.temperature  # s(z_i, z'_j)/τ, (n, m)
        rows = torch.arange(len(anchors), device=scores.device)
        own = scores[rows, offset + rows]
        others = scores.clone()
        others[rows, offset + rows] = float("-inf")  # the indicator 1[j ≠ i]
        return (others.logsumexp(1) - own).sum()


@hookimpl
def register_losses(register):
    register(L2Contrast)
