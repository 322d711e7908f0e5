"""Issue 17, item 9: transfer tasks under the SentEval protocol (C tuned as SentEval's scikit-learn classifiers
tune it), the default, with the fixed-C fast protocol kept as an option. The expectations below redo SentEval's
selection loops by hand with scikit-learn."""

import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from advcl.errors import BadInput
from advcl.evaluation.transfer import KFOLD_C, SPLIT_C, logistic_accuracy, senteval_accuracy


def noisy_classes(n, seed, dim=6):
    """Two overlapping Gaussian classes: the accuracy depends on the regularisation."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.normal(size=(n, dim)) + 0.6 * y[:, None] * np.linspace(1, 0, dim)
    return x, y


def fit_score(c, x, y, tx, ty):
    return LogisticRegression(C=c, max_iter=1000).fit(x, y).score(tx, ty)


def first_best(grid, fractions):
    scores = [round(100 * f, 2) for f in fractions]
    return grid[scores.index(max(scores))], max(scores)


def cv(c, x, y, folds, seed):
    splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(x, y)
    return np.mean([fit_score(c, x[a], y[a], x[b], y[b]) for a, b in splits])


def test_grids_are_senteval_s():
    assert SPLIT_C == (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
    assert KFOLD_C == (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


def test_train_and_test_tunes_c_by_cross_validation_on_train():
    x, y = noisy_classes(80, 0)
    tx, ty = noisy_classes(60, 1)
    c, dev = first_best(KFOLD_C, [cv(c, x, y, 5, 1111) for c in KFOLD_C])
    result = senteval_accuracy(x, y, tx, ty, folds=5)
    assert (result["c"], result["dev_accuracy"]) == (c, dev)
    assert result["accuracy"] == pytest.approx(100 * fit_score(c, x, y, tx, ty))
    assert (result["train"], result["test"]) == (80, 60) and "5-fold" in result["protocol"]


def test_a_validation_split_tunes_c():
    x, y = noisy_classes(80, 2)
    vx, vy = noisy_classes(40, 3)
    tx, ty = noisy_classes(60, 4)
    c, dev = first_best(SPLIT_C, [fit_score(c, x, y, vx, vy) for c in SPLIT_C])
    result = senteval_accuracy(x, y, tx, ty, vx, vy)
    assert (result["c"], result["dev_accuracy"], result["validation"]) == (c, dev, 40)
    assert result["accuracy"] == pytest.approx(100 * fit_score(c, x, y, tx, ty))


def test_train_only_tunes_c_inside_each_outer_fold():
    x, y = noisy_classes(60, 5)
    chosen, scores = [], []
    for fit, held in StratifiedKFold(n_splits=4, shuffle=True, random_state=1111).split(x, y):
        c, _ = first_best(SPLIT_C, [cv(c, x[fit], y[fit], 4, 1111) for c in SPLIT_C])
        chosen.append(c)
        scores.append(fit_score(c, x[fit], y[fit], x[held], y[held]))
    result = senteval_accuracy(x, y, folds=4)
    assert result["c"] == chosen and len(chosen) == 4
    assert result["accuracy"] == pytest.approx(100 * np.mean(scores))
    # the fast protocol is one fit per fold at C = 1 on the folds of its own seed
    assert logistic_accuracy(x, y, folds=4, seed=0)["accuracy"] == pytest.approx(100 * cv(1.0, x, y, 4, 0))


def invoke(*args):
    from typer.testing import CliRunner

    from advcl.cli import app

    return CliRunner().invoke(app, list(args))


def test_eval_suite_transfer_defaults_to_senteval_and_offers_fast(tiny_model_dir):
    common = ["eval", "--model", str(tiny_model_dir), "--suite", "transfer", "--tasks", "trec,sst2",
              "--max-examples", "120", "--json"]
    done = invoke(*common)
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert result["protocol"] == "senteval"
    trec, sst2 = result["tasks"]["trec"], result["tasks"]["sst2"]
    assert trec["c"] in KFOLD_C and "cross-validation on train" in trec["protocol"] and trec["test"] == 500
    assert sst2["c"] in SPLIT_C and sst2["validation"] == 872 and sst2["test"] == 1821
    fast = json.loads(invoke(*common, "--protocol", "fast").stdout)
    assert fast["protocol"] == "fast" and fast["tasks"]["trec"]["protocol"] == "train/test"
    assert "c" not in fast["tasks"]["trec"]
    bad = invoke(*common, "--protocol", "quick")  # in process: the one-line error is the exception advcl.cli.main prints
    assert isinstance(bad.exception, BadInput) and bad.exception.exit_code == 2
    assert str(bad.exception) == "--protocol must be one of senteval, fast, got 'quick'"
