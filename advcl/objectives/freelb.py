"""FreeLB-K training (Zhu et al. 2020, Algorithm 1; docs/methods.md, "Supervised / FreeLB").

``δ₀ ~ U(−1, 1)·γ/√(L·d)`` on real tokens; for t = 1..K: forward on ``W[ids] + δ_{t−1}``, backward ``CE/K`` (the
parameter gradients of the K passes accumulate into their average), ``δ_t = δ_{t−1} + α·∇δ/‖∇δ‖`` per example,
projected to ε when ε > 0 (ε = 0: unbounded). The engine then makes exactly one optimizer step. ∇δ comes from
the same backward as the parameter gradients, so a step costs K forward and K backward passes.

CARL and RAR (:mod:`advcl.objectives.carl`, :mod:`advcl.objectives.rar`) are this loop plus a loss on the last
adversarial pass (:meth:`FreeLBTraining.last_pass_terms`), which is backpropagated with that pass and never
steers δ: the ascent maximises the classification loss alone, as their eq. 6-7 say. The first K−1 passes
are backpropagated through ``ctx.backward``; the last one's loss is returned for the engine's backward.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from advcl.config.validate import component
from advcl.hookspecs import hookimpl
from advcl.modeling.encoder import EncoderOutput, model_inputs
from advcl.objectives.base import Objective, StepContext, StepOutput, create
from advcl.perturbers.freelb import FreeLBConfig, freelb_init, freelb_update


class FreeLBTraining(Objective):
    """The average CE over K ascent steps on δ, with the parameter gradients accumulated across them."""

    name = "freelb"

    @dataclass
    class Config:
        freelb: FreeLBConfig = field(default_factory=FreeLBConfig)
        loss: object = component("loss", "cross_entropy")

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.loss = create(config.loss)

    def last_pass_terms(
        self, batch: dict, model, adversarial: EncoderOutput, ctx: StepContext
    ) -> tuple[torch.Tensor | None, dict[str, float]]:
        """A loss to add to the last pass's ``CE/K`` (None: nothing), and what to log about it.

        Whatever it computes is backpropagated by the engine after ``step`` returns."""
        return None, {}

    def step(self, batch, model, ctx):
        cfg = self.config.freelb
        inputs = model_inputs(batch)
        input_ids = inputs.pop("input_ids")
        attention_mask = inputs["attention_mask"]
        delta = freelb_init(model.word_embeddings(input_ids).detach(), attention_mask, cfg.init_mag)
        ce_values = []
        for t in range(cfg.steps):
            delta.requires_grad_()
            adversarial = model(inputs_embeds=model.word_embeddings(input_ids) + delta, **inputs)
            ce = self.loss(adversarial.logits, batch["labels"])
            ce_values.append(ce.item())
            if t == cfg.steps - 1:
                break  # the last pass is the engine's to backpropagate
            ctx.backward(ce / cfg.steps)
            delta = freelb_update(delta.detach(), delta.grad, attention_mask, cfg)
        extra, logs = self.last_pass_terms(batch, model, adversarial, ctx)
        loss = ce / cfg.steps + sum(ce_values[:-1]) / cfg.steps  # the earlier passes' gradients are in already
        return StepOutput(loss if extra is None else loss + extra, {"ce_adv": sum(ce_values) / cfg.steps, **logs})


@hookimpl
def register_objectives(register):
    register(FreeLBTraining)
