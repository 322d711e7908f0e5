"""SMART's adversarial noise (Jiang et al. 2020, Algorithm 1): ``δ₀ ~ N(0, σ²)`` on real tokens, then one
normalised ascent step ``δ = δ₀ + η·g/‖g‖`` with ``g = ∇_δ ℓ_s(g(f(E)), g(f(E+δ₀)))``.

../shared/methods.md, "Perturbers / SMART". ``loss_fn`` should be the symmetric KL between the clean
prediction (detached) and the perturbed one (:class:`advcl.losses.symmetric_kl.SymmetricKL`); the
objective then adds ``λ_s·symKL`` at ``E + δ`` to the task loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from advcl.config.ranges import not_negative
from advcl.hookspecs import hookimpl
from advcl.perturbers.base import Perturber, loss_gradient
from advcl.perturbers.norms import Norm, Scope, ascent_step, token_mask


class SMART(Perturber):
    """Gaussian noise of scale σ = 1e-5 plus one ascent step of size η = 1e-3 (no projection).

    The paper normalises by ``‖g‖_∞``; here the l∞ step is ``sign(g)`` as for every perturber
    (:func:`advcl.perturbers.norms.ascent_direction`), so each coordinate moves by exactly η.
    """

    name = "smart"

    @dataclass
    class Config:
        sigma: float = 1e-5
        step_size: float = 1e-3
        norm: Norm = "linf"
        scope: Scope = "token"

        def __post_init__(self):
            not_negative("sigma", self.sigma)
            not_negative("step_size", self.step_size)

    def __call__(self, loss_fn, embeds, attention_mask):
        c = self.config
        noise = torch.randn_like(embeds) * c.sigma * token_mask(attention_mask, embeds)
        grad = loss_gradient(loss_fn, embeds, noise)
        return ascent_step(noise, grad, attention_mask, c.step_size, 0.0, c.norm, c.scope).detach()


@hookimpl
def register_perturbers(register):
    register(SMART)
