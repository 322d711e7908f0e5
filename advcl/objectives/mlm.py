"""Masked-LM head training (BERT's masked LM, Devlin et al. 2019, §3.1 "Task #1").

No pretrained masked LM loads offline (docs/methods.md, "Unsupervised / Masked-LM head"): this objective makes
one for the encoder of the recipe, on an unlabelled corpus. 15 % of each sentence's tokens are selected (never
[CLS] / [SEP]), 80 % of them become [MASK], 10 % a random token, 10 % stay
(:func:`advcl.modeling.mlm.mask_tokens`); the loss is the cross-entropy of the original tokens at the selected
positions only. The head is BERT's masked-LM head
(dense, GELU, LayerNorm, decoder tied to W: :class:`advcl.losses.token_reconstruction.TokenReconstruction`);
the encoder trains with it. :func:`advcl.runs.masked_lm.load_masked_lm` turns the run folder into a
``BertForMaskedLM``: RobustSentEmbed's generator, and the masked LM of BAE / BERT-Attack.

The objective sees no tokenizer: ``mask_token_id`` defaults to [MASK] of BERT's uncased vocabulary (MiniLM,
bert-base-uncased); ``load_masked_lm`` refuses a run whose tokenizer disagrees.
"""

from __future__ import annotations

from dataclasses import dataclass

from advcl.config.ranges import fraction
from advcl.config.validate import component
from advcl.errors import BadInput
from advcl.hookspecs import hookimpl
from advcl.modeling.encoder import model_inputs
from advcl.modeling.mlm import mask_tokens
from advcl.objectives.adversarial_pair import hidden_size
from advcl.objectives.base import Objective, StepOutput, create


class MaskedLM(Objective):
    """Cross-entropy of the masked-out tokens, predicted by an MLM head on the encoder's token states."""

    name = "mlm"
    needs_labels = False

    @dataclass
    class Config:
        head: object = component("loss", "token_reconstruction")  # BERT's MLM head shape, decoder tied to W
        mask_rate: float = 0.15
        mask_token_id: int = 103  # [MASK] in BERT's uncased vocabulary

        def __post_init__(self):
            fraction("objective.mask_rate", self.mask_rate, below_one=True)

    def __init__(self, config, model=None, **kwargs):
        super().__init__(config, model=model, **kwargs)
        dim = hidden_size(model, self.name)
        embeddings = model.word_embeddings
        vocab = embeddings.num_embeddings
        if not 0 <= config.mask_token_id < vocab:
            raise BadInput(
                f"'objective.mask_token_id' = {config.mask_token_id} is outside the vocabulary (0 … {vocab - 1})"
            )
        self.head = create(config.head, hidden_size=dim, embedding_size=embeddings.embedding_dim, vocab_size=vocab)

    def step(self, batch, model, ctx):
        inputs = model_inputs(batch)
        vocab = model.word_embeddings.num_embeddings
        corrupted, selected = mask_tokens(
            inputs["input_ids"], inputs["attention_mask"], self.config.mask_token_id, vocab, self.config.mask_rate
        )
        states = model(**{**inputs, "input_ids": corrupted}).token_states
        loss = self.head(states, inputs["input_ids"], selected, model.word_embeddings.weight)
        return StepOutput(loss, {"mlm": loss.item()})


@hookimpl
def register_objectives(register):
    register(MaskedLM)
