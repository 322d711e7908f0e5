"""CAT's perturbation of the word-embedding matrix W (Pan et al. 2022, eq. 5-6; docs/methods.md, "Supervised / CAT").

After the clean forward, ``r = ε·sign(∇_W CE)`` (max-norm, the paper's best; eq. 5 prints ``−ε``, a typo), or
``r = ε·∇_W/‖∇_W‖₂`` over the whole matrix (the paper's l2 variant, eq. 6). The adversarial forward looks the
batch up in ``W + r``; W itself is never modified.

``∇_W CE`` is zero on every row whose token does not occur at a non-padding position of the batch, so ``r`` is
zero there and ``(W + r)[ids] = W[ids] + r[ids]``: only the rows of present tokens are ever formed. Row ``v`` of
``∇_W`` is the sum of ``∇_E`` over the positions holding token ``v`` (what the embedding's own backward computes),
so it comes from the gradient w.r.t. the lookups ``E = W[ids]`` that the clean backward pass already yields,
and a token that occurs twice gets one perturbation.
"""

from __future__ import annotations

import torch

from advcl.perturbers.norms import Norm, ascent_direction


def matrix_gradient(
    grad_embeds: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``∇_W L`` on the rows of the tokens at real positions, from ``∇_E L`` (batch, length, dim).

    Returns ``(rows, grad_rows, position_row)``: the sorted token ids present, their rows of ``∇_W L``, and for
    each real position (in ``attention_mask`` order) the index of its token in ``rows``.
    """
    real = attention_mask.bool()
    rows, position_row = torch.unique(input_ids[real], return_inverse=True)
    grad_rows = grad_embeds.new_zeros(len(rows), grad_embeds.shape[-1]).index_add_(0, position_row, grad_embeds[real])
    return rows, grad_rows, position_row


def matrix_perturbation(
    grad_embeds: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor, eps: float, norm: Norm = "linf"
) -> torch.Tensor:
    """``r[input_ids]`` at real positions (zero at padding), shaped like ``grad_embeds``: add it to ``W[input_ids]``."""
    _, grad_rows, position_row = matrix_gradient(grad_embeds.detach(), input_ids, attention_mask)
    whole_matrix = torch.ones(1, len(grad_rows), dtype=torch.long, device=grad_rows.device)
    r = eps * ascent_direction(grad_rows.unsqueeze(0), whole_matrix, norm, "sentence")[0]
    delta = torch.zeros_like(grad_embeds)
    delta[attention_mask.bool()] = r[position_row]
    return delta
