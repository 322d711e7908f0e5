"""NT-Xent over 2N views (SimCLR, Chen et al. 2020; CAT, Pan et al. 2022, eq. 9).

../shared/methods.md, "CAT": for each of the 2N views the positive is its pair and the other 2N−2 views
are negatives; ``ℓ_i = −log exp(sim(z_i, z_j)/τ) / Σ_{k≠i} exp(sim(z_i, z_k)/τ)``, averaged over all 2N anchors.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from advcl.hookspecs import hookimpl
from advcl.losses.infonce import cosine_logits


class NTXent(nn.Module):
    """Normalised temperature-scaled cross-entropy on the 2N views ``[z1; z2]``, each view anchoring once.

    Expects two (N, dim) tensors whose rows i are a positive pair (in CAT: clean and W+r views). Unlike
    :class:`advcl.losses.infonce.InfoNCE`, the anchor's own view is excluded and same-side views are negatives.

    >>> loss = NTXent()(torch.randn(4, 8), torch.randn(4, 8))
    """

    name = "nt_xent"

    @dataclass
    class Config:
        temperature: float = 0.1

    def __init__(self, config: Config | None = None):
        super().__init__()
        self.config = config or self.Config()

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        z = torch.cat([z1, z2])
        n = len(z1)
        logits = cosine_logits(z, z, self.config.temperature)
        self_pairs = torch.eye(2 * n, dtype=torch.bool, device=logits.device)
        logits = logits.masked_fill(self_pairs, float("-inf"))
        pairs = (torch.arange(2 * n, device=logits.device) + n) % (2 * n)
        return F.cross_entropy(logits, pairs)


@hookimpl
def register_losses(register):
    register(NTXent)
