"""Fine-tuning with cross-entropy plus a supervised contrastive term, as Gunel et al. 2021 ("Supervised Contrastive
Learning for Pre-trained Language Model Fine-tuning") do, but weighted ``L = CE + λ·SupCon`` rather than their
``(1−λ)·CE + λ·SupCon``, and on a projection of the pooled sentence; SupCon is Khosla et al. 2020, eq. 2."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from advcl.api import Objective, StepOutput, at_least, component, create, model_inputs, not_negative


class SupConObjective(Objective):
    """``CE(g(h), y) + λ·SupCon(p(h), y)``: p is a two-layer projection head (Linear, ReLU, Linear), as in
    Khosla et al. 2020 §3.1, trained with the encoder and not exported (``advcl export`` says so)."""

    name = "supcon"
    contrasts_sentence = True  # SupCon reads the pooled sentence: the classifier should too

    @dataclass
    class Config:
        loss: object = component("loss", "cross_entropy")
        contrast: object = component("loss", "supcon")
        weight: float = 0.1  # λ; Gunel et al. search {0.1, 0.3, 0.5, 0.7, 0.9}
        projection_dim: int = 128

        def __post_init__(self):
            not_negative("weight", self.weight)
            at_least("projection_dim", self.projection_dim, 1)

    def __init__(self, config, model=None, **kwargs):
        super().__init__(config, model=model, **kwargs)
        hidden = model.hf.config.hidden_size
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, config.projection_dim))
        self.loss = create(config.loss)
        self.contrast = create(config.contrast)

    def step(self, batch, model, ctx):
        out = model(**model_inputs(batch))
        ce = self.loss(out.logits, batch["labels"])
        contrast = self.contrast(self.head(out.sentence), batch["labels"])
        return StepOutput(ce + self.config.weight * contrast, {"ce": ce.item(), "supcon": contrast.item()})
