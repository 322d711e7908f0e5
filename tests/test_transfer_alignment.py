"""Transfer (SentEval logistic regression) and alignment / uniformity (Wang & Isola 2020)."""

import json
import math

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score

from advcl.data.dataset import TextDataset
from advcl.data.tasks import PAIR_CLASSIFICATION, SIMILARITY
from advcl.data.readers import DataError
from advcl.embedding import embed_texts
from advcl.errors import BadInput
from advcl.evaluation.alignment import alignment, alignment_uniformity, plot_alignment_uniformity, uniformity
from advcl.evaluation.transfer import (
    embedding_features, evaluate_transfer, load_transfer_task, logistic_accuracy, transfer_suite,
)
from advcl.modeling.encoder import EncoderClassifier
from tiny_models import tiny_bert, tiny_tokenizer

GOOD = ["a wonderful film", "great acting and a great story", "i loved every minute", "a moving , funny film",
        "brilliant and warm", "the best film of the year", "a joy to watch", "superb performances"]
BAD = ["a dull film", "boring and far too long", "i hated every minute", "a lifeless , tedious mess",
       "awful acting", "the worst film of the year", "a chore to sit through", "terrible performances"]


@pytest.fixture(scope="module")
def tiny():
    return EncoderClassifier(tiny_bert(), "mean"), tiny_tokenizer()


