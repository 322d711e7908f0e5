"""Metrics against hand computations and scikit-learn; pooling on a hand-made batch."""

import math

import pytest
import torch
from sklearn.metrics import f1_score, matthews_corrcoef

from advcl.evaluation.metrics import classification_metrics, confusion_matrix
from advcl.modeling.pooling import pool


def test_binary_metrics_by_hand():
    labels = torch.tensor([1, 1, 1, 0, 0, 0])
    preds = torch.tensor([1, 1, 0, 0, 0, 1])
    # TP=2 FN=1 TN=2 FP=1 -> accuracy 4/6, F1(pos)=F1(neg)=2/3, MCC=(2*2-1*1)/sqrt(3*3*3*3)=3/9
    m = classification_metrics(labels, preds, 2)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["macro_f1"] == pytest.approx(2 / 3)
    assert m["mcc"] == pytest.approx(1 / 3)
    assert m["examples"] == 6


def test_confusion_matrix_counts():
    cm = confusion_matrix(torch.tensor([0, 1, 2, 2]), torch.tensor([0, 2, 2, 1]), 3)
    assert cm.tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 1]]


@pytest.mark.parametrize("seed", range(5))
def test_multiclass_metrics_match_sklearn(seed):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 5, (200,), generator=g)
    preds = torch.where(torch.rand(200, generator=g) < 0.6, labels, torch.randint(0, 5, (200,), generator=g))
    m = classification_metrics(labels, preds, 6)  # class 5 never occurs
    assert m["macro_f1"] == pytest.approx(f1_score(labels, preds, average="macro"))
    assert m["mcc"] == pytest.approx(matthews_corrcoef(labels, preds))
    assert m["accuracy"] == pytest.approx((labels == preds).float().mean().item())


def test_mcc_is_zero_when_undefined():
    m = classification_metrics(torch.tensor([0, 0, 0]), torch.tensor([0, 0, 0]), 2)
    assert m["mcc"] == 0.0 and m["accuracy"] == 1.0


def test_pooling_on_a_hand_made_batch():
    states = torch.tensor(
        [
            [[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]],  # last position is padding
            [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]],
        ]
    )
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    assert pool(states, mask, "cls").tolist() == [[1.0, 2.0], [0.0, 1.0]]
    assert pool(states, mask, "mean").tolist() == [[2.0, 3.0], [2.0, 3.0]]
    with pytest.raises(ValueError):
        pool(states, mask, "max")
    assert not math.isnan(pool(states, torch.zeros_like(mask), "mean").sum().item())
