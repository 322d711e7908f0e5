"""The model every objective trains: a Hugging Face sequence classifier plus a pooled sentence vector.

Logits come from the architecture's own classification head (for BERT: pooler on the first token,
dropout, linear), so an exported folder reproduces them in plain ``transformers``. ``pooling`` chooses
the sentence representation ``h`` that contrastive losses and ``advcl embed`` use.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from advcl.modeling.pooling import pool

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass
class EncoderOutput:
    logits: torch.Tensor  # (batch, num_labels)
    token_states: torch.Tensor  # (batch, length, dim), last layer
    sentence: torch.Tensor  # (batch, dim), pooled


class EncoderClassifier(nn.Module):
    def __init__(self, hf_model: nn.Module, pooling: str = "cls"):
        super().__init__()
        self.hf = hf_model
        self.pooling = pooling

    @property
    def word_embeddings(self) -> nn.Embedding:
        """The word-embedding matrix W (vocab x dim); ``W[input_ids]`` is what ``inputs_embeds`` replaces."""
        return self.hf.get_input_embeddings()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> EncoderOutput:
        kwargs = {"attention_mask": attention_mask, "output_hidden_states": True}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        if inputs_embeds is not None:
            kwargs["inputs_embeds"] = inputs_embeds
        else:
            kwargs["input_ids"] = input_ids
        out = self.hf(**kwargs)
        states = out.hidden_states[-1]
        if attention_mask is None:
            attention_mask = torch.ones(states.shape[:2], dtype=torch.long, device=states.device)
        return EncoderOutput(out.logits, states, pool(states, attention_mask, self.pooling))


def model_inputs(batch: dict) -> dict:
    """The entries of a batch that the model takes (drops labels, example indices, ...)."""
    return {k: batch[k] for k in MODEL_INPUTS if k in batch}
