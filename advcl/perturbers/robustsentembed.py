"""RobustSentEmbed's perturbation generator (Rafiei Asl et al. 2024, §3.1, eq. 2-7 and Algorithm 1).

Every iteration t = 1 … max(K, T) takes one gradient ``g = ∇ L_con(X + δ^{t−1} + η^{t−1}, {X⁺})`` (Algorithm 1)
and moves three perturbations with it:

- sentence level, K-step PGD (eq. 5): ``δ_pgd ← Π_ε(δ_pgd + α·g/‖g‖_P)``, the norm over the whole example;
- sentence level, T-step FGSM (eq. 6): ``δ_fgsm ← Π_ε(δ_fgsm + β·sign(g))``;
- token level (eq. 2-4, after Li & Qiu 2021): ``η_i ← Π_ε(n_i·(η_i + γ·g_i/‖g_i‖_P))`` for each token i.

``δ^{t−1} = ρ·δ_pgd + (1−ρ)·δ_fgsm`` is the mixture that eq. 7 makes final, so ρ = 1 is exactly K-step PGD and
ρ = 0 exactly T-step FGSM, each taking its gradients at its own iterate. Both start from
``δ⁰ = U(−σ, σ)/√D`` (Algorithm 1); η starts from the token-level memory the objective keeps.

The scaling index, ``token_scale``. ``"perturbation"`` (default, eq. 2 with eq. 3's step inside, the order of
the RSE authors' lineage, Li & Qiu 2021's TA-VAT): the token step ``η̃_i = η_i + γ·g_i/‖g_i‖_P`` first, then
``n_i = ‖η̃_i‖_P / max_j ‖η̃_j‖_P`` over the sentence's real tokens, ``η_i ← Π_ε(n_i·η̃_i)``: the token whose
perturbation is longest keeps it, the others shrink in proportion. ``"gradient"`` (the former default):
``n_i = ‖g_i‖_P / max_j ‖g_j‖_P``, §3.1's wording ("larger perturbations for tokens exhibiting larger
gradients") rather than its equation. docs/methods.md, "Perturbers / RobustSentEmbed's perturbation".

P is ``norm``: l∞ (the paper's choice, Table 5) normalises by the largest entry, ``g/‖g‖_∞`` (not ``sign``,
which is FGSM's step), and projects by clamping; l2 normalises and projects by the l2 length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from advcl.config.ranges import at_least, fraction, not_negative, positive
from advcl.config.validate import RecipeError
from advcl.perturbers.base import LossFn, loss_gradient
from advcl.perturbers.norms import (
    Norm, ascent_direction, finite_on_tokens, normalised, p_norm, project, token_mask,
)


@dataclass
class RobustPerturbationConfig:
    """The generator's knobs, nested in the objective's Config as its ``perturbation`` table.

    Paper settings (appendix B): α = 1e-5, β = 1e-3, K = T = 5, ρ = 0.5, l∞. The paper gives no ε, γ or σ:
    ε = 5e-3 lets T = 5 FGSM steps of β just reach the boundary (about 0.55 in l2 over 32 × 384 entries, the
    size of FreeLB's balls); γ = β; σ = 0.05 starts δ inside the ball (σ/√D ≈ 2.6e-3 for D = 384).
    """

    eps: float = 5e-3  # ε, the radius of every ball
    norm: Norm = "linf"  # P
    pgd_step_size: float = 1e-5  # α
    pgd_steps: int = 5  # K
    fgsm_step_size: float = 1e-3  # β
    fgsm_steps: int = 5  # T
    rho: float = 0.5  # ρ: δ = ρ·δ_pgd + (1−ρ)·δ_fgsm
    token_step_size: float = 1e-3  # γ
    init_mag: float = 0.05  # σ
    sentence_level: bool = True  # false: δ = 0 (token-level only)
    token_level: bool = True  # false: η = 0 (sentence-level only)
    token_scale: Literal["perturbation", "gradient"] = "perturbation"  # n_i from ‖η̃_i‖ (eq. 2) or from ‖g_i‖

    def __post_init__(self):
        positive("objective.perturbation.eps", self.eps)
        for key in ("pgd_step_size", "fgsm_step_size", "token_step_size", "init_mag"):
            not_negative(f"objective.perturbation.{key}", getattr(self, key))
        at_least("objective.perturbation.pgd_steps", self.pgd_steps, 1)
        at_least("objective.perturbation.fgsm_steps", self.fgsm_steps, 1)
        fraction("objective.perturbation.rho", self.rho)
        if not (self.sentence_level or self.token_level):
            raise RecipeError(
                "'objective.perturbation.sentence_level' and 'objective.perturbation.token_level' are both false: "
                "keep one (without perturbations the method is simcse)"
            )

    @property
    def steps(self) -> int:
        return max(self.pgd_steps, self.fgsm_steps)


def scaling_index(x: torch.Tensor, norm: Norm) -> torch.Tensor:
    """(batch, length, 1): ``‖x_i‖_P / max_j ‖x_j‖_P`` over each sentence's tokens (x is zero at padding)."""
    per_token = p_norm(x, norm, "token")
    return per_token / per_token.amax(dim=1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)


def token_step(eta, grad, attention_mask, c: RobustPerturbationConfig) -> torch.Tensor:
    """Eq. 2-4: ``η̃_i = η_i + γ·g_i/‖g_i‖_P``, ``η_i ← Π_ε(n_i·η̃_i)``, n_i per ``c.token_scale`` (see above)."""
    mask = token_mask(attention_mask, eta)
    stepped = (eta + c.token_step_size * normalised(grad, attention_mask, c.norm, "token")) * mask
    scaled_by = stepped if c.token_scale == "perturbation" else finite_on_tokens(grad, attention_mask)
    return project(scaling_index(scaled_by, c.norm) * stepped, attention_mask, c.eps, c.norm, "token")


def pgd_step(delta, grad, attention_mask, c: RobustPerturbationConfig) -> torch.Tensor:
    """Eq. 5: ``δ ← Π_ε(δ + α·g/‖g‖_P)``, the norm over the whole example."""
    stepped = delta + c.pgd_step_size * normalised(grad, attention_mask, c.norm, "sentence")
    return project(stepped, attention_mask, c.eps, c.norm, "sentence")


def fgsm_step(delta, grad, attention_mask, c: RobustPerturbationConfig) -> torch.Tensor:
    """Eq. 6: ``δ ← Π_ε(δ + β·sign(g))``."""
    stepped = delta + c.fgsm_step_size * ascent_direction(grad, attention_mask, "linf", "sentence")
    return project(stepped, attention_mask, c.eps, c.norm, "sentence")


def sentence_init(embeds: torch.Tensor, attention_mask: torch.Tensor, init_mag: float) -> torch.Tensor:
    """Algorithm 1's ``δ⁰ = U(−σ, σ)/√D`` on real tokens (D = the embedding size)."""
    scale = init_mag / embeds.shape[-1] ** 0.5
    return torch.empty_like(embeds).uniform_(-scale, scale) * token_mask(attention_mask, embeds)


def robust_perturbation(
    loss_fn: LossFn, embeds: torch.Tensor, attention_mask: torch.Tensor, eta: torch.Tensor, c: RobustPerturbationConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(δ_final, η)`` after max(K, T) iterations from ``η⁰ = eta``; both detached, zero at padding.

    ``loss_fn(E + δ + η)`` is L_con of the perturbed view against X⁺; ``embeds`` is E. A level switched off
    stays exactly zero.
    """
    delta_pgd = sentence_init(embeds, attention_mask, c.init_mag) if c.sentence_level else torch.zeros_like(embeds)
    delta_fgsm = delta_pgd
    eta = eta * token_mask(attention_mask, eta) if c.token_level else torch.zeros_like(embeds)
    for t in range(1, c.steps + 1):
        grad = loss_gradient(loss_fn, embeds, c.rho * delta_pgd + (1 - c.rho) * delta_fgsm + eta)
        if c.sentence_level and t <= c.pgd_steps:
            delta_pgd = pgd_step(delta_pgd, grad, attention_mask, c)
        if c.sentence_level and t <= c.fgsm_steps:
            delta_fgsm = fgsm_step(delta_fgsm, grad, attention_mask, c)
        if c.token_level:
            eta = token_step(eta, grad, attention_mask, c)
    return (c.rho * delta_pgd + (1 - c.rho) * delta_fgsm).detach(), eta.detach()
