"""NT-Xent over 2N views (SimCLR, Chen et al. 2020; CAT, Pan et al. 2022, eq. 9).

docs/methods.md, "Losses / NT-Xent": for each of the 2N views the positive is its pair and the other 2N−2 views
are negatives; ``ℓ_i = −log exp(sim(z_i, z_j)/τ) / Σ_{k≠i} exp(sim(z_i, z_k)/τ)``, averaged over all 2N anchors.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from advcl.config.ranges import positive
from advcl.runtime.distributed import gather_with_grad
from advcl.hookspecs import hookimpl
from advcl.losses.base import Loss
from advcl.losses.infonce import cosine_logits


class NTXent(Loss):
    """Normalised temperature-scaled cross-entropy on the 2N views ``[z1; z2]``, each view anchoring once.

    Expects two (N, dim) tensors whose rows i are a positive pair (in CAT: clean and W+r views). Unlike
    :class:`advcl.losses.infonce.InfoNCE`, the anchor's own view is excluded and same-side views are negatives.

    In distributed training (``gather_across_ranks``) the views of every process are candidates, so N
    processes with batch b behave like one batch of N·b pairs.

    >>> loss = NTXent()(torch.randn(4, 8), torch.randn(4, 8))
    """

    name = "nt_xent"

    @dataclass
    class Config:
        temperature: float = 0.1
        gather_across_ranks: bool = True

        def __post_init__(self):
            positive("temperature", self.temperature)

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        n, offset = len(z1), 0
        all1, all2 = z1, z2
        if self.config.gather_across_ranks:
            all1, offset = gather_with_grad(z1)
            all2, _ = gather_with_grad(z2)
        total = len(all1)
        candidates = torch.cat([all1, all2])  # 2·total views
        logits = cosine_logits(torch.cat([z1, z2]), candidates, self.config.temperature)
        rows = torch.arange(n, device=logits.device) + offset
        own = torch.cat([rows, rows + total])  # each local anchor's own index among the candidates
        pairs = torch.cat([rows + total, rows])
        logits[torch.arange(2 * n, device=logits.device), own] = float("-inf")
        return F.cross_entropy(logits, pairs)


@hookimpl
def register_losses(register):
    register(NTXent)
