"""ADA: adversarial data augmentation (Si et al. 2021; the TaiChi paper's baseline, Chen et al. 2024, §2.1 and
Table 2; docs/methods.md, "Supervised / ADA"): fine-tune on ``D_clean ∪ D_adv`` with the clean labels.

Each batch holds N rows of the perturbed dataset; the objective trains on their 2N texts, the N clean ones and
their N adversarial twins (``advcl perturb``), each with the clean label:

    L = 1/2N Σ_i [CE(f(x_i), y_i) + CE(f(x'_i), y_i)],

the mean cross-entropy over the union, so an epoch visits every clean and every adversarial example once
(``train.batch_size`` N pairs is a step of 2N examples). D_adv is the successful attacks by default;
``data.adv_statuses`` adds failed or skipped rows (:mod:`advcl.data.adversarial_rows`; a skipped row's twin
repeats its clean text).
"""

from __future__ import annotations

from advcl.data.batching import adversarial_inputs
from advcl.hookspecs import hookimpl
from advcl.modeling.encoder import model_inputs
from advcl.objectives.base import StepOutput
from advcl.objectives.vanilla import Vanilla


class ADA(Vanilla):
    """Cross-entropy over the clean texts and their adversarial twins, all with the clean labels (vanilla's loss
    and settings, on twice the texts)."""

    name = "ada"
    needs_adversarial_text = True

    def step(self, batch, model, ctx):
        labels = batch["labels"]
        ce_clean = self.loss(model(**model_inputs(batch)).logits, labels)
        ce_adv = self.loss(model(**adversarial_inputs(batch)).logits, labels)
        loss = (ce_clean + ce_adv) / 2  # both halves have N rows: the mean over the 2N
        return StepOutput(loss, {"ce_clean": ce_clean.item(), "ce_adv": ce_adv.item()})


@hookimpl
def register_objectives(register):
    register(ADA)
