"""PGD-K (Madry et al. 2018): a random start in the ε-ball, then K steps ``δ ← Π_ε(δ + α·∇L/‖∇L‖)``.

docs/methods.md, "Perturbers / PGD-K". FGSM and FGM are its one-step special cases (no random start,
``α = ε``, for which the projection is the identity); they are written as functions of the gradient
(:class:`advcl.perturbers.base.OneStepPerturber`) so that objectives can reuse a gradient they already have.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from advcl.config.ranges import at_least, not_negative, positive
from advcl.hookspecs import hookimpl
from advcl.perturbers.base import LossFn, Perturber, loss_gradient
from advcl.perturbers.norms import Norm, Scope, ascent_step, random_in_ball


def projected_gradient_ascent(
    loss_fn: LossFn,
    embeds: torch.Tensor,
    attention_mask: torch.Tensor,
    *,
    eps: float,
    step_size: float,
    steps: int,
    norm: Norm,
    scope: Scope,
    random_init: bool,
) -> torch.Tensor:
    """δ after ``steps`` projected ascent steps of size ``step_size`` inside the ``norm`` ball of radius ``eps``."""
    delta = random_in_ball(embeds, attention_mask, eps, norm, scope) if random_init else torch.zeros_like(embeds)
    for _ in range(steps):
        grad = loss_gradient(loss_fn, embeds, delta)
        delta = ascent_step(delta, grad, attention_mask, step_size, eps, norm, scope)
    return delta.detach()


class PGD(Perturber):
    """Projected gradient ascent on the input embeddings, l2 or l∞ ball, per sentence or per token.

    The l2 step is ``α·g/‖g‖₂``; the l∞ step is ``α·sign(g)``, the steepest ascent for that norm (Madry et al.
    2018). Defaults: ε = 0.075 (CARL's evaluation grid {0.02, 0.075, 0.1}).
    """

    name = "pgd"

    @dataclass
    class Config:
        eps: float = 0.075
        step_size: float = 0.03
        steps: int = 3
        norm: Norm = "l2"
        scope: Scope = "sentence"
        random_init: bool = True

        def __post_init__(self):
            positive("eps", self.eps)
            not_negative("step_size", self.step_size)
            at_least("steps", self.steps, 1)

    def __call__(self, loss_fn, embeds, attention_mask):
        c = self.config
        return projected_gradient_ascent(
            loss_fn, embeds, attention_mask, eps=c.eps, step_size=c.step_size, steps=c.steps,
            norm=c.norm, scope=c.scope, random_init=c.random_init,
        )


@hookimpl
def register_perturbers(register):
    register(PGD)
