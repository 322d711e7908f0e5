"""Transfer tasks, the SentEval protocol (Conneau & Kiela 2018) as SimCSE (Gao et al. 2021, §6.1) and
RobustSentEmbed (Rafiei Asl et al. 2024, §4.3) use it: the encoder is frozen, its sentence embeddings are the
features of a logistic-regression classifier, and the score is its accuracy × 100.

A dataset with a test split is trained on its train split and scored on its test split (the given splits);
one without (a catalogue dataset such as cola, a single catalogue split, or a user file) is scored by stratified
10-fold cross-validation, the mean of the fold accuracies. A pair task (mrpc, rte, qnli) uses SentEval's pair
features ``[|u − v|, u ⊙ v]`` of the two sentence embeddings u and v. The classifier is scikit-learn's
:class:`~sklearn.linear_model.LogisticRegression`.

Its inverse regularisation ``C`` is chosen as SentEval chooses it with its scikit-learn classifier
(``senteval/tools/validation.py``), the default protocol (``"senteval"``), so that the numbers sit beside
SimCSE's and SentEval's tables:

- train, validation and test splits (sst2): C ∈ {2⁻², …, 2³} with the best validation accuracy, then trained on
  train and scored on test (SentEval's SplitClassifier);
- train and test (trec, mrpc): C ∈ {2⁻¹, …, 2⁵} with the best mean accuracy over a stratified k-fold split of
  train, then trained on all of train and scored on test (KFoldClassifier);
- train only: in each of the k outer folds, C ∈ {2⁻², …, 2³} chosen by an inner k-fold split of the outer
  training part, and the score is the mean outer-fold accuracy (InnerKFoldClassifier).

k = 10 and the folds are shuffled with seed 1111, as in SimCSE's evaluation; candidate scores are rounded to
0.01 % before the first best is taken, as SentEval does. ``protocol = "fast"`` keeps one fixed ``C`` (1 by
default) and no tuning: one fit per fold, for quick comparisons, not for published tables.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from advcl.data.catalogue import is_file_spec, load_data, meta_for
from advcl.data.dataset import Columns, TextDataset
from advcl.data.readers import DataError
from advcl.evaluation.sampling import sample_info
from advcl.evaluation.sts import embed_sentences

FOLDS = 10
PROTOCOLS = ("senteval", "fast")
SENTEVAL_SEED = 1111  # SentEval's default seed, which shuffles its folds
# SentEval's grids of C for its scikit-learn logistic regression
SPLIT_C = tuple(2.0**t for t in range(-2, 4))  # validation split, and the inner folds of train-only tasks
KFOLD_C = tuple(2.0**t for t in range(-1, 6))  # cross-validation on train, for tasks with a test split


@dataclass
class TransferTask:
    """A labelled train set, and a test set or None (None: cross-validation over ``train``); a validation set
    where the dataset has one beside its test split (the SentEval protocol tunes C on it)."""

    name: str
    train: TextDataset
    test: TextDataset | None
    sample: dict | None = None  # advcl.evaluation.sampling.sample_info of the training examples
    validation: TextDataset | None = None


def load_transfer_task(spec: str, columns: Columns | None = None, max_train: int = 0, seed: int = 0) -> TransferTask:
    """``trec`` (a catalogue name: its train and test splits, or cross-validation over its train split when it
    has no test split), ``cola:validation`` (cross-validation over that split) or a user file with ``columns``
    (cross-validation over it). ``max_train`` > 0 keeps a seeded random subset of the training examples."""
    if is_file_spec(spec) or ":" in spec:
        train, test, validation = load_data(spec, columns), None, None
    else:
        train = load_data(f"{spec}:train")
        splits = (meta_for(spec) or {}).get("splits") or {}
        test = load_data(f"{spec}:test", label_names=train.label_names) if "test" in splits else None
        validation = None
        if test is not None and "validation" in splits:
            validation = load_data(f"{spec}:validation", label_names=train.label_names)
    for dataset in (train, test, validation):
        if dataset is not None and not dataset.has_class_labels:
            raise DataError(f"{dataset.name} has no class labels: a transfer task needs a classification dataset")
    total = len(train)
    train = train.sample(max_train, seed)
    classes = Counter(train.labels)
    if len(classes) < 2:
        (only,) = classes
        name = train.label_names[only] if train.label_names else only
        raise DataError(f"{train.name}: a transfer task needs at least two classes, every training example is "
                        f"'{name}'")
    return TransferTask(spec, train, test, sample_info(len(train), total, seed), validation)


def embedding_features(model, tokenizer, dataset: TextDataset, max_length: int, batch_size: int, device,
                       progress=None) -> np.ndarray:
    """Sentence embeddings (one text) or SentEval's pair features ``[|u − v|, u ⊙ v]`` (two texts)."""
    texts = dataset.texts + (dataset.pairs or [])
    embeddings = embed_sentences(model, tokenizer, texts, max_length, batch_size, device, progress=progress).numpy()
    if dataset.pairs is None:
        return embeddings
    u, v = embeddings[: len(dataset)], embeddings[len(dataset):]
    return np.concatenate([np.abs(u - v), u * v], axis=1)


