"""KL divergence between two predictive distributions (TaiChi, Chen et al. 2024, §3.4, "Model-level Fusion").

``KL(P‖Q) = Σ_c p_c (log p_c − log q_c)``, averaged over the batch: the paper's
``L_KL = −1/N Σ_i p_i log(q_i / p_i)`` (docs/methods.md, "Losses / KL divergence").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from advcl.hookspecs import hookimpl
from advcl.losses.base import Loss


class KLDivergence(Loss):
    """``mean_i KL(p_i‖q_i)`` with ``p = softmax(logits_p)``, ``q = softmax(logits_q)``.

    Expects two (batch, classes) logit tensors; gradients flow into both (TaiChi trains both models through
    it). Related: :class:`advcl.losses.symmetric_kl.SymmetricKL` (``KL(p‖q) + KL(q‖p)``, SMART).

    >>> loss = KLDivergence()(torch.randn(4, 3), torch.randn(4, 3))
    """

    name = "kl_divergence"

    @dataclass
    class Config:
        pass

    def forward(self, logits_p: torch.Tensor, logits_q: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(logits_p.float(), dim=-1)
        log_q = F.log_softmax(logits_q.float(), dim=-1)
        return (log_p.exp() * (log_p - log_q)).sum(-1).mean()


@hookimpl
def register_losses(register):
    register(KLDivergence)
