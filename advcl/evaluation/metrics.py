"""Accuracy, macro-F1 and Matthews correlation from a confusion matrix."""

from __future__ import annotations

import math

import torch


def confusion_matrix(labels: torch.Tensor, predictions: torch.Tensor, num_classes: int) -> torch.Tensor:
    """C[i, j] = number of examples of true class i predicted as j."""
    flat = labels.long() * num_classes + predictions.long()
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def classification_metrics(labels: torch.Tensor, predictions: torch.Tensor, num_classes: int) -> dict[str, float]:
    """accuracy; macro-F1 over the classes that occur in labels or predictions; multi-class MCC
    (Gorodkin 2004: ``(c·s − Σ p_k t_k) / sqrt((s² − Σ p_k²)(s² − Σ t_k²))``, 0 when undefined)."""
    cm = confusion_matrix(labels, predictions, num_classes).double()
    total = cm.sum().item()
    correct = cm.trace().item()
    true_counts, pred_counts = cm.sum(1), cm.sum(0)
    tp = cm.diagonal()
    present = (true_counts + pred_counts) > 0
    f1 = torch.where(present, 2 * tp / (true_counts + pred_counts).clamp(min=1), torch.zeros_like(tp))
    macro_f1 = (f1[present].mean().item()) if present.any() else 0.0
    numerator = correct * total - (pred_counts * true_counts).sum().item()
    denominator = math.sqrt((total**2 - (pred_counts**2).sum().item()) * (total**2 - (true_counts**2).sum().item()))
    return {
        "accuracy": correct / total if total else 0.0,
        "macro_f1": macro_f1,
        "mcc": numerator / denominator if denominator else 0.0,
        "examples": int(total),
    }