def _classifier(c: float):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=1000)


def _folds(x: np.ndarray, y: np.ndarray, folds: int, seed: int) -> list:
    """Stratified, shuffled ``folds``-fold (fit, held-out) index pairs of ``x``."""
    from sklearn.model_selection import StratifiedKFold

    largest = max(Counter(y.tolist()).values())
    if largest < folds:
        raise DataError(f"{folds}-fold cross-validation needs a class with at least {folds} examples; "
                        f"the largest has {largest}")
    return list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(x, y))


def _accuracy(c: float, fit_x, fit_y, held_x, held_y) -> float:
    return _classifier(c).fit(fit_x, fit_y).score(held_x, held_y)


def _cv_accuracy(c: float, x: np.ndarray, y: np.ndarray, splits: list) -> float:
    return float(np.mean([_accuracy(c, x[fit], y[fit], x[held], y[held]) for fit, held in splits]))


def _best_c(grid: Sequence[float], score) -> tuple[float, float]:
    """The first C of ``grid`` with the best ``score(C)`` (a fraction), compared as SentEval compares them:
    × 100, rounded to two decimals. Returns (C, that rounded score)."""
    scores = [round(100 * score(c), 2) for c in grid]
    best = int(np.argmax(scores))
    return grid[best], scores[best]


def logistic_accuracy(train_x: np.ndarray, train_y, test_x: np.ndarray | None = None, test_y=None,
                      folds: int = FOLDS, seed: int = 0, c: float = 1.0) -> dict:
    """The fast protocol: accuracy × 100 of logistic regression at a fixed ``c``, trained on train and scored on
    test when a test set is given, else the mean over stratified ``folds``-fold cross-validation of train
    (shuffled with ``seed``)."""
    train_y = np.asarray(train_y)
    if test_x is not None:
        accuracy = _accuracy(c, train_x, train_y, test_x, np.asarray(test_y))
        return {"accuracy": 100 * accuracy, "protocol": "train/test", "train": len(train_y), "test": len(test_y)}
    accuracy = _cv_accuracy(c, train_x, train_y, _folds(train_x, train_y, folds, seed))
    return {"accuracy": 100 * accuracy, "protocol": f"{folds}-fold cross-validation", "train": len(train_y),
            "test": 0}


