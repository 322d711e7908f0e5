"""RAR: reconstruct every original token from its adversarial token state (CARL paper §3.3, eq. 7).

docs/methods.md, "Supervised / RAR": a reconstructor ``dense d→e, GELU, LayerNorm, decoder e→vocab tied to W`` (the
BERT/ALBERT masked-LM head; the paper lists LayerNorm first, here it comes after GELU as in those heads) and
``L_R`` = cross-entropy of the original token ids at every non-padding position.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from advcl.config.ranges import positive
from advcl.hookspecs import hookimpl
from advcl.losses.base import Loss


class TokenReconstruction(Loss):
    """Cross-entropy of the original ids from (batch, length, d) token states, over non-padding positions.

    Built with the encoder's hidden size d, embedding size e and vocabulary size; the decoder weight is
    the word-embedding matrix W (vocab × e), passed to ``forward`` so that it stays the model's own
    parameter (tied, not copied). ``logits`` gives the per-token vocabulary scores whose argmax is RAR's
    text-form reconstruction.

    >>> rar = TokenReconstruction(hidden_size=8, embedding_size=8, vocab_size=10)
    >>> loss = rar(torch.randn(2, 5, 8), torch.randint(10, (2, 5)), torch.ones(2, 5), torch.randn(10, 8))
    """

    name = "token_reconstruction"

    @dataclass
    class Config:
        layer_norm_eps: float = 1e-12

        def __post_init__(self):
            positive("layer_norm_eps", self.layer_norm_eps)

    def __init__(self, config: Config | None = None, *, hidden_size: int, embedding_size: int, vocab_size: int):
        super().__init__(config)
        self.dense = nn.Linear(hidden_size, embedding_size)
        self.norm = nn.LayerNorm(embedding_size, eps=self.config.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def logits(self, token_states: torch.Tensor, word_embeddings: torch.Tensor) -> torch.Tensor:
        """(..., d) token states and W (vocab × e) -> (..., vocab) scores."""
        hidden = self.norm(F.gelu(self.dense(token_states)))
        return F.linear(hidden, word_embeddings, self.bias)

    def forward(
        self,
        token_states: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        word_embeddings: torch.Tensor,
    ) -> torch.Tensor:
        real = attention_mask.bool()
        scores = self.logits(token_states[real], word_embeddings)
        return F.cross_entropy(scores.float(), input_ids[real])


@hookimpl
def register_losses(register):
    register(TokenReconstruction)