def blobs(n: int, seed: int, spread: float):
    """Two Gaussian clusters in 8 dimensions, centres 4 apart, ``n`` points each."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(0, spread, (n, 8)), rng.normal(0, spread, (n, 8)) + 4 / math.sqrt(8)])
    return x, np.array([0] * n + [1] * n)


def test_separable_classes_are_classified_perfectly():
    x, y = blobs(30, 0, 0.1)
    cv = logistic_accuracy(x, y)
    assert cv == {"accuracy": 100.0, "protocol": "10-fold cross-validation", "train": 60, "test": 0}
    test_x, test_y = blobs(10, 1, 0.1)
    assert logistic_accuracy(x, y, test_x, test_y) == {"accuracy": 100.0, "protocol": "train/test", "train": 60,
                                                       "test": 20}


def test_cross_validation_matches_scikit_learn_on_overlapping_classes():
    x, y = blobs(40, 2, 1.0)
    folds = StratifiedKFold(n_splits=10, shuffle=True, random_state=5)
    expected = 100 * cross_val_score(LogisticRegression(C=0.5, max_iter=1000), x, y, cv=folds).mean()
    assert logistic_accuracy(x, y, seed=5, c=0.5)["accuracy"] == pytest.approx(expected)
    assert 50 < expected < 100


def test_too_few_examples_for_the_folds_is_one_line():
    x, y = blobs(4, 0, 0.1)
    with pytest.raises(DataError, match="needs a class with at least 10 examples; the largest has 4"):
        logistic_accuracy(x, y)


def write_reviews(path, labels):
    rows = [{"text": text, "label": label} for text, label in zip(GOOD + BAD, labels)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def test_a_transfer_dataset_with_one_class_is_one_line(tmp_path):
    spec = write_reviews(tmp_path / "one.jsonl", ["pos"] * 16)
    with pytest.raises(DataError) as error:
        load_transfer_task(spec)
    assert str(error.value) == f"{spec}: a transfer task needs at least two classes, every training example is 'pos'"


def test_catalogue_tasks_use_the_given_splits_or_cross_validation():
    trec = load_transfer_task("trec", max_train=200)
    assert (len(trec.train), len(trec.test)) == (200, 500)
    assert load_transfer_task("cola").test is None  # train and validation only: cross-validation over train
    assert load_transfer_task("sst2:validation").test is None
    with pytest.raises(DataError, match="no class labels"):
        load_transfer_task("stsb:validation")


def test_user_file_end_to_end_and_pair_features(tiny, tmp_path):
    model, tokenizer = tiny
    task = load_transfer_task(write_reviews(tmp_path / "reviews.jsonl", ["pos"] * 8 + ["neg"] * 8))
    result = evaluate_transfer(model, tokenizer, task, 64, 8, "cpu", folds=4, protocol="fast")
    assert result["protocol"] == "4-fold cross-validation" and result["train"] == 16
    assert 0 <= result["accuracy"] <= 100
    suite = transfer_suite(model, tokenizer, [task], 64, 8, "cpu", folds=4, protocol="fast")
    assert suite["tasks"][task.name] == result and suite["average"] == result["accuracy"]
    assert suite["pooling"] == "mean"
    pairs = TextDataset("pairs", PAIR_CLASSIFICATION, GOOD, BAD, [0, 1] * 4)
    u, v = embed_texts(model, tokenizer, GOOD, 64, 8, "cpu"), embed_texts(model, tokenizer, BAD, 64, 8, "cpu")
    expected = torch.cat([(u - v).abs(), u * v], dim=1).numpy()
    assert np.allclose(embedding_features(model, tokenizer, pairs, 64, 8, "cpu"), expected, atol=1e-5)


def test_alignment_and_uniformity_match_a_double_loop():
    generator = torch.Generator().manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(12, 5, generator=generator), dim=1)
    y = torch.nn.functional.normalize(x + 0.3 * torch.randn(12, 5, generator=generator), dim=1)
    naive_alignment = sum(float(((x[i] - y[i]) ** 2).sum()) for i in range(12)) / 12
    kernel = [math.exp(-2 * float(((x[i] - x[j]) ** 2).sum())) for i in range(12) for j in range(i + 1, 12)]
    assert alignment(x, y) == pytest.approx(naive_alignment, rel=1e-6)
    assert uniformity(x) == pytest.approx(math.log(sum(kernel) / len(kernel)), rel=1e-6)


def test_model_alignment_uses_pairs_scored_at_least_4_and_distinct_sentences(tiny):
    model, tokenizer = tiny
    texts, pairs = GOOD[:6], BAD[:5] + [GOOD[0]]  # GOOD[0] twice: counted once in the data distribution
    dataset = TextDataset("toy", SIMILARITY, texts, pairs, [4.0, 3.9, 5.0, 0.0, 4.6, 2.0])
    result = alignment_uniformity(model, tokenizer, dataset, 64, 4, "cpu")
    assert (result["positive_pairs"], result["sentences"], result["pooling"]) == (3, 11, "mean")
    vectors = embed_texts(model, tokenizer, texts + pairs[:5], 64, 16, "cpu", normalize=True)
    assert result["uniformity"] == pytest.approx(uniformity(vectors), abs=1e-5)
    positives = [0, 2, 4]
    assert result["alignment"] == pytest.approx(alignment(vectors[positives], vectors[[6 + i for i in positives]]),
                                                abs=1e-5)
    with pytest.raises(DataError, match="no pair has a score of at least 4"):
        alignment_uniformity(model, tokenizer, TextDataset("low", SIMILARITY, texts, pairs, [1.0] * 6), 64, 4, "cpu")


def test_plot_writes_a_png(tmp_path):
    runs = {"MiniLM (untouched)": {"alignment": 0.21, "uniformity": -2.1},
            "SimCSE": {"alignment": 0.18, "uniformity": -2.3},
            "RobustSentEmbed": {"alignment": 0.15, "uniformity": -2.28}}
    path = tmp_path / "plane.png"
    assert plot_alignment_uniformity(runs, path) == [path, tmp_path / "plane.pdf"]  # and its vector twin
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plane.pdf", "plane.png"]
    assert (tmp_path / "plane.pdf").read_bytes()[:5] == b"%PDF-"
    with pytest.raises(BadInput, match="must end in .png"):
        plot_alignment_uniformity(runs, tmp_path / "plane.jpg")
