"""Symmetric KL between two predictive distributions (SMART, Jiang et al. 2020).

``ℓ_s(P, Q) = KL(P‖Q) + KL(Q‖P) = Σ_c (p_c − q_c)(log p_c − log q_c)``, averaged over the batch
(docs/methods.md, "Losses / Symmetric KL").
"""

from __future__ import annotations

import torch

from advcl.hookspecs import hookimpl
from advcl.losses.kl_divergence import KLDivergence


class SymmetricKL(KLDivergence):
    """``mean_i [KL(p_i‖q_i) + KL(q_i‖p_i)]`` with ``p = softmax(logits_p)``, ``q = softmax(logits_q)``.

    Expects two (batch, classes) logit tensors. Gradients flow into both; detach one side for SMART's
    adversarial step. The one-sided :class:`~advcl.losses.kl_divergence.KLDivergence` is TaiChi's.

    >>> loss = SymmetricKL()(torch.randn(4, 3), torch.randn(4, 3))
    """

    name = "symmetric_kl"

    def forward(self, logits_p: torch.Tensor, logits_q: torch.Tensor) -> torch.Tensor:
        return super().forward(logits_p, logits_q) + super().forward(logits_q, logits_p)


@hookimpl
def register_losses(register):
    register(SymmetricKL)
