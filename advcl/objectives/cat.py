"""CAT: contrastive adversarial training (Pan et al. AAAI 2022, eq. 5, 7-10; docs/methods.md, "Supervised / CAT").

After the clean pass, ``r = ε·sign(∇_W CE)`` on the word-embedding **matrix** W (eq. 5 with the sign typo fixed;
only rows of tokens in the batch are non-zero) and the adversarial pass looks the batch up in ``W + r``; W is
never modified (:mod:`advcl.perturbers.matrix`). With ``z = W₂ ReLU(W₁ h_cls)`` (W₁: d×d, W₂: 300×d, eq. 7-8):

    L = (1−λ)/2 · (CE(W) + CE(W+r)) + λ·L_ctr,   L_ctr = NT-Xent over the 2N views (eq. 9, SimCLR).

Ablations (the paper's Tables 7-9): ``contrast_weight = 0`` (λ = 0, AT only); ``target = "inputs_embeds"``
(AT_x: δ = ε·sign(∇_E CE) on the lookups, per position); ``norm = "l2"`` (eq. 6: FGM on W instead of FGSM).
Paper grid: ε ∈ {1e-4, 1e-3, 5e-3, 2e-2}, τ ∈ {0.05 … 0.1}, λ ∈ {0.1 … 0.5}.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import nn

from advcl.config.ranges import fraction, not_negative
from advcl.config.validate import component
from advcl.hookspecs import hookimpl
from advcl.objectives.adversarial_pair import AdversarialContrast, hidden_size
from advcl.objectives.base import create
from advcl.perturbers.matrix import matrix_perturbation
from advcl.perturbers.norms import Norm, ascent_direction

PROJECTION_SIZE = 300  # d_k in eq. 7-8


class CAT(AdversarialContrast):
    """Clean and W+r CE weighted (1−λ)/2 each, plus λ·NT-Xent between the projected clean and adversarial views."""

    name = "cat"

    @dataclass
    class Config:
        eps: float = 1e-3  # ε
        norm: Norm = "linf"  # linf: ε·sign(∇) (the paper's choice); l2: ε·∇/‖∇‖₂
        target: Literal["matrix", "inputs_embeds"] = "matrix"  # inputs_embeds: the AT_x ablation
        loss: object = component("loss", "cross_entropy")
        contrast: object = component("loss", "nt_xent")
        contrast_weight: float = 0.3  # λ
        detach_clean_view: bool = False  # true: stop-gradient on z(clean) in L_ctr, two passes (see AdversarialContrast)

        def __post_init__(self):
            not_negative("objective.eps", self.eps)
            fraction("objective.contrast_weight", self.contrast_weight, below_one=True, why="at 1 no CE is left")

    def __init__(self, config, model=None, **kwargs):
        super().__init__(config, model=model, **kwargs)
        dim = hidden_size(model, self.name)
        self.ce_weight = (1 - config.contrast_weight) / 2
        self.contrast = create(config.contrast)
        self.head = nn.Sequential(nn.Linear(dim, dim, bias=False), nn.ReLU(), nn.Linear(dim, PROJECTION_SIZE, bias=False))

    def perturb(self, grad, input_ids, attention_mask):
        c = self.config
        if c.target == "matrix":
            return matrix_perturbation(grad, input_ids, attention_mask, c.eps, c.norm)
        return c.eps * ascent_direction(grad.detach(), attention_mask, c.norm, "sentence")


@hookimpl
def register_objectives(register):
    register(CAT)
