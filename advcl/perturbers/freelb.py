"""FreeLB's inner perturbation (Zhu et al. 2020, Algorithm 1), as functions for the objectives that train with it.

FreeLB-K is a training procedure, not a one-shot attack: K forward passes on ``E + δ_t``, each backpropagating
``L/K`` so that parameter gradients accumulate, then one optimizer step (docs/methods.md, "Perturbers /
FreeLB-K"). The objective drives that loop with ``ctx.backward``; this module owns the δ arithmetic:

- :func:`freelb_init`: ``δ₀ ~ U(−1, 1)·γ/√(L·d)`` on real tokens, ``L`` = the example's number of real tokens;
- :func:`freelb_update`: ``δ ← δ + α·∇δ/‖∇δ‖₂`` per example, projected to ‖δ‖ ≤ ε when ε > 0 (ε = 0: unbounded).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from advcl.config.ranges import at_least, not_negative
from advcl.perturbers.norms import Norm, ascent_step, token_mask


@dataclass
class FreeLBConfig:
    """FreeLB's knobs, nested in an objective's Config as its ``freelb`` table. Defaults: CARL's SST-2 setting (Table 1)."""

    init_mag: float = 0.6  # γ
    step_size: float = 0.1  # α
    steps: int = 2  # K
    eps: float = 0.0  # 0: unbounded
    norm: Norm = "l2"

    def __post_init__(self):
        not_negative("objective.freelb.init_mag", self.init_mag)
        not_negative("objective.freelb.step_size", self.step_size)
        at_least("objective.freelb.steps", self.steps, 1)
        not_negative("objective.freelb.eps", self.eps)


def freelb_init(embeds: torch.Tensor, attention_mask: torch.Tensor, init_mag: float) -> torch.Tensor:
    """``δ₀ ~ U(−1, 1)·γ/√(L·d)`` on the real tokens of each example, zero on padding."""
    dims = attention_mask.sum(1).to(embeds.dtype) * embeds.shape[-1]
    scale = (init_mag / dims.sqrt()).view(-1, 1, 1)
    return torch.empty_like(embeds).uniform_(-1, 1) * token_mask(attention_mask, embeds) * scale


def freelb_update(
    delta: torch.Tensor, grad: torch.Tensor, attention_mask: torch.Tensor, config: FreeLBConfig
) -> torch.Tensor:
    """One ascent step on δ, normalised per example (all its real tokens), projected when ``config.eps > 0``."""
    return ascent_step(delta, grad, attention_mask, config.step_size, config.eps, config.norm, "sentence").detach()
