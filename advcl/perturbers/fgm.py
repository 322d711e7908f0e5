"""FGM (Miyato et al. 2017): ``r = ε·∇_E L / ‖∇_E L‖₂``.

../shared/methods.md, "Perturbers / FGM": the norm is taken per example over all its non-padding token
embeddings (``scope = "sentence"``); ``scope = "token"`` normalises each token embedding on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from advcl.hookspecs import hookimpl
from advcl.perturbers.base import Perturber
from advcl.perturbers.norms import Scope
from advcl.perturbers.pgd import projected_gradient_ascent


class FGM(Perturber):
    """One l2-normalised gradient step of length ε per example (or per token). Default ε = 0.1 (SCAL's grid 0.1-0.5)."""

    name = "fgm"

    @dataclass
    class Config:
        eps: float = 0.1
        scope: Scope = "sentence"

    def __call__(self, loss_fn, embeds, attention_mask):
        eps = self.config.eps
        return projected_gradient_ascent(
            loss_fn, embeds, attention_mask, eps=eps, step_size=eps, steps=1,
            norm="l2", scope=self.config.scope, random_init=False,
        )


@hookimpl
def register_perturbers(register):
    register(FGM)
