"""RAR: reconstruction from adversarial representations (CARL paper §3.3, eq. 7; docs/methods.md, "Supervised / RAR").

``L = CE_FreeLB + w_r·L_R`` from step 0, w_r = 0.1: FreeLB-K adversarial training (:mod:`advcl.objectives.freelb`)
plus the cross-entropy of reconstructing every original token from its adversarial token state with
:class:`advcl.losses.token_reconstruction.TokenReconstruction` (dense d→e, GELU, LayerNorm, decoder tied to W).
The token states are those of the last FreeLB pass, the final adversarial example; δ ascends the CE only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from advcl.config.ranges import not_negative
from advcl.config.validate import component
from advcl.hookspecs import hookimpl
from advcl.objectives.adversarial_pair import hidden_size
from advcl.objectives.base import create
from advcl.objectives.freelb import FreeLBTraining
from advcl.perturbers.freelb import FreeLBConfig


class RAR(FreeLBTraining):
    """FreeLB's CE plus w_r times the token-reconstruction CE of the last adversarial pass."""

    name = "rar"

    @dataclass
    class Config:
        freelb: FreeLBConfig = field(default_factory=FreeLBConfig)
        loss: object = component("loss", "cross_entropy")
        reconstruction: object = component("loss", "token_reconstruction")
        reconstruction_weight: float = 0.1  # w_r

        def __post_init__(self):
            not_negative("objective.reconstruction_weight", self.reconstruction_weight)

    def __init__(self, config, model=None, **kwargs):
        super().__init__(config, model=model, **kwargs)
        dim = hidden_size(model, self.name)
        embedding = model.word_embeddings
        self.reconstruction = create(
            config.reconstruction,
            hidden_size=dim,
            embedding_size=embedding.embedding_dim,
            vocab_size=embedding.num_embeddings,
        )

    def last_pass_terms(self, batch, model, adversarial, ctx):
        l_r = self.reconstruction(
            adversarial.token_states, batch["input_ids"], batch["attention_mask"], model.word_embeddings.weight
        )
        return self.config.reconstruction_weight * l_r, {"reconstruction": l_r.item()}


@hookimpl
def register_objectives(register):
    register(RAR)
