"""The model every objective trains: a Hugging Face sequence classifier plus a pooled sentence vector.

By default logits come from the architecture's own classification head (for BERT: pooler on the first token,
dropout, linear), so an exported folder reproduces them in plain ``transformers``. ``pooling`` chooses
the sentence representation ``h`` that contrastive losses and ``advcl embed`` use.

With ``classifier_pooling`` ("cls" or "mean", recipes: ``model.classifier_input = "sentence"``) the logits are
instead a linear classifier on that pooled vector, ``W·dropout(h) + b``: the classifier TaiChi's paper puts on
its mean-pooled z, and the natural read-out of a sentence-embedding encoder such as all-MiniLM-L6-v2, whose [CLS]
state was never trained as a sentence vector. Its weights live beside the architecture's in
``model.safetensors`` under ``SENTENCE_CLASSIFIER.``; the architecture's own head is then unused.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from advcl.modeling.pooling import pool

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
SENTENCE_CLASSIFIER = "sentence_classifier"  # key prefix of its weights in model.safetensors


@dataclass
class EncoderOutput:
    logits: torch.Tensor  # (batch, num_labels)
    token_states: torch.Tensor  # (batch, length, dim), last layer
    sentence: torch.Tensor  # (batch, dim), pooled


class EncoderClassifier(nn.Module):
    def __init__(self, hf_model: nn.Module, pooling: str = "cls", classifier_pooling: str | None = None):
        super().__init__()
        self.hf = hf_model
        self.pooling = pooling
        self.classifier_pooling = classifier_pooling
        self.sentence_classifier = None
        if classifier_pooling is not None:
            config = hf_model.config
            linear = nn.Linear(config.hidden_size, config.num_labels)
            nn.init.normal_(linear.weight, std=getattr(config, "initializer_range", 0.02))  # as HF inits its heads
            nn.init.zeros_(linear.bias)
            dropout = getattr(config, "classifier_dropout", None)
            if dropout is None:
                dropout = getattr(config, "hidden_dropout_prob", 0.1)
            self.sentence_classifier = nn.Sequential(nn.Dropout(dropout), linear)

    def weights(self) -> dict[str, torch.Tensor]:
        """What ``model.safetensors`` holds: the architecture's state dict, plus the sentence classifier's."""
        state = dict(self.hf.state_dict())
        if self.sentence_classifier is not None:
            state.update({f"{SENTENCE_CLASSIFIER}.{k}": v for k, v in self.sentence_classifier.state_dict().items()})
        return state

    def load_weights(self, state: dict[str, torch.Tensor]) -> None:
        """Inverse of :meth:`weights`; a missing or unexpected sentence classifier raises, as any missing key."""
        prefix = SENTENCE_CLASSIFIER + "."
        head = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if head and self.sentence_classifier is None:
            raise RuntimeError("the weights have a sentence classifier this model was not built with")
        if self.sentence_classifier is not None:
            self.sentence_classifier.load_state_dict(head)
        self.hf.load_state_dict({k: v for k, v in state.items() if not k.startswith(prefix)})

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
        sentence = pool(states, attention_mask, self.pooling)
        logits = out.logits
        if self.sentence_classifier is not None:
            read = sentence if self.classifier_pooling == self.pooling else pool(states, attention_mask, self.classifier_pooling)
            logits = self.sentence_classifier(read)
        return EncoderOutput(logits, states, sentence)


def model_inputs(batch: dict) -> dict:
    """The entries of a batch that the model takes (drops labels, example indices, ...)."""
    return {k: batch[k] for k in MODEL_INPUTS if k in batch}


def classifier_pooling(recipe) -> str | None:
    """The pooling a recipe's sentence classifier reads, or None where the architecture's head classifies."""
    return recipe.model.pooling if recipe.model.classifier_input == "sentence" else None
