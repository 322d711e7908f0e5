"""USCAL: unsupervised contrastive adversarial learning (Miao et al. 2021, §3.4, eq. 9-10;
docs/methods.md, "Unsupervised / USCAL").

SimCSE's two dropout views (:mod:`advcl.objectives.simcse`), plus an adversarial view of the first one built
from the gradient of the contrastive loss itself (FGM, eq. 9):

    E_adv = E₁ + ε·∇_{E₁} L_ct(z1, z2) / ‖∇_{E₁} L_ct(z1, z2)‖₂,      L = L_ct(z1, z2) + α·L_ct(z1, z_adv)

(eq. 10), ``z_adv = p(f(E_adv))`` through the same MLP pooler, α < 1 ("a constant less than one", as in SCAL:
default 0.5), ε ∈ {0.1 … 0.5} (default 0.1). ``∇_{E₁}`` comes from an input-only backward (no parameter
gradients); one backward of L at the end trains the encoder through all three views.
"""

from __future__ import annotations

from dataclasses import dataclass

from advcl.config.ranges import not_negative
from advcl.config.validate import component
from advcl.hookspecs import hookimpl
from advcl.objectives.adversarial_pair import require_one_step
from advcl.objectives.base import StepOutput, create
from advcl.objectives.simcse import SimCSE
from advcl.perturbers.precision import input_gradient


class USCAL(SimCSE):
    """SimCSE's loss plus α times InfoNCE between view 1 and its FGM-adversarial view."""

    name = "uscal"

    @dataclass
    class Config:
        contrast: object = component("loss", "infonce")  # τ = 0.05
        perturber: object = component("perturber", "fgm")  # ε ∈ {0.1 … 0.5} in the paper
        adv_weight: float = 0.5  # α

        def __post_init__(self):
            require_one_step(self.perturber)
            not_negative("objective.adv_weight", self.adv_weight)

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.perturber = create(config.perturber)

    def step(self, batch, model, ctx):
        views = self.views(batch, model)
        clean = self.contrast(views.z1, views.z2)
        grad = input_gradient(clean, views.embeds, retain_graph=True)
        first = views.embeds[: len(views.z1)]  # E₁
        delta = self.perturber.from_gradient(grad[: len(first)], views.inputs["attention_mask"])
        z_adv = self.head(model(inputs_embeds=first + delta, **views.inputs).sentence)
        adversarial = self.contrast(views.z1, z_adv)
        loss = clean + self.config.adv_weight * adversarial
        return StepOutput(loss, {"contrast": clean.item(), "contrast_adv": adversarial.item()})


@hookimpl
def register_objectives(register):
    register(USCAL)
