"""CARL's label-aware contrast against two memory banks (CARL §3.2, eq. 2-5; docs/methods.md, "Supervised / CARL").

With ``h(a, b) = exp(a·b/τ)`` on L2-normalised representations and m negatives ``n_j`` drawn among training
examples with a different label:

    L_D = −log h(R_adv, R) / (h(R_adv, R) + Σ_j h(R_adv, B_orig[n_j]))
          −log h(R, R_adv) / (h(R, R_adv) + Σ_j h(R, B_adv[n_j]))

averaged over the batch: the exact softmax over the positive and the m negatives (the paper approximates it
with NCE). The banks follow eq. 5, ``B[i] ← M·B[i] + (1−M)·R_i``, then each row is renormalised to unit length
(Wu et al. 2018, whose memory bank CARL adopts).

Under torchrun every process writes every process's rows of the step (gathered, no gradients), so all processes
hold the same banks: those one process would hold training on the whole global batch. Each process then draws
negatives for its own anchors from those banks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from advcl.config.ranges import at_least, fraction, positive
from advcl.runtime.distributed import gather_rows
from advcl.hookspecs import hookimpl
from advcl.losses.base import Loss


class MemoryBankContrast(Loss):
    """Pull each example's clean and adversarial representations together, away from other labels' bank rows.

    Built with the number of training examples and the representation size; ``update(indices, reps,
    reps_adv, labels)`` writes a batch into the banks (call it every step, after the loss), ``forward(reps,
    reps_adv, labels)`` is L_D for a batch of (batch, dim) clean and adversarial representations. Rows not yet
    written are never sampled, so switch the loss on once one pass has filled the banks (CARL's warm-up).
    Related: :class:`advcl.losses.infonce.InfoNCE` (in-batch negatives, no labels).
    """

    name = "memory_bank_contrast"

    @dataclass
    class Config:
        temperature: float = 0.07
        momentum: float = 0.5
        num_negatives: int = 16000

        def __post_init__(self):
            positive("temperature", self.temperature)
            fraction("momentum", self.momentum)
            at_least("num_negatives", self.num_negatives, 1)

    def __init__(self, config: Config | None = None, *, num_examples: int, dim: int):
        super().__init__(config)
        self.register_buffer("bank_orig", torch.zeros(num_examples, dim))
        self.register_buffer("bank_adv", torch.zeros(num_examples, dim))
        self.register_buffer("bank_labels", torch.full((num_examples,), -1, dtype=torch.long))

    # written alike on every process (``update`` gathers every process's rows): DDP need not broadcast them
    rank_consistent_buffers = ("bank_orig", "bank_adv", "bank_labels")

    @torch.no_grad()
    def update(self, indices: torch.Tensor, reps: torch.Tensor, reps_adv: torch.Tensor, labels: torch.Tensor) -> None:
        """``B[i] ← normalise(M·B[i] + (1−M)·R̂_i)`` in both banks (eq. 5); a row's first write stores ``R̂_i``.

        Under torchrun the rows of every process are gathered first and each process writes them all. An index
        that occurs twice in the gathered rows (a wrapped-around last batch) is written once, from its first
        occurrence, so that every process writes the same values.
        """
        reps = torch.cat([reps.detach().float(), reps_adv.detach().float()], dim=1)
        ids = torch.stack([indices.to(labels.device).long(), labels.long()], dim=1)
        reps, ids = gather_rows(reps, ids)
        indices, labels = ids[:, 0], ids[:, 1]
        keep = first_occurrences(indices)
        if len(keep) < len(indices):
            reps, indices, labels = reps[keep], indices[keep], labels[keep]
        reps, reps_adv = reps.chunk(2, dim=1)
        momentum = self.config.momentum
        for bank, new in ((self.bank_orig, reps), (self.bank_adv, reps_adv)):
            mixed = momentum * bank[indices] + (1 - momentum) * F.normalize(new.float(), dim=-1)
            bank[indices] = F.normalize(mixed, dim=-1)
        self.bank_labels[indices] = labels

    def sample_negatives(self, labels: torch.Tensor) -> torch.Tensor:
        """(batch, m) distinct bank rows per anchor, uniformly among written rows whose label differs.

        m is ``num_negatives``, or fewer when some anchor has fewer candidates.
        """
        allowed = (self.bank_labels >= 0) & (self.bank_labels != labels[:, None])
        m = min(self.config.num_negatives, int(allowed.sum(1).min()))
        if m == 0:
            raise ValueError("memory bank: an anchor has no stored example with another label; fill the banks first")
        keys = torch.rand(allowed.shape, device=allowed.device).masked_fill(~allowed, -1.0)
        return keys.topk(m, dim=1).indices

    def forward(
        self, reps: torch.Tensor, reps_adv: torch.Tensor, labels: torch.Tensor, negatives: torch.Tensor | None = None
    ) -> torch.Tensor:
        negatives = self.sample_negatives(labels) if negatives is None else negatives
        clean = F.normalize(reps.float(), dim=-1)
        adv = F.normalize(reps_adv.float(), dim=-1)
        return self._softmax_loss(adv, clean, self.bank_orig, negatives) + self._softmax_loss(
            clean, adv, self.bank_adv, negatives
        )

    def _softmax_loss(self, anchor, positive, bank, negatives) -> torch.Tensor:
        """``−mean_i log h(a_i, p_i) / (h(a_i, p_i) + Σ_j h(a_i, bank[n_ij]))``, in float32 (autocast off: under
        it the product would run in bf16/fp16, on a half-precision copy of the whole bank)."""
        positive_score = (anchor * positive).sum(-1, keepdim=True)
        with torch.autocast(anchor.device.type, enabled=False):
            negative_scores = (anchor @ bank.T).gather(1, negatives)
        logits = torch.cat([positive_score, negative_scores], dim=1) / self.config.temperature
        return F.cross_entropy(logits, torch.zeros(len(anchor), dtype=torch.long, device=logits.device))


def first_occurrences(indices: torch.Tensor) -> torch.Tensor:
    """Positions of the first occurrence of each distinct value of ``indices``, in increasing order."""
    unique, inverse = torch.unique(indices, return_inverse=True)
    positions = torch.arange(len(indices), device=indices.device)
    first = torch.full((len(unique),), len(indices), dtype=positions.dtype, device=indices.device)
    return first.scatter_reduce(0, inverse, positions, reduce="amin").sort().values


@hookimpl
def register_losses(register):
    register(MemoryBankContrast)
