"""SimCSE, unsupervised (Gao et al. 2021, §3, eq. 1; docs/methods.md, "Unsupervised / SimCSE").

Each sentence goes through the encoder twice in one batch of 2N rows, so the two passes draw different dropout
masks: ``h_i`` and ``h⁺_i``. With the MLP pooler ``p(h) = tanh(W_p h + b)`` over the pooled representation
(``cls`` by default) and in-batch negatives,

    ℓ_i = −log e^{sim(z_i, z⁺_i)/τ} / Σ_j e^{sim(z_i, z⁺_j)/τ},   z = p(h), z⁺ = p(h⁺), τ = 0.05.

The MLP is used in training only (SimCSE's ``cls_before_pooler`` at evaluation): ``advcl embed`` and the STS
evaluation read ``h``. :class:`SimCSE` is also the base of USCAL and RobustSentEmbed, which add adversarial
views to the same two dropout views.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from advcl.config.validate import component
from advcl.hookspecs import hookimpl
from advcl.modeling.encoder import EncoderOutput, model_inputs
from advcl.objectives.adversarial_pair import hidden_size
from advcl.objectives.base import Objective, StepOutput, create


@dataclass
class DropoutViews:
    """Two dropout views of a batch of N sentences, from one forward pass over 2N rows."""

    embeds: torch.Tensor  # (2N, length, dim): the lookups W[ids] of both views; rows :N are view 1's E₁
    inputs: dict  # attention_mask (and token_type_ids) of one view, N rows
    output: EncoderOutput  # of the 2N rows
    z1: torch.Tensor  # p(h) of view 1, (N, dim)
    z2: torch.Tensor  # p(h⁺) of view 2


class SimCSE(Objective):
    """In-batch InfoNCE between two dropout views of each sentence, through an MLP pooler used only here."""

    name = "simcse"
    needs_labels = False
    in_batch_negatives = True

    @dataclass
    class Config:
        contrast: object = component("loss", "infonce")  # τ = 0.05

    def __init__(self, config, model=None, **kwargs):
        super().__init__(config, model=model, **kwargs)
        dim = hidden_size(model, self.name)
        self.head = nn.Sequential(nn.Linear(dim, dim), nn.Tanh())  # SimCSE's MLP pooler
        self.contrast = create(config.contrast)

    def views(self, batch: dict, model: nn.Module) -> DropoutViews:
        inputs = model_inputs(batch)
        input_ids = inputs.pop("input_ids")
        embeds = model.word_embeddings(torch.cat([input_ids, input_ids]))
        output = model(inputs_embeds=embeds, **{k: torch.cat([v, v]) for k, v in inputs.items()})
        z1, z2 = self.head(output.sentence).chunk(2)
        return DropoutViews(embeds, inputs, output, z1, z2)

    def step(self, batch, model, ctx):
        views = self.views(batch, model)
        loss = self.contrast(views.z1, views.z2)
        return StepOutput(loss, {"contrast": loss.item()})


@hookimpl
def register_objectives(register):
    register(SimCSE)
