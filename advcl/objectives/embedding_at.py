"""Adversarial training on the input embeddings: the FGSM, FGM and PGD baselines (docs/methods.md, "Supervised").

- ``fgsm_at`` (Goodfellow et al. 2015, §6: ``J̃ = α·J(x) + (1 − α)·J(x + ε·sign(∇_x J))``, α = 0.5) and ``fgm_at``
  (Miyato et al. 2017, the same mixture with the l2-normalised step): ``L = α·CE(E) + (1 − α)·CE(E + δ)`` with δ
  one step along ``∇_E CE`` at the clean input; that gradient comes from the clean loss's own backward pass
  (:func:`advcl.objectives.adversarial_pair.adversarial_pair`, which backpropagates ``α·CE(E)`` at once), so a step
  is two forward and two backward passes. The former default, ``CE(E) + CE(E + δ)``, is α = 0.5 with the loss
  (and so the learning rate's effect under SGD) doubled.
- ``pgd_at`` (Madry et al. 2018): ``L = CE(E + δ) + w_clean·CE(E)``, δ from K steps of projected gradient ascent
  (gradients w.r.t. δ only); Madry's min-max trains on the adversarial loss alone (``w_clean = 0``), so a step is
  K attack passes plus one training pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from advcl.config.ranges import fraction, not_negative
from advcl.config.validate import component
from advcl.hookspecs import hookimpl
from advcl.modeling.encoder import model_inputs
from advcl.objectives.adversarial_pair import adversarial_pair, require_one_step
from advcl.objectives.base import Objective, StepOutput, create


def _one_step_config(default_perturber: str) -> type:
    @dataclass
    class Config:
        perturber: object = component("perturber", default_perturber)
        loss: object = component("loss", "cross_entropy")
        alpha: float = 0.5  # α: the clean CE's share, (1 − α) the adversarial one's
        renamed = {"adv_weight": "replaced by 'objective.alpha' in [0, 1]: L = α·CE(x) + (1−α)·CE(x_adv); the former "
                   "CE + adv_weight·CE_adv at adv_weight 1 is alpha = 0.5 with the loss doubled"}

        def __post_init__(self):
            require_one_step(self.perturber)  # multi-step attacks: pgd_at
            fraction("objective.alpha", self.alpha)

    return Config


class OneStepAdversarialTraining(Objective):
    """α times the clean CE plus (1 − α) times the CE at ``inputs_embeds = W[input_ids] + δ``, δ one gradient step."""

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.perturber = create(config.perturber)
        self.loss = create(config.loss)

    def step(self, batch, model, ctx):
        def perturb(grad, input_ids, attention_mask):
            return self.perturber.from_gradient(grad, attention_mask)

        alpha = self.config.alpha
        pair = adversarial_pair(batch, model, self.loss, perturb, ctx, clean_weight=alpha)
        loss = (1 - alpha) * pair.ce_adv + alpha * pair.ce.detach()  # α·CE(E)'s backward is done
        return StepOutput(loss, {"ce": pair.ce.item(), "ce_adv": pair.ce_adv.item()})


class FGSMTraining(OneStepAdversarialTraining):
    name = "fgsm_at"
    Config = _one_step_config("fgsm")


class FGMTraining(OneStepAdversarialTraining):
    name = "fgm_at"
    Config = _one_step_config("fgm")


class PGDTraining(Objective):
    """Madry's min-max: the CE at the PGD-K point of the ε-ball, plus an optional clean CE (weight 0 by default)."""

    name = "pgd_at"

    @dataclass
    class Config:
        perturber: object = component("perturber", "pgd")
        loss: object = component("loss", "cross_entropy")
        clean_weight: float = 0.0  # w_clean

        def __post_init__(self):
            not_negative("objective.clean_weight", self.clean_weight)

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.perturber = create(config.perturber)
        self.loss = create(config.loss)

    def step(self, batch, model, ctx):
        inputs = model_inputs(batch)
        input_ids = inputs.pop("input_ids")

        def task_loss(inputs_embeds):
            return self.loss(model(inputs_embeds=inputs_embeds, **inputs).logits, batch["labels"])

        clean_part, logs = 0.0, {}
        if self.config.clean_weight > 0:  # backpropagated now, so that its graph is gone before the attack
            clean = task_loss(model.word_embeddings(input_ids))
            ctx.backward(self.config.clean_weight * clean)
            clean_part, logs["ce"] = self.config.clean_weight * clean.item(), clean.item()
        delta = self.perturber(task_loss, model.word_embeddings(input_ids).detach(), inputs["attention_mask"])
        adversarial = task_loss(model.word_embeddings(input_ids) + delta)
        logs["ce_adv"] = adversarial.item()
        return StepOutput(adversarial + clean_part, logs)


@hookimpl
def register_objectives(register):
    register(FGSMTraining)
    register(FGMTraining)
    register(PGDTraining)
