"""Random Gaussian noise on the input embeddings: the control that tells adversarial training apart from
plain noise augmentation (Miyato et al. 2017, §4, compare adversarial with random perturbations of the same norm;
SMART's δ₀ ~ N(0, σ²I), Jiang et al. 2020, Algorithm 1, is this noise before its ascent step)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from advcl.api import Norm, Perturber, Scope, not_negative, project, token_mask


class GaussianNoise(Perturber):
    """``δ = Π_ε(σ·ξ)``, ``ξ ~ N(0, I)`` on every real token (zero on padding), ignoring the loss.

    ``eps = 0`` leaves the noise unprojected; ``eps > 0`` projects it onto the ``norm`` ball of radius ε per
    ``scope`` (the l2 ball per sentence by default), so it can stand in for an attack of the same budget
    (``[objective.perturber] name = "gaussian_noise"`` in ``pgd_at``; one-step objectives such as ``fgm_at`` refuse it).
    """

    name = "gaussian_noise"

    @dataclass
    class Config:
        sigma: float = 0.01
        eps: float = 0.0
        norm: Norm = "l2"
        scope: Scope = "sentence"

        def __post_init__(self):
            not_negative("sigma", self.sigma)
            not_negative("eps", self.eps)

    def __call__(self, loss_fn, embeds, attention_mask):
        c = self.config
        noise = torch.randn_like(embeds) * c.sigma * token_mask(attention_mask, embeds)
        return project(noise, attention_mask, c.eps, c.norm, c.scope) if c.eps > 0 else noise
