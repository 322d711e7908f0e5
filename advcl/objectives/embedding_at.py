"""Adversarial training on input embeddings: ``L = CE(E) + w·CE(E + δ)`` with δ from a perturber.

The FGSM (Goodfellow et al. 2015), FGM (Miyato et al. 2017) and PGD (Madry et al. 2018) baselines of
../shared/methods.md, "Perturbers": each is this objective with its own default perturber; δ is computed
with gradients w.r.t. δ only, then the clean and adversarial losses train the model in one backward.
"""

from __future__ import annotations

from dataclasses import dataclass

from advcl.config.validate import component
from advcl.hookspecs import hookimpl
from advcl.modeling.encoder import model_inputs
from advcl.objectives.base import Objective, StepOutput, create


def _config(default_perturber: str) -> type:
    @dataclass
    class Config:
        perturber: object = component("perturber", default_perturber)
        loss: object = component("loss", "cross_entropy")
        adv_weight: float = 1.0  # w

    return Config


class EmbeddingAdversarialTraining(Objective):
    """Clean CE plus the CE of the same batch with ``inputs_embeds = W[input_ids] + δ``."""

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.perturber = create(config.perturber)
        self.loss = create(config.loss)

    def step(self, batch, model, ctx):
        inputs = model_inputs(batch)
        embeds = model.word_embeddings(inputs.pop("input_ids"))

        def task_loss(inputs_embeds):
            return self.loss(model(inputs_embeds=inputs_embeds, **inputs).logits, batch["labels"])

        clean = task_loss(embeds)
        delta = self.perturber(task_loss, embeds, inputs["attention_mask"])
        adversarial = task_loss(embeds + delta)
        loss = clean + self.config.adv_weight * adversarial
        return StepOutput(loss, {"ce": clean.item(), "ce_adv": adversarial.item()})


class FGSMTraining(EmbeddingAdversarialTraining):
    name = "fgsm_at"
    Config = _config("fgsm")


class FGMTraining(EmbeddingAdversarialTraining):
    name = "fgm_at"
    Config = _config("fgm")


class PGDTraining(EmbeddingAdversarialTraining):
    name = "pgd_at"
    Config = _config("pgd")


@hookimpl
def register_objectives(register):
    register(FGSMTraining)
    register(FGMTraining)
    register(PGDTraining)
