"""McNemar's test and the approximate randomisation test against scipy and hand computation."""

import math

import pytest
import torch
from scipy.stats import binomtest, chi2

from advcl.evaluation.metrics import classification_metrics, scores_from_confusion
from advcl.evaluation.significance import mcnemar, randomisation_test


def correctness(table: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean vectors with the given counts of (A right, B right) pairs."""
    a, b = [], []
    for (right_a, right_b), count in table.items():
        a += [right_a] * count
        b += [right_b] * count
    return torch.tensor(a), torch.tensor(b)


def test_mcnemar_exact_on_a_toy_table():
    # 10 both right, 3 only A right, 9 only B right, 5 both wrong: 12 discordant -> exact binomial
    a, b = correctness({(True, True): 10, (True, False): 3, (False, True): 9, (False, False): 5})
    result = mcnemar(a, b)
    assert (result["b"], result["c"], result["method"]) == (3, 9, "exact")
    by_hand = 2 * sum(math.comb(12, k) for k in range(4)) / 2**12  # 2·P(X ≤ 3), X ~ Bin(12, ½)
    assert result["p_value"] == pytest.approx(by_hand) == pytest.approx(binomtest(3, 12, 0.5).pvalue)


def test_mcnemar_chi_square_with_continuity_correction():
    a, b = correctness({(True, True): 500, (True, False): 20, (False, True): 45, (False, False): 35})
    result = mcnemar(a, b)
    statistic = (abs(20 - 45) - 1) ** 2 / 65
    assert result["method"] == "chi2" and result["statistic"] == pytest.approx(statistic)
    assert result["p_value"] == pytest.approx(chi2.sf(statistic, df=1))


def test_mcnemar_without_discordant_examples_is_one():
    a, b = correctness({(True, True): 5, (False, False): 2})
    assert mcnemar(a, b)["p_value"] == 1.0


def labelled(n=400, seed=0):
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (n,), generator=generator)
    noise = torch.randint(0, 3, (n,), generator=generator)
    good = torch.where(torch.rand(n, generator=generator) < 0.9, labels, noise)
    poor = torch.where(torch.rand(n, generator=generator) < 0.4, labels, noise)
    return labels, good, poor


def test_randomisation_identical_predictions_give_p_one():
    labels, good, _ = labelled()
    result = randomisation_test(labels, good, good.clone(), 3, ("macro_f1", "mcc"), trials=2000)
    assert all(r["p_value"] == 1.0 and r["difference"] == 0.0 for r in result.values())


def test_randomisation_very_different_predictions_give_a_small_p_and_is_seeded():
    labels, good, poor = labelled()
    result = randomisation_test(labels, good, poor, 3, ("macro_f1", "mcc"), trials=2000, seed=3)
    assert all(r["p_value"] == pytest.approx(1 / 2001) for r in result.values())  # no shuffle is as far apart
    assert result["mcc"]["difference"] < -0.4
    assert randomisation_test(labels, good, poor, 3, trials=500, seed=3) == randomisation_test(labels, good, poor, 3, trials=500, seed=3)


def test_close_systems_are_not_significant():
    labels, good, _ = labelled()
    nearly = good.clone()
    nearly[:4] = (nearly[:4] + 1) % 3  # four changed predictions out of 400
    result = randomisation_test(labels, good, nearly, 3, ("accuracy", "mcc"), trials=2000)
    assert result["accuracy"]["p_value"] > 0.1 and result["mcc"]["p_value"] > 0.1


def test_batched_scores_equal_the_per_example_metrics():
    labels, good, poor = labelled(n=97, seed=5)
    counts = torch.stack([
        torch.bincount(labels * 3 + p, minlength=9).reshape(3, 3) for p in (good, poor)
    ])
    batched = scores_from_confusion(counts)
    for i, predictions in enumerate((good, poor)):
        single = classification_metrics(labels, predictions, 3)
        for name in ("accuracy", "macro_f1", "mcc"):
            assert batched[name][i].item() == pytest.approx(single[name], abs=1e-12)
