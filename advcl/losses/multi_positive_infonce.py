"""InfoNCE with several positives per anchor (RobustSentEmbed, Rafiei Asl et al. 2024, eq. 9-10).

docs/methods.md, "Losses / Multi-positive InfoNCE" (eq. 9):
``L_con(z, P, N) = −log Σ_{p∈P} e^{sim(z,p)/τ} / Σ_{q∈P∪N} e^{sim(z,q)/τ}``.
The negatives of anchor i are "the positive pairs from other sentences in the same batch" (§3.2): every row
k ≠ i of every view passed in; under torchrun (``gather_across_ranks``), of every process's views, so that N
processes with batch b contrast like one batch of N·b sentences.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from advcl.config.ranges import positive
from advcl.runtime.distributed import gather_with_grad
from advcl.hookspecs import hookimpl
from advcl.losses.base import Loss
from advcl.losses.infonce import cosine_logits


class MultiPositiveInfoNCE(Loss):
    """Anchor ``z_i`` against m views of the batch: row i of each view is a positive, all other rows negatives.

    Expects the anchors (N, dim) and m ≥ 1 views (N, dim) each, row i of every view belonging to sentence i.
    With one view it is :class:`advcl.losses.infonce.InfoNCE`. RobustSentEmbed's eq. 10 uses
    ``loss(z, z⁺, z_adv)`` (two positives, 2N − 2 negatives) and ``loss(z_adv, z⁺)``.

    >>> loss = MultiPositiveInfoNCE()(torch.randn(4, 8), torch.randn(4, 8), torch.randn(4, 8))
    """

    name = "multi_positive_infonce"

    @dataclass
    class Config:
        temperature: float = 0.05
        gather_across_ranks: bool = True

        def __post_init__(self):
            positive("temperature", self.temperature)

    def forward(self, anchors: torch.Tensor, *views: torch.Tensor) -> torch.Tensor:
        if any(len(view) != len(anchors) for view in views):
            raise ValueError(f"every view needs one row per anchor ({len(anchors)}): got {[len(v) for v in views]}")
        offset = 0
        if self.config.gather_across_ranks:
            gathered = [gather_with_grad(view) for view in views]
            views, offset = tuple(view for view, _ in gathered), gathered[0][1]
        logits = cosine_logits(anchors, torch.cat(views), self.config.temperature)  # (n, m·N), N rows per view
        n, rows = len(anchors), len(views[0])
        own_rows = offset + torch.arange(n, device=logits.device)[:, None]
        own_rows = own_rows + rows * torch.arange(len(views), device=logits.device)
        return (logits.logsumexp(1) - logits.gather(1, own_rows).logsumexp(1)).mean()


@hookimpl
def register_losses(register):
    register(MultiPositiveInfoNCE)
