"""FGSM (Goodfellow et al. 2015): ``r = ε·sign(∇_E L)`` on every non-padding token embedding.

../shared/methods.md, "Perturbers / FGSM" (CAT's eq. 5 prints ``−ε``: a typo, the attack ascends the loss).
"""

from __future__ import annotations

from dataclasses import dataclass

from advcl.hookspecs import hookimpl
from advcl.perturbers.base import Perturber
from advcl.perturbers.pgd import projected_gradient_ascent


class FGSM(Perturber):
    """One l∞ step of size ε from zero: each coordinate of each real token moves by exactly ±ε (0 where ∇ = 0)."""

    name = "fgsm"

    @dataclass
    class Config:
        eps: float = 1e-3

    def __call__(self, loss_fn, embeds, attention_mask):
        eps = self.config.eps
        return projected_gradient_ascent(
            loss_fn, embeds, attention_mask, eps=eps, step_size=eps, steps=1,
            norm="linf", scope="sentence", random_init=False,
        )


@hookimpl
def register_perturbers(register):
    register(FGSM)
