"""Contrast by l2 distance, positives left out of the denominator (TaiChi, Chen et al. 2024, §3.4, "Data Augmentation").

docs/methods.md, "Losses / L2 contrast": with ``s(u, v) = −‖u − v‖₂``,

    CTR = −Σ_i log exp(s(z_i, z'_i)/τ) / Σ_{j≠i} exp(s(z_i, z'_j)/τ).

The paper prints ``s(u, v) = ‖u − v‖₂``, which would push each pair apart: a sign typo. Its denominator leaves the
positive out and its batch is summed, not averaged; both as published. τ = 1 in the authors' code.

Two defaults are advcl's choices, not the paper's; each has an option that gives the printed formula.

``reduction = "mean"`` averages the terms over the batch, as the cross-entropy next to it is averaged (PyTorch's
convention, and the paper's CE is printed as a sum too): with the printed sum, CTR weighs batch-size times more
than CE, and after gradient clipping CE barely moves. ``reduction = "sum"`` is the printed loss.

``normalize`` (default on) measures the distances between unit-length
representations. As printed, on raw representations, the loss has no lower bound: with the positive out of the
denominator, pushing the negatives further apart lowers it without limit. On all-MiniLM-L6-v2 with SST-2
(docs/results.md) it went from −18 to −59 in 100 steps while both cross-entropies stayed at chance (0.69) and the
clean model ended at 52 % validation accuracy. On the unit sphere every distance is at most 2, so each term is at
least ``log(n − 1) − 2/τ``. ``normalize = false`` is the printed formula.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch.nn import functional as F

from advcl.config.ranges import positive
from advcl.runtime.distributed import gather_with_grad
from advcl.hookspecs import hookimpl
from advcl.losses.base import Loss


class L2Contrast(Loss):
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
        normalize: bool = True  # distances between unit-length representations (bounded; see the module)
        reduction: Literal["mean", "sum"] = "mean"  # over the batch; the paper prints a sum (see the module)
        gather_across_ranks: bool = True

        def __post_init__(self):
            positive("temperature", self.temperature)

    def forward(self, anchors: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        offset = 0
        if self.config.gather_across_ranks:
            candidates, offset = gather_with_grad(candidates)
        if len(candidates) < 2:
            return anchors.new_zeros((), dtype=torch.float32)
        anchors, candidates = anchors.float(), candidates.float()
        if self.config.normalize:
            anchors, candidates = F.normalize(anchors, dim=-1), F.normalize(candidates, dim=-1)
        distances = torch.cdist(anchors, candidates, compute_mode="donot_use_mm_for_euclid_dist")
        scores = -distances / self.config.temperature  # s(z_i, z'_j)/τ, (n, m)
        rows = torch.arange(len(anchors), device=scores.device)
        own = scores[rows, offset + rows]
        others = scores.clone()
        others[rows, offset + rows] = float("-inf")  # the indicator 1[j ≠ i]
        terms = others.logsumexp(1) - own
        return terms.mean() if self.config.reduction == "mean" else terms.sum()


@hookimpl
def register_losses(register):
    register(L2Contrast)
