"""FGSM (Goodfellow et al. 2015): ``r = ε·sign(∇_E L)`` on every non-padding token embedding.

docs/methods.md, "Perturbers / FGSM" (SCAL eq. 2) (CAT's eq. 5 prints ``−ε``: a typo, the attack ascends the loss).
"""

from __future__ import annotations

from dataclasses import dataclass

from advcl.config.ranges import not_negative
from advcl.hookspecs import hookimpl
from advcl.perturbers.base import OneStepPerturber
from advcl.perturbers.norms import ascent_direction


class FGSM(OneStepPerturber):
    """One l∞ step of size ε from zero: each coordinate of each real token moves by exactly ±ε (0 where ∇ = 0)."""

    name = "fgsm"

    @dataclass
    class Config:
        eps: float = 1e-3

        def __post_init__(self):
            not_negative("eps", self.eps)

    def from_gradient(self, grad, attention_mask):
        return self.config.eps * ascent_direction(grad.detach(), attention_mask, "linf", "sentence")


@hookimpl
def register_perturbers(register):
    register(FGSM)