def senteval_accuracy(train_x: np.ndarray, train_y, test_x: np.ndarray | None = None, test_y=None,
                      valid_x: np.ndarray | None = None, valid_y=None, folds: int = FOLDS,
                      seed: int = SENTEVAL_SEED) -> dict:
    """The SentEval protocol (module docstring): C tuned on the validation split, by ``folds``-fold
    cross-validation of train, or by inner cross-validation within each outer fold. Accuracy × 100 on test
    (or the mean over the outer folds), the C chosen (``"c"``: one per outer fold for a train-only task) and
    the tuning accuracy SentEval calls dev accuracy."""
    train_y = np.asarray(train_y)
    sizes = {"train": len(train_y), "test": 0 if test_y is None else len(test_y)}
    if test_x is not None and valid_x is not None:
        valid_y = np.asarray(valid_y)
        c, dev = _best_c(SPLIT_C, lambda c: _accuracy(c, train_x, train_y, valid_x, valid_y))
        accuracy = _accuracy(c, train_x, train_y, test_x, np.asarray(test_y))
        return {"accuracy": 100 * accuracy, "protocol": "senteval: C on the validation split, then train/test",
                "c": c, "dev_accuracy": dev, **sizes, "validation": len(valid_y)}
    if test_x is not None:
        splits = _folds(train_x, train_y, folds, seed)
        c, dev = _best_c(KFOLD_C, lambda c: _cv_accuracy(c, train_x, train_y, splits))
        accuracy = _accuracy(c, train_x, train_y, test_x, np.asarray(test_y))
        return {"accuracy": 100 * accuracy, "protocol": f"senteval: C by {folds}-fold cross-validation on train, "
                "then train/test", "c": c, "dev_accuracy": dev, **sizes}
    chosen, devs, scores = [], [], []
    for fit, held in _folds(train_x, train_y, folds, seed):
        x, y = train_x[fit], train_y[fit]
        inner = _folds(x, y, folds, seed)
        c, dev = _best_c(SPLIT_C, lambda c: _cv_accuracy(c, x, y, inner))
        chosen.append(c)
        devs.append(dev)
        scores.append(_accuracy(c, x, y, train_x[held], train_y[held]))
    return {"accuracy": 100 * float(np.mean(scores)), "protocol": f"senteval: {folds}-fold cross-validation, C by "
            f"an inner {folds}-fold cross-validation", "c": chosen, "dev_accuracy": float(np.mean(devs)), **sizes}


def evaluate_transfer(model, tokenizer, task: TransferTask, max_length: int, batch_size: int, device,
                      folds: int = FOLDS, seed: int | None = None, c: float = 1.0, progress=None,
                      protocol: str = "senteval") -> dict:
    """One transfer task: ``{"accuracy" (× 100), "protocol", "train", "test", ...}`` under ``protocol``
    (:data:`PROTOCOLS`; ``c`` is the fast protocol's fixed C). ``seed`` shuffles the folds (default: 1111 for
    SentEval's, 0 for the fast one)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")

    def features(dataset):
        return None if dataset is None else embedding_features(model, tokenizer, dataset, max_length, batch_size,
                                                                device, progress)

    train_x, test_x = features(task.train), features(task.test)
    test_y = None if task.test is None else task.test.labels
    if protocol == "fast":
        result = logistic_accuracy(train_x, task.train.labels, test_x, test_y, folds, seed or 0, c)
    else:
        valid = task.validation if task.test is not None else None
        result = senteval_accuracy(train_x, task.train.labels, test_x, test_y, features(valid),
                                   None if valid is None else valid.labels, folds,
                                   SENTEVAL_SEED if seed is None else seed)
    return result if task.sample is None else result | {"sample": task.sample}


def transfer_suite(model, tokenizer, tasks: Sequence[TransferTask], max_length: int, batch_size: int, device,
                   folds: int = FOLDS, seed: int | None = None, c: float = 1.0, progress=None,
                   protocol: str = "senteval") -> dict:
    """``{"pooling", "protocol", "tasks": {name: result}, "average"}`` over ``tasks`` (load them first with
    :func:`load_transfer_task`, so that bad data fails before any embedding is computed)."""
    results = {task.name: evaluate_transfer(model, tokenizer, task, max_length, batch_size, device, folds, seed, c,
                                            progress, protocol) for task in tasks}
    average = float(np.mean([result["accuracy"] for result in results.values()])) if results else None
    return {"pooling": model.pooling, "protocol": protocol, "tasks": results, "average": average}
