"""TaiChi (Chen et al. 2024, §3.4 and the ablations of §4.1 / Table 2; docs/methods.md, "Supervised / TaiChi").

Two encoders of the same architecture and initialisation, each with its classifier: ``f_clean``, the engine's
model, trained on clean text x, and ``f_adv``, a copy made when the objective is built and owned by it, trained on
the adversarial twin x' of each row (real adversarial text from ``advcl perturb``; y' = y). With z = mean-pooled
sentence representation (recipes set ``model.pooling = "mean"``) and p the classifier's prediction,

    L = CE(f_clean(x), y) + CTR(z_clean(x), z_clean(x'))                      CLEAN
      + CE(f_adv(x'), y) + CTR(z_adv(x'), z_adv(x))                           ADVERSARIAL
      + γ·(KL(p_clean(x) ‖ p_adv(x)) + KL(p_adv(x') ‖ p_clean(x')))          model-level fusion, γ = 1

CTR is :class:`advcl.losses.l2_contrast.L2Contrast` (similarity −‖u − v‖₂: the paper's sign typo fixed, τ = 1;
between unit-length representations by default, as the printed loss has no lower bound),
KL is :class:`advcl.losses.kl_divergence.KLDivergence`. Both models learn from one loss and one optimizer.
Inference uses ``f_clean``: it is the run's model (what eval, embed, export and attack load); ``f_adv`` lives
in the objective's checkpoint state only. The paper's classifier reads z: recipes set
``model.classifier_input = "sentence"`` (a linear classifier on the pooled vector, :mod:`advcl.modeling.encoder`);
with the default, the architecture's head on [CLS] classifies.

``ablation`` gives the paper's variants (Table 2):

- ``no_kl`` (TaiChi w/o KL, the paper's CLEAN model): ``CE + CTR`` of f_clean. Without the KL terms nothing
  reaches f_clean from f_adv, so f_adv is not built (Table 2: no adversarial model).
- ``no_ctr`` (TaiChi w/o CTR, Base_KL): both models, both CTR terms off.
- ``no_adv`` (TaiChi w/o ADV): one model, ``CE + CTR + γ·KL(p_clean(x) ‖ p_clean(x'))``, the KL of the clean
  model's predictions on x and x' (§4.1's single-model KL, whose primes the extract lost).

D_adv is the successful attacks by default: ``data.adv_statuses`` (:mod:`advcl.data.adversarial_rows`) drops the
rows ``advcl perturb`` wrote with another status before training, and report.json counts the rows used and
dropped. Adding ``failed`` trains on failed attacks' final texts too; ``skipped`` rows (the victim already wrong)
pair a text with itself, a zero-distance positive and a KL between identical inputs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

from advcl.config.ranges import not_negative
from advcl.config.validate import component
from advcl.data.batching import adversarial_inputs
from advcl.errors import BadInput
from advcl.hookspecs import hookimpl
from advcl.modeling.encoder import model_inputs
from advcl.objectives.base import Objective, StepOutput, create

TWO_MODELS = ("none", "no_ctr")


class TaiChi(Objective):
    """A clean and an adversarial model, each CE + l2 contrast, fused by KL in both directions."""

    name = "taichi"
    needs_adversarial_text = True
    contrasts_sentence = True

    @dataclass
    class Config:
        loss: object = component("loss", "cross_entropy")
        contrast: object = component("loss", "l2_contrast")  # τ = 1
        divergence: object = component("loss", "kl_divergence")
        kl_weight: float = 1.0  # γ
        ablation: Literal["none", "no_kl", "no_ctr", "no_adv"] = "none"

        def __post_init__(self):
            not_negative("objective.kl_weight", self.kl_weight)

    def __init__(self, config, model=None, **kwargs):
        super().__init__(config, model=model, **kwargs)
        self.loss = create(config.loss)
        self.contrast = create(config.contrast)
        self.divergence = create(config.divergence)
        self.adversarial_model = None
        if config.ablation in TWO_MODELS:
            if model is None:
                raise BadInput(f"objective '{self.name}' needs the model to copy it into its adversarial model")
            self.adversarial_model = copy.deepcopy(model)  # same architecture and initialisation

    def step(self, batch, model, ctx):
        ablation, labels = self.config.ablation, batch["labels"]
        x, x_adv = model_inputs(batch), adversarial_inputs(batch)  # x and its adversarial twin x'
        clean, clean_on_adv = model(**x), model(**x_adv)  # f_clean(x), f_clean(x')
        terms = {"ce_clean": self.loss(clean.logits, labels)}
        if ablation != "no_ctr":
            terms["ctr_clean"] = self.contrast(clean.sentence, clean_on_adv.sentence)
        kl_terms = {}
        if self.adversarial_model is not None:
            adv_on_clean, adv = self.adversarial_model(**x), self.adversarial_model(**x_adv)  # f_adv(x), f_adv(x')
            terms["ce_adv"] = self.loss(adv.logits, labels)
            if ablation != "no_ctr":
                terms["ctr_adv"] = self.contrast(adv.sentence, adv_on_clean.sentence)
            kl_terms["kl_clean"] = self.divergence(clean.logits, adv_on_clean.logits)
            kl_terms["kl_adv"] = self.divergence(adv.logits, clean_on_adv.logits)
        elif ablation == "no_adv":
            kl_terms["kl"] = self.divergence(clean.logits, clean_on_adv.logits)
        loss = sum(terms.values()) + self.config.kl_weight * sum(kl_terms.values())
        return StepOutput(loss, {k: v.item() for k, v in (terms | kl_terms).items()})


@hookimpl
def register_objectives(register):
    register(TaiChi)
