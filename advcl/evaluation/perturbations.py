"""Embedding-space perturbations kept for analysis: what ``advcl perturb --space embedding`` writes.

The attack is :mod:`advcl.evaluation.robustness`'s, at one ε: a perturber with PGD's options (``pgd`` by default)
on the input embeddings ``E = W[input_ids]``, ascending the cross-entropy of the true label, seeded per batch;
the same data, settings and batch size give the same δ as ``advcl eval --robust``. Per example it keeps δ itself
(zero at padding), ‖δ‖ in the attack's norm taken over the whole example, and the clean and adversarial pooled
sentence representations and logits.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from advcl.data.batching import EncodedDataset
from advcl.evaluation.robustness import AttackSettings, attacked_batches


def perturbation_norms(delta: torch.Tensor, norm: str) -> torch.Tensor:
    """‖δ_i‖ of each example's (length, dim) block: l2 over all its entries, or the largest absolute entry (linf)."""
    flat = delta.flatten(1).float()
    return flat.abs().amax(1) if norm == "linf" else torch.linalg.vector_norm(flat, dim=1)


def embedding_perturbations(
    model, data: EncodedDataset, eps: float, settings: AttackSettings, batch_size: int, device, progress=None
) -> dict[str, torch.Tensor]:
    """δ and what it does, for every example of ``data`` in order, as CPU float32 tensors:

    ``delta`` (n, length, dim), padded with zeros to the longest example; ``attention_mask`` (n, length);
    ``delta_norm`` (n,); ``clean_sentence`` / ``adversarial_sentence`` (n, dim); ``clean_logits`` /
    ``adversarial_logits`` (n, classes).
    """
    width = max(len(ids) for ids in data.input_ids)
    parts: dict[str, list[torch.Tensor]] = {}
    rows: list[int] = []  # the batches come grouped by length: the row of each output
    for batch in attacked_batches(model, data, [settings.perturber(eps)], settings, batch_size, device, progress):
        rows += batch.indices
        ((delta, adversarial),) = batch.attacks
        pad = width - delta.shape[1]
        found = {
            "delta": F.pad(delta, (0, 0, 0, pad)),
            "attention_mask": F.pad(batch.attention_mask, (0, pad)),
            "clean_sentence": batch.clean.sentence,
            "adversarial_sentence": adversarial.sentence,
            "clean_logits": batch.clean.logits,
            "adversarial_logits": adversarial.logits,
        }
        for key, value in found.items():
            parts.setdefault(key, []).append(value.detach().cpu())
    out = {key: torch.cat(values)[torch.argsort(torch.tensor(rows))] for key, values in parts.items()}
    out = {key: value if key == "attention_mask" else value.float() for key, value in out.items()}
    out["delta_norm"] = perturbation_norms(out["delta"], settings.norm)
    return out
