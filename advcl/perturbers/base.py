"""What a perturber is: ``perturber(loss_fn, embeds, attention_mask) -> δ``.

``loss_fn`` maps input embeddings (the clean ``embeds`` plus a candidate δ) to a scalar loss; ``embeds`` are the
clean word-embedding lookups ``E = W[input_ids]`` (what Hugging Face models take as ``inputs_embeds``); the
returned δ is detached, has the shape of ``embeds`` and is exactly zero at padding positions. A perturber
differentiates with respect to δ only (:func:`advcl.perturbers.precision.input_gradient`, loss-scaled in float16), so
no parameter's ``.grad`` is touched (docs/methods.md, "Conventions").

One-step perturbers (FGSM, FGM) are a function of one gradient at δ = 0, ``∇_E L``; they also take that gradient
directly (:meth:`OneStepPerturber.from_gradient`), so that an objective can read ``∇_E L`` off the backward pass
that already computes its parameter gradients instead of paying for another one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch

from advcl.perturbers.precision import input_gradient

LossFn = Callable[[torch.Tensor], torch.Tensor]


def loss_gradient(loss_fn: LossFn, embeds: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """``∇_δ loss_fn(E + δ)`` at the given δ; works under ``torch.no_grad`` too (evaluation attacks)."""
    with torch.enable_grad():
        delta = delta.detach().requires_grad_(True)
        return input_gradient(loss_fn(embeds.detach() + delta), delta)


class Perturber:
    """A named embedding-space attack with its recipe options in ``Config``."""

    name: ClassVar[str]
    Config: ClassVar[type]

    def __init__(self, config=None):
        self.config = config or self.Config()

    def __call__(self, loss_fn: LossFn, embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class OneStepPerturber(Perturber):
    """A perturber that is a function of ``∇_E L`` at δ = 0 alone: ``δ = from_gradient(∇_E L, attention_mask)``.

    Any positive rescaling of the gradient (a loss weight, gradient accumulation, a mixed-precision loss scale)
    gives the same δ.
    """

    def from_gradient(self, grad: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, loss_fn, embeds, attention_mask):
        return self.from_gradient(loss_gradient(loss_fn, embeds, torch.zeros_like(embeds)), attention_mask)
