"""Norms, ascent directions and ε-ball projections for embedding perturbations (docs/methods.md, "Perturbers").

Every tensor here is ``(batch, length, dim)`` with a ``(batch, length)`` 0/1 mask of real tokens. ``scope``
says what one norm is taken over: ``"sentence"`` = all non-padding token embeddings of one example (FGM,
Miyato et al. 2017; FreeLB, Zhu et al. 2020), ``"token"`` = each token embedding on its own. The l∞ norm is
elementwise, so scope does not change it. Padding positions come out exactly zero from every function.
"""

from __future__ import annotations

from typing import Literal

import torch

Norm = Literal["l2", "linf"]
Scope = Literal["token", "sentence"]


def token_mask(attention_mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(batch, length) 0/1 mask -> (batch, length, 1) in ``like``'s dtype, to multiply perturbations with."""
    return attention_mask.unsqueeze(-1).to(like.dtype)


def l2_norm(x: torch.Tensor, scope: Scope) -> torch.Tensor:
    """l2 norm of each token vector (``token``) or of each example's whole (length, dim) block, kept broadcastable."""
    dims = (-1,) if scope == "token" else tuple(range(1, x.dim()))
    at_least_fp32 = torch.promote_types(x.dtype, torch.float32)
    return torch.linalg.vector_norm(x, dim=dims, keepdim=True, dtype=at_least_fp32).to(x.dtype)


def finite_on_tokens(grad: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """``grad`` on real tokens, zero at padding and wherever it is not finite.

    A gradient read off a loss-scaled fp16 backward overflows while the GradScaler searches its scale, and that
    optimizer step is skipped anyway; δ must stay finite meanwhile, so non-finite entries count as zero.
    """
    mask = token_mask(attention_mask, grad)
    return torch.nan_to_num(grad * mask, nan=0.0, posinf=0.0, neginf=0.0)


def ascent_direction(grad: torch.Tensor, attention_mask: torch.Tensor, norm: Norm, scope: Scope) -> torch.Tensor:
    """The unit-norm steepest-ascent direction ``∇L/‖∇L‖`` for the chosen norm.

    l2: ``g / ‖g‖₂`` per scope (a zero gradient gives a zero direction). l∞: ``sign(g)``, the maximiser of
    ``⟨g, v⟩`` over the unit l∞ ball (Goodfellow et al. 2015; Madry et al. 2018).

    Non-finite entries count as zero (:func:`finite_on_tokens`).
    """
    grad = finite_on_tokens(grad, attention_mask)
    if norm == "linf":
        return grad.sign()
    return grad / l2_norm(grad, scope).clamp_min(torch.finfo(grad.dtype).tiny)


def p_norm(x: torch.Tensor, norm: Norm, scope: Scope) -> torch.Tensor:
    """‖x‖_P of each token (``token``) or of each example (``sentence``), kept broadcastable (l∞: largest |entry|)."""
    if norm == "l2":
        return l2_norm(x, scope)
    return x.abs().amax(dim=-1 if scope == "token" else tuple(range(1, x.dim())), keepdim=True)


def normalised(grad: torch.Tensor, attention_mask: torch.Tensor, norm: Norm, scope: Scope) -> torch.Tensor:
    """``g/‖g‖_P`` per scope on real tokens (zero where g is zero). Unlike :func:`ascent_direction`, l∞ keeps the
    gradient's shape, ``g/max|g|`` (SMART's Algorithm 1; RobustSentEmbed's eq. 3 and 5): only the largest entry
    of each scope block moves by the full step. Non-finite entries count as zero, as in :func:`ascent_direction`.
    """
    grad = finite_on_tokens(grad, attention_mask)
    return grad / p_norm(grad, norm, scope).clamp_min(torch.finfo(grad.dtype).tiny)


def project(delta: torch.Tensor, attention_mask: torch.Tensor, eps: float, norm: Norm, scope: Scope) -> torch.Tensor:
    """Π_ε: the nearest point of the ε-ball (l∞: clamp each entry; l2: shrink each scope block to norm ≤ ε)."""
    delta = delta * token_mask(attention_mask, delta)
    if norm == "linf":
        return delta.clamp(-eps, eps)
    length = l2_norm(delta, scope)
    return delta * (eps / length.clamp_min(torch.finfo(delta.dtype).tiny)).clamp(max=1.0)


def random_in_ball(
    embeds: torch.Tensor, attention_mask: torch.Tensor, eps: float, norm: Norm, scope: Scope
) -> torch.Tensor:
    """A random start inside the ε-ball (PGD, Madry et al. 2018).

    l∞: uniform in ``[−ε, ε]`` per entry. l2: a uniformly random direction scaled to a radius uniform in ``[0, ε]``.
    """
    if norm == "linf":
        return torch.empty_like(embeds).uniform_(-eps, eps) * token_mask(attention_mask, embeds)
    direction = ascent_direction(torch.randn_like(embeds), attention_mask, "l2", scope)
    radius = torch.rand_like(l2_norm(direction, scope)) * eps
    return direction * radius


def ascent_step(
    delta: torch.Tensor,
    grad: torch.Tensor,
    attention_mask: torch.Tensor,
    step_size: float,
    eps: float,
    norm: Norm,
    scope: Scope,
) -> torch.Tensor:
    """One projected ascent step ``δ ← Π_ε(δ + α·∇L/‖∇L‖)`` (PGD; FreeLB's inner update). ``eps = 0``: no projection."""
    delta = delta + step_size * ascent_direction(grad, attention_mask, norm, scope)
    return project(delta, attention_mask, eps, norm, scope) if eps > 0 else delta
