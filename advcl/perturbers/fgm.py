"""FGM (Miyato et al. 2017): ``r = ε·∇_E L / ‖∇_E L‖₂``.

docs/methods.md, "Perturbers / FGM" (SCAL eq. 3 and 6): the norm is taken per example over all its non-padding token
embeddings (``scope = "sentence"``); ``scope = "token"`` normalises each token embedding on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from advcl.config.ranges import not_negative
from advcl.hookspecs import hookimpl
from advcl.perturbers.base import OneStepPerturber
from advcl.perturbers.norms import Scope, ascent_direction


class FGM(OneStepPerturber):
    """One l2-normalised gradient step of length ε per example (or per token). Default ε = 0.1 (SCAL's grid 0.1-0.5)."""

    name = "fgm"

    @dataclass
    class Config:
        eps: float = 0.1
        scope: Scope = "sentence"

        def __post_init__(self):
            not_negative("eps", self.eps)

    def from_gradient(self, grad, attention_mask):
        return self.config.eps * ascent_direction(grad.detach(), attention_mask, "l2", self.config.scope)


@hookimpl
def register_perturbers(register):
    register(FGM)
