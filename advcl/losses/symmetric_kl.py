"""Symmetric KL between two predictive distributions (SMART, Jiang et al. 2020).

``ℓ_s(P, Q) = KL(P‖Q) + KL(Q‖P) = Σ_c (p_c − q_c)(log p_c − log q_c)``, averaged over the batch
(../shared/methods.md, "Perturbers / SMART").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from advcl.hookspecs import hookimpl


class SymmetricKL(nn.Module):
    """``mean_i [KL(p_i‖q_i) + KL(q_i‖p_i)]`` with ``p = softmax(logits_p)``, ``q = softmax(logits_q)``.

    Expects two (batch, classes) logit tensors. Gradients flow into both; detach one side for SMART's
    adversarial step. Related: TaiChi's one-sided KL terms.

    >>> loss = SymmetricKL()(torch.randn(4, 3), torch.randn(4, 3))
    """

    name = "symmetric_kl"

    @dataclass
    class Config:
        pass

    def __init__(self, config: Config | None = None):
        super().__init__()
        self.config = config or self.Config()

    def forward(self, logits_p: torch.Tensor, logits_q: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(logits_p.float(), dim=-1)
        log_q = F.log_softmax(logits_q.float(), dim=-1)
        return ((log_p.exp() - log_q.exp()) * (log_p - log_q)).sum(-1).mean()


@hookimpl
def register_losses(register):
    register(SymmetricKL)
