"""Accuracy, macro-F1 and Matthews correlation from a confusion matrix."""

from __future__ import annotations

import torch


def confusion_matrix(labels: torch.Tensor, predictions: torch.Tensor, num_classes: int) -> torch.Tensor:
    """C[i, j] = number of examples of true class i predicted as j."""
    flat = labels.long() * num_classes + predictions.long()
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def classification_metrics(labels: torch.Tensor, predictions: torch.Tensor, num_classes: int) -> dict[str, float]:
    """accuracy; macro-F1 over the classes that occur in labels or predictions; multi-class MCC
    (Gorodkin 2004: ``(c·s − Σ p_k t_k) / sqrt((s² − Σ p_k²)(s² − Σ t_k²))``, 0 when undefined)."""
    cm = confusion_matrix(labels, predictions, num_classes)
    scores = scores_from_confusion(cm)
    return {name: scores[name].item() for name in ("accuracy", "macro_f1", "mcc")} | {"examples": int(cm.sum())}


def scores_from_confusion(cm: torch.Tensor) -> dict[str, torch.Tensor]:
    """accuracy, macro_f1 and mcc (as :func:`classification_metrics` defines them) of confusion matrices
    ``(..., C, C)``, in float64, one value per leading index (a randomisation test scores thousands at once)."""
    cm = cm.double()
    total = cm.sum((-2, -1))
    tp = cm.diagonal(dim1=-2, dim2=-1)
    correct = tp.sum(-1)
    true_counts, pred_counts = cm.sum(-1), cm.sum(-2)
    present = (true_counts + pred_counts) > 0
    f1 = torch.where(present, 2 * tp / (true_counts + pred_counts).clamp(min=1), torch.zeros_like(tp))
    macro_f1 = f1.sum(-1) / present.sum(-1).clamp(min=1)
    numerator = correct * total - (pred_counts * true_counts).sum(-1)
    denominator = ((total**2 - (pred_counts**2).sum(-1)) * (total**2 - (true_counts**2).sum(-1))).sqrt()
    return {
        "accuracy": torch.where(total > 0, correct / total.clamp(min=1), torch.zeros_like(total)),
        "macro_f1": macro_f1,
        "mcc": torch.where(denominator > 0, numerator / denominator.clamp(min=1e-300), torch.zeros_like(total)),
    }
