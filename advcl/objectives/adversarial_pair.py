"""One clean and one adversarial forward pass, the perturbation built from the clean pass's own gradient.

The one-step methods of docs/methods.md, "Supervised" (FGSM/FGM training, SCAL, CAT) all need ``∇_E CE`` at the clean
input, then a second forward on ``E + δ``. :func:`adversarial_pair` reads ``∇_E CE`` off the backward pass that
also yields the clean loss's parameter gradients (``embeds.retain_grad()`` and ``ctx.backward``), so a step
costs two forward and two backward passes, the floor, and the clean graph is freed before the adversarial
forward. The objective returns the adversarial terms for the engine's final backward, plus the clean terms
detached (they count in the logged loss, their gradients are already in).

A loss that couples the two passes (a contrastive loss between the clean and adversarial representations)
needs the clean graph until the end; :class:`AdversarialContrast` then takes ``∇_E CE`` with an input-only
backward (no parameter gradients) and leaves one backward through both graphs to the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from advcl.config.validate import ComponentSpec, RecipeError
from advcl.errors import BadInput
from advcl.modeling.encoder import EncoderOutput, model_inputs
from advcl.objectives.base import Objective, StepContext, StepOutput, create
from advcl.perturbers.base import OneStepPerturber
from advcl.perturbers.precision import input_gradient

# (∇_E CE, input_ids, attention_mask) -> δ, added to W[input_ids] for the adversarial forward
PerturbFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class PassPair:
    clean: EncoderOutput
    adversarial: EncoderOutput
    ce: torch.Tensor
    ce_adv: torch.Tensor


def adversarial_pair(
    batch: dict, model: nn.Module, loss: nn.Module, perturb: PerturbFn, ctx: StepContext, clean_weight: float | None
) -> PassPair:
    """The clean pass, δ from its CE gradient w.r.t. ``E = W[input_ids]``, and the pass on ``W[input_ids] + δ``.

    ``clean_weight > 0``: ``clean_weight·CE`` is backpropagated through ``ctx`` at once; that same backward gives
    ``∇_E`` (δ is invariant to the weight) and frees the clean graph. ``0``: the clean CE trains nothing; ``∇_E CE``
    comes from an input-only backward that frees the graph. ``None``: the clean graph is kept for the caller to
    backpropagate, and ``∇_E CE`` comes from an input-only backward that touches no parameter gradient.
    """
    inputs = model_inputs(batch)
    input_ids = inputs.pop("input_ids")
    embeds = model.word_embeddings(input_ids)
    clean = model(inputs_embeds=embeds, **inputs)
    ce = loss(clean.logits, batch["labels"])
    if not clean_weight:  # None or 0: no parameter gradient from the clean pass now
        grad = input_gradient(ce, embeds, retain_graph=clean_weight is None)
    else:
        embeds.retain_grad()
        ctx.backward(clean_weight * ce)
        grad = embeds.grad
    delta = perturb(grad, input_ids, inputs["attention_mask"])
    adversarial = model(inputs_embeds=model.word_embeddings(input_ids) + delta, **inputs)
    return PassPair(clean, adversarial, ce, loss(adversarial.logits, batch["labels"]))


def require_one_step(spec: ComponentSpec) -> None:
    """Recipe check for an objective's ``perturber``: δ must be a function of ``∇_E CE`` alone (fgsm, fgm)."""
    from advcl.plugins import registry

    if not issubclass(registry().get("perturber", spec.name).cls, OneStepPerturber):
        raise RecipeError(
            f"'objective.perturber' must be a one-step perturber such as fgsm or fgm, got '{spec.name}'"
        )


def hidden_size(model: nn.Module | None, objective: str) -> int:
    """The encoder's hidden size, to size a head; objectives with heads must be built with the model."""
    if model is None:
        raise BadInput(f"objective '{objective}' needs the model to size its heads")
    return model.hf.config.hidden_size


class AdversarialContrast(Objective):
    """``L = w·(CE(x) + CE(x_adv)) + λ·L_ctr(p(h), p(h_adv))``, x_adv one gradient step from x (SCAL, CAT).

    A subclass sets ``head`` (the projection p), ``contrast`` (the loss on the two views), ``ce_weight`` (w) and
    ``perturb``; its Config has ``loss``, ``contrast_weight`` (λ) and ``detach_clean_view``. By default the
    gradient of ``L_ctr`` reaches the encoder through both views, as the papers' loss says: the clean graph
    lives until the engine's backward, the only one through it that computes parameter gradients (two forward,
    two backward and one input-only backward pass). ``detach_clean_view`` treats ``p(h)`` as a constant in
    ``L_ctr`` (stop-gradient on the clean view; the projection head still trains on both): the clean graph is
    freed before the adversarial pass, so the step costs exactly two forward and two backward passes.
    """

    in_batch_negatives = True  # NT-Xent / InfoNCE over the batch
    contrasts_sentence = True
    head: nn.Module
    contrast: nn.Module
    ce_weight: float

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.loss = create(config.loss)

    def perturb(self, grad: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def step(self, batch, model, ctx):
        c = self.config
        coupled = c.contrast_weight > 0 and not c.detach_clean_view
        pair = adversarial_pair(batch, model, self.loss, self.perturb, ctx, None if coupled else self.ce_weight)
        clean_view = pair.clean.sentence if coupled else pair.clean.sentence.detach()
        ctr = self.contrast(self.head(clean_view), self.head(pair.adversarial.sentence))
        clean_ce = self.ce_weight * pair.ce
        loss = self.ce_weight * pair.ce_adv + c.contrast_weight * ctr + (clean_ce if coupled else clean_ce.detach())
        logs = {"ce": pair.ce.item(), "ce_adv": pair.ce_adv.item(), "contrast": ctr.item()}
        return StepOutput(loss, logs)
