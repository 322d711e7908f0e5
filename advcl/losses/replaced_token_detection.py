"""Replaced-token detection conditioned on a sentence embedding (RobustSentEmbed, Rafiei Asl et al. 2024, eq. 8).

ELECTRA's discriminator task (Clark et al. 2020) in the conditional form of DiffCSE (Chuang et al. 2022): a
discriminator D reads the edited sentence x'' (a masked LM's fills, :func:`advcl.modeling.mlm.replace_tokens`)
with the encoder's sentence embedding h in place of its first token, and predicts for every token whether it
was replaced. RobustSentEmbed feeds D the *perturbed* embeddings ``X_adv = X'' + η``. Eq. 8 is ELECTRA's
discriminator loss with D = P(token j is original): ``−log D`` for the kept tokens, ``−log(1 − D)`` for the
replaced ones. Here the scorer's logit is that of "replaced", so ``1 − D = σ(logit)`` and the same loss reads

    ℓ_j = −1(x''_j ≠ x_j)·log σ(logit_j) − 1(x''_j = x_j)·log(1 − σ(logit_j))

over the real positions after the first (that one holds h). ``reduction`` (docs/methods.md,
"Losses / Replaced-token detection"):

- ``"mean"`` (default): the mean of ℓ_j over every scored token of the batch. RobustSentEmbed takes λ₂ = 0.005
  from DiffCSE (Chuang et al. 2022), whose code averages the per-token loss the same way; with that weight a
  summed loss (thousands of tokens per batch) would outweigh the contrastive loss by orders of magnitude.
- ``"sum"``: eq. 8 as printed, ``Σ_j ℓ_j`` per sentence, then the mean over the batch's sentences (the printed
  batch objective sums over sentences too, which is this times the batch size). λ₂ then needs to be about
  the number of scored tokens per sentence times smaller to weigh the same.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from advcl.hookspecs import hookimpl
from advcl.losses.base import Loss


class ReplacedTokenDetection(Loss):
    """Binary cross-entropy of a per-token "replaced?" classifier on top of a discriminator encoder.

    Built with ``encoder``, a Hugging Face base model (``model.hf.bert``): D is a copy of it (RobustSentEmbed's
    "PLM-based discriminator", starting from the encoder's weights) plus a linear scorer; both are trained
    and checkpointed with the loss. ``forward(edited_ids, perturbation, sentence, replaced, attention_mask,
    token_type_ids)``: ``perturbation`` (η, shaped like the embeddings; zeros for none) is added to D's
    word-embedding lookups of ``edited_ids``; ``sentence`` (batch, dim) is h, whose gradient reaches the encoder being trained.

    >>> from transformers import BertConfig, BertModel
    >>> rtd = ReplacedTokenDetection(encoder=BertModel(BertConfig(hidden_size=8, num_hidden_layers=1,
    ...     num_attention_heads=2, intermediate_size=16, vocab_size=20)))
    >>> ids, mask = torch.randint(20, (2, 5)), torch.ones(2, 5)
    >>> loss = rtd(ids, torch.zeros(2, 5, 8), torch.randn(2, 8), torch.rand(2, 5) < 0.2, mask)
    """

    name = "replaced_token_detection"

    @dataclass
    class Config:
        reduction: Literal["mean", "sum"] = "mean"  # over tokens; sentences are always averaged

    def __init__(self, config: Config | None = None, *, encoder: nn.Module):
        super().__init__(config)
        self.discriminator = copy.deepcopy(encoder)
        self.discriminator.pooler = None  # D scores tokens; an unused pooler would get no gradient
        self.scorer = nn.Linear(encoder.config.hidden_size, 1)

    def forward(
        self,
        edited_ids: torch.Tensor,
        perturbation: torch.Tensor,
        sentence: torch.Tensor,
        replaced: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        embeds = self.discriminator.get_input_embeddings()(edited_ids) + perturbation  # X_adv = X'' + η
        embeds = torch.cat([sentence.unsqueeze(1).to(embeds.dtype), embeds[:, 1:]], dim=1)
        states = self.discriminator(
            inputs_embeds=embeds, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        scored = attention_mask.bool() & (torch.arange(attention_mask.shape[1], device=attention_mask.device) > 0)
        logits = self.scorer(states[scored]).squeeze(-1)
        if self.config.reduction == "mean":
            return F.binary_cross_entropy_with_logits(logits.float(), replaced[scored].float())
        per_token = F.binary_cross_entropy_with_logits(logits.float(), replaced[scored].float(), reduction="none")
        return per_token.sum() / len(edited_ids)


@hookimpl
def register_losses(register):
    register(ReplacedTokenDetection)
