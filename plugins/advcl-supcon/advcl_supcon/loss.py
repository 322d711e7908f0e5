"""The supervised contrastive loss L^sup_out (Khosla et al. 2020, "Supervised Contrastive Learning", eq. 2)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from advcl.api import Loss, positive


class SupConLoss(Loss):
    """Pull together the representations of a batch that share a label, push the others apart.

    With ``z_i`` the L2-normalised feature of example i, ``A(i)`` every other example of the batch and ``P(i)``
    those of them with i's label (Khosla et al. 2020, eq. 2, the "outside" form they recommend):

        L = mean_i  −1/|P(i)| Σ_{p∈P(i)} log( exp(z_i·z_p/τ) / Σ_{a∈A(i)} exp(z_i·z_a/τ) )

    over the anchors that have at least one positive (an anchor alone with its label contributes nothing; a
    batch without any positive pair gives 0). Expects features (batch, dim) and integer labels (batch,): one
    view per example, so the positives are the other examples of the class. Related:
    :class:`advcl.losses.infonce.InfoNCE` (one positive per anchor, no labels).

    Example::

        loss = SupConLoss(SupConLoss.Config(temperature=0.1))
        loss(torch.randn(8, 16), torch.tensor([0, 1, 0, 1, 2, 2, 0, 1]))
    """

    name = "supcon"

    @dataclass
    class Config:
        temperature: float = 0.1  # τ; Khosla et al. use 0.1

        def __post_init__(self):
            positive("temperature", self.temperature)

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        z = F.normalize(features.float(), dim=-1)
        itself = torch.eye(len(z), dtype=torch.bool, device=z.device)
        logits = (z @ z.T / self.config.temperature).masked_fill(itself, float("-inf"))  # a ∈ A(i): a ≠ i
        log_prob = logits - logits.logsumexp(dim=1, keepdim=True)
        positives = (labels[:, None] == labels[None, :]) & ~itself
        counts = positives.sum(1)
        anchors = counts > 0
        if not anchors.any():
            return features.sum() * 0.0  # keeps the graph: a batch of singletons contributes no gradient
        per_anchor = log_prob.masked_fill(~positives, 0.0).sum(1)[anchors] / counts[anchors]
        return -per_anchor.mean()

    def get_config_dict(self) -> dict:
        return {"temperature": self.config.temperature}
