"""SCAL: supervised contrastive adversarial learning (Miao et al. 2021, §3.3, eq. 6-8;
docs/methods.md, "Supervised / SCAL").

``E_adv = E + ε·∇_E CE/‖∇_E CE‖₂`` (FGM, eq. 6; FGSM works too), ``z = p(h)``, ``z_adv = p(h_adv)`` and

    L = ½(CE(x, y) + CE(x_adv, y)) + α·L_ct,   L_ct = InfoNCE(z, z_adv) with in-batch candidates (eq. 7, τ = 0.05).

p is a "pooler layer" (the paper's word): ``tanh(W_p h + b)``, BERT's pooler shape, used only by the contrastive
loss. The paper gives no value for α beyond "a constant less than one"; the default is 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from advcl.config.ranges import not_negative
from advcl.config.validate import component
from advcl.hookspecs import hookimpl
from advcl.objectives.adversarial_pair import AdversarialContrast, hidden_size, require_one_step
from advcl.objectives.base import create


class SCAL(AdversarialContrast):
    """Clean and FGM-adversarial CE, halved, plus α·InfoNCE between the pooled clean and adversarial views."""

    name = "scal"
    ce_weight = 0.5

    @dataclass
    class Config:
        perturber: object = component("perturber", "fgm")  # ε ∈ {0.1 … 0.5} in the paper
        loss: object = component("loss", "cross_entropy")
        contrast: object = component("loss", "infonce")  # τ = 0.05
        contrast_weight: float = 0.5  # α
        detach_clean_view: bool = False  # true: stop-gradient on p(h) in L_ct, two passes (see AdversarialContrast)

        def __post_init__(self):
            require_one_step(self.perturber)
            not_negative("objective.contrast_weight", self.contrast_weight)

    def __init__(self, config, model=None, **kwargs):
        super().__init__(config, model=model, **kwargs)
        dim = hidden_size(model, self.name)
        self.perturber = create(config.perturber)
        self.contrast = create(config.contrast)
        self.head = nn.Sequential(nn.Linear(dim, dim), nn.Tanh())

    def perturb(self, grad, input_ids, attention_mask):
        return self.perturber.from_gradient(grad, attention_mask)


@hookimpl
def register_objectives(register):
    register(SCAL)
