"""Sentence representations from token states: ``cls`` (first token) or ``mean`` (mask-aware)."""

import torch

POOLINGS = ("cls", "mean")


def pool(token_states: torch.Tensor, attention_mask: torch.Tensor, how: str) -> torch.Tensor:
    """(batch, length, dim) states and (batch, length) 0/1 mask -> (batch, dim)."""
    if how == "cls":
        return token_states[:, 0]
    if how == "mean":
        mask = attention_mask.unsqueeze(-1).to(token_states.dtype)
        return (token_states * mask).sum(1) / mask.sum(1).clamp(min=1.0)
    raise ValueError(f"unknown pooling '{how}' (use {', '.join(POOLINGS)})")
