"""Is run B better than run A on the same evaluation set? The tests CAT reports (Pan et al. 2022, "GLUE
Results"): McNemar's test for accuracy, Fisher's randomisation test for F1 (MRPC) and MCC (CoLA).

- McNemar (1947): only the discordant examples count, ``b`` = A right and B wrong, ``c`` = A wrong and B right.
  Under H0 (equal accuracy) ``b ~ Binomial(b + c, ½)``. With ``b + c < 25`` the exact two-sided binomial p-value
  ``min(1, 2·Σ_{k ≤ min(b,c)} C(b+c, k)/2^(b+c))``; otherwise the χ² statistic with continuity correction
  (Edwards 1948) ``(|b − c| − 1)² / (b + c)`` on one degree of freedom.
- Approximate randomisation (Fisher 1935; Noreen 1989; Yeh 2000 for NLP metrics): under H0 the two systems'
  predictions of each example are exchangeable, so each trial swaps them with probability ½ per example and
  recomputes the metric difference; ``p = (1 + #{|Δ_trial| ≥ |Δ_observed|}) / (1 + trials)``, two-sided.
  Seeded, so a report is reproducible; with 10,000 trials the p-value's standard error is below 0.005.
"""

from __future__ import annotations

import math

import torch

from advcl.evaluation.metrics import scores_from_confusion

EXACT_BELOW = 25  # discordant pairs: fewer -> exact binomial test
DEFAULT_TRIALS = 10_000


def mcnemar(correct_a: torch.Tensor, correct_b: torch.Tensor) -> dict:
    """McNemar's test on two boolean vectors "example i was classified correctly" (same examples, same order)."""
    b = int((correct_a & ~correct_b).sum())
    c = int((~correct_a & correct_b).sum())
    n = b + c
    if n == 0:
        return {"b": 0, "c": 0, "method": "exact", "statistic": 0.0, "p_value": 1.0}
    if n < EXACT_BELOW:
        tail = sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2**n
        return {"b": b, "c": c, "method": "exact", "statistic": float(min(b, c)), "p_value": min(1.0, 2 * tail)}
    statistic = (abs(b - c) - 1) ** 2 / n
    return {"b": b, "c": c, "method": "chi2", "statistic": statistic, "p_value": math.erfc(math.sqrt(statistic / 2))}


def randomisation_test(
    labels: torch.Tensor,
    predictions_a: torch.Tensor,
    predictions_b: torch.Tensor,
    num_classes: int,
    metrics: tuple[str, ...] = ("macro_f1", "mcc"),
    trials: int = DEFAULT_TRIALS,
    seed: int = 0,
    chunk: int = 1000,
) -> dict[str, dict]:
    """Approximate randomisation test of each metric (accuracy, macro_f1, mcc) on the same shuffles:
    ``{metric: {"difference": B − A, "p_value": p}}``."""
    labels, predictions_a, predictions_b = labels.long(), predictions_a.long(), predictions_b.long()
    observed = _scores(labels, torch.stack([predictions_a, predictions_b]), num_classes)
    difference = {m: (observed[m][1] - observed[m][0]).item() for m in metrics}
    at_least_as_far = dict.fromkeys(metrics, 0)
    generator = torch.Generator().manual_seed(seed)
    for start in range(0, trials, chunk):
        swap = torch.rand(min(chunk, trials - start), len(labels), generator=generator) < 0.5
        shuffled = torch.stack([torch.where(swap, predictions_b, predictions_a), torch.where(swap, predictions_a, predictions_b)])
        scores = _scores(labels, shuffled, num_classes)
        for m in metrics:
            at_least_as_far[m] += int(((scores[m][1] - scores[m][0]).abs() >= abs(difference[m]) - 1e-12).sum())
    return {m: {"difference": difference[m], "p_value": (at_least_as_far[m] + 1) / (trials + 1)} for m in metrics}


def _scores(labels: torch.Tensor, predictions: torch.Tensor, num_classes: int) -> dict[str, torch.Tensor]:
    """The scores of every row of ``predictions`` (..., n) against the same ``labels`` (n,): one batched bincount."""
    rows = predictions.reshape(-1, predictions.shape[-1])
    offsets = torch.arange(len(rows)).unsqueeze(1) * num_classes * num_classes
    flat = (offsets + labels * num_classes + rows).flatten()
    cm = torch.bincount(flat, minlength=len(rows) * num_classes * num_classes).reshape(-1, num_classes, num_classes)
    return {name: value.reshape(predictions.shape[:-1]) for name, value in scores_from_confusion(cm).items()}
