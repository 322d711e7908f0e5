"""CARL: contrastive adversarial representation learning (CARL paper §3.2, eq. 1-6;
docs/methods.md, "Supervised / CARL").

``L = CE_FreeLB + L_D``: FreeLB-K adversarial training (:mod:`advcl.objectives.freelb`) plus the label-aware
contrast of :class:`advcl.losses.memory_bank_contrast.MemoryBankContrast` between the clean representation R
and the adversarial one R_adv (the last FreeLB pass), against m negatives of other labels from two memory banks
with one row per training example (``batch["index"]``), updated ``B ← M·B + (1−M)·R`` (eq. 5) at every step, just
before L_D is computed (so that the engine's backward finds the banks as L_D read them). Under torchrun the
update writes every process's rows of the step (see ``MemoryBankContrast.update``), so every process holds the
banks that one process training on the whole global batch would hold, and all switch L_D on at the same step.

L_D is switched on once ``ctx.step ≥ contrast_start_step`` *and* every bank row has been written (one pass over
the training set, the paper's "use an entire epoch ... to initialize the whole memory bank"); before that the
clean pass runs without a graph and only fills the banks. Paper: start after 5,625-7,750 steps; m = 16,000;
τ = 0.07; M = 0.5; FreeLB γ .6 α .1 ε 0 K 2 on SST-2 and γ 0 α .01 ε 0 K 3 on AG News (Table 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from advcl.config.ranges import at_least, fraction, not_negative
from advcl.config.validate import RecipeError, component
from advcl.hookspecs import hookimpl
from advcl.modeling.encoder import model_inputs
from advcl.objectives.adversarial_pair import hidden_size
from advcl.objectives.base import create
from advcl.objectives.freelb import FreeLBTraining
from advcl.perturbers.freelb import FreeLBConfig


class CARL(FreeLBTraining):
    """FreeLB's CE plus the memory-bank contrast between each example's clean and adversarial representations."""

    name = "carl"
    contrasts_sentence = True

    @dataclass
    class Config:
        freelb: FreeLBConfig = field(default_factory=FreeLBConfig)
        loss: object = component("loss", "cross_entropy")
        contrast: object = component("loss", "memory_bank_contrast")  # τ, M, m (num_negatives)
        contrast_weight: float = 1.0  # L_D's weight; the paper adds it with weight 1
        contrast_start_step: int = 0  # optimizer steps before L_D may switch on (it also waits for full banks)

        def __post_init__(self):
            not_negative("objective.contrast_weight", self.contrast_weight)
            not_negative("objective.contrast_start_step", self.contrast_start_step)
            at_least("objective.contrast.num_negatives", self.contrast.config.num_negatives, 1)
            fraction("objective.contrast.momentum", self.contrast.config.momentum)

    def __init__(self, config, model=None, num_train_examples: int = 0, **kwargs):
        super().__init__(config, model=model, num_train_examples=num_train_examples, **kwargs)
        negatives = config.contrast.config.num_negatives
        if negatives >= num_train_examples:
            raise RecipeError(
                f"'objective.contrast.num_negatives' must be below the number of training examples "
                f"({num_train_examples}), got {negatives}"
            )
        self.contrast = create(config.contrast, num_examples=num_train_examples, dim=hidden_size(model, self.name))

    def contrast_active(self, step: int) -> bool:
        """Whether L_D counts at optimizer step ``step``: past the start step, and every bank row written once."""
        return (
            self.config.contrast_weight > 0
            and step >= self.config.contrast_start_step
            and bool((self.contrast.bank_labels >= 0).all())
        )

    def last_pass_terms(self, batch, model, adversarial, ctx):
        active = self.contrast_active(ctx.step)
        with torch.set_grad_enabled(active):
            clean = model(**model_inputs(batch))
        labels = batch["labels"]
        # eq. 5 now: L_D's graph holds the banks until the engine's backward, so they cannot change after it is
        # built. This batch's own rows are never its negatives (same label), so the order changes no anchor's
        # positive; other-label rows of this batch are negatives with their fresh value.
        self.contrast.update(batch["index"], clean.sentence.detach(), adversarial.sentence.detach(), labels)
        if not active:
            return None, {"contrast_on": 0.0}
        l_d = self.contrast(clean.sentence, adversarial.sentence, labels)
        return self.config.contrast_weight * l_d, {"contrast_on": 1.0, "contrast": l_d.item()}


@hookimpl
def register_objectives(register):
    register(CARL)
