"""CAT's perturbation of the word-embedding matrix W (Pan et al. 2022, eq. 5; ../shared/methods.md, "CAT").

After the clean forward, ``r = ε·sign(∇_W CE)`` (max-norm, the paper's best; eq. 5 prints ``−ε``, a typo). Only
rows of tokens that occur at non-padding positions of the batch move; every other row of ``r`` is exactly
zero. The adversarial forward looks the batch up in ``W + r``; W itself is never modified, so a token that
occurs twice gets the same perturbation both times.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from advcl.perturbers.norms import Norm, ascent_direction


def matrix_perturbation(
    grad_w: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor, eps: float, norm: Norm = "linf"
) -> torch.Tensor:
    """``r`` (vocab × d): ``ε·sign(∇_W)`` (or, with ``norm = "l2"``, ``ε·∇_W/‖∇_W‖`` over the present rows)."""
    present = torch.zeros(grad_w.shape[0], dtype=torch.long, device=grad_w.device)
    present[input_ids[attention_mask.bool()]] = 1
    return eps * ascent_direction(grad_w.detach().unsqueeze(0), present.unsqueeze(0), norm, "sentence")[0]


def perturbed_embeddings(input_ids: torch.Tensor, embedding: nn.Embedding, r: torch.Tensor) -> torch.Tensor:
    """``inputs_embeds`` looked up in ``W + r``: gradients still reach W, and W is left as it was."""
    return F.embedding(input_ids, embedding.weight + r, padding_idx=embedding.padding_idx)
