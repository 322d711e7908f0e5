"""Cross-entropy on classifier logits, with optional label smoothing (Szegedy et al. 2016)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from advcl.config.ranges import fraction
from advcl.hookspecs import hookimpl
from advcl.losses.base import Loss


class CrossEntropy(Loss):
    """``-mean_i log softmax(logits_i)[y_i]`` over a batch.

    Expects logits (batch, classes) and integer labels (batch,). With ``label_smoothing = s`` the target
    puts ``1 - s + s/C`` on the true class and ``s/C`` elsewhere.
    """

    name = "cross_entropy"

    @dataclass
    class Config:
        label_smoothing: float = 0.0

        def __post_init__(self):
            fraction("label_smoothing", self.label_smoothing)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), labels, label_smoothing=self.config.label_smoothing)


@hookimpl
def register_losses(register):
    register(CrossEntropy)
