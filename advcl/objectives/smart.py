"""SMART's smoothness-inducing adversarial regulariser (Jiang et al. 2020, eq. 1-3, Algorithm 1; docs/methods.md,
"Supervised / SMART"): ``L = CE(g(f(E)), y) + λ_s·ℓ_s(g(f(E)), g(f(E + δ)))``, λ_s = 1.

ℓ_s is the symmetric KL; δ is noise ``N(0, σ²)`` plus one normalised ascent step on ℓ_s with the clean prediction
held fixed (:class:`advcl.perturbers.smart.SMART`). In the training loss ℓ_s depends on the parameters through both
predictions, so the clean graph lives until the single backward. (SMART's Bregman proximal point term is an
optimizer-side momentum method and is not part of this objective.)
"""

from __future__ import annotations

from dataclasses import dataclass

from advcl.config.ranges import not_negative
from advcl.config.validate import component
from advcl.hookspecs import hookimpl
from advcl.modeling.encoder import model_inputs
from advcl.objectives.base import Objective, StepOutput, create


class SMARTTraining(Objective):
    """CE on the clean batch plus λ_s times the symmetric KL between clean and perturbed predictions."""

    name = "smart"

    @dataclass
    class Config:
        perturber: object = component("perturber", "smart")  # σ = 1e-5, step 1e-3
        loss: object = component("loss", "cross_entropy")
        regularizer: object = component("loss", "symmetric_kl")
        regularizer_weight: float = 1.0  # λ_s

        def __post_init__(self):
            not_negative("objective.regularizer_weight", self.regularizer_weight)

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.perturber = create(config.perturber)
        self.loss = create(config.loss)
        self.regularizer = create(config.regularizer)

    def step(self, batch, model, ctx):
        inputs = model_inputs(batch)
        input_ids = inputs.pop("input_ids")
        embeds = model.word_embeddings(input_ids)
        clean = model(inputs_embeds=embeds, **inputs).logits
        ce = self.loss(clean, batch["labels"])

        def divergence(perturbed_embeds):
            return self.regularizer(model(inputs_embeds=perturbed_embeds, **inputs).logits, clean.detach())

        delta = self.perturber(divergence, embeds.detach(), inputs["attention_mask"])
        regularizer = self.regularizer(model(inputs_embeds=embeds + delta, **inputs).logits, clean)
        loss = ce + self.config.regularizer_weight * regularizer
        return StepOutput(loss, {"ce": ce.item(), "symmetric_kl": regularizer.item()})


@hookimpl
def register_objectives(register):
    register(SMARTTraining)
