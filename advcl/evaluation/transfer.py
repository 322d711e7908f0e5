"""Transfer tasks, the SentEval protocol (Conneau & Kiela 2018) as SimCSE (Gao et al. 2021, §6.1) and
RobustSentEmbed (Rafiei Asl et al. 2024, §4.3) use it: the encoder is frozen, its sentence embeddings are the
features of a logistic-regression classifier, and the score is its accuracy × 100.

A dataset with a test split is trained on its train split and scored on its test split (the given splits);
one without (a catalogue dataset such as cola, a single catalogue split, or a user file) is scored by stratified
10-fold cross-validation, the mean of the fold accuracies. A pair task (mrpc, rte, qnli) uses SentEval's pair
features ``[|u − v|, u ⊙ v]`` of the two sentence embeddings u and v. The classifier is scikit-learn's
:class:`~sklearn.linear_model.LogisticRegression` at a fixed inverse regularisation ``C`` (SentEval tunes it on
held-out folds).
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
CLASSIFICATION_TASKS = ("classification", "pair-classification")


@dataclass
class TransferTask:
    """A labelled train set, and a test set or None (None: cross-validation over ``train``)."""

    name: str
    train: TextDataset
    test: TextDataset | None
    sample: dict | None = None  # advcl.evaluation.sampling.sample_info of the training examples


def load_transfer_task(spec: str, columns: Columns | None = None, max_train: int = 0, seed: int = 0) -> TransferTask:
    """``trec`` (a catalogue name: its train and test splits, or cross-validation over its train split when it
    has no test split), ``cola:validation`` (cross-validation over that split) or a user file with ``columns``
    (cross-validation over it). ``max_train`` > 0 keeps a seeded random subset of the training examples."""
    if is_file_spec(spec) or ":" in spec:
        train, test = load_data(spec, columns), None
    else:
        train = load_data(f"{spec}:train")
        splits = (meta_for(spec) or {}).get("splits") or {}
        test = load_data(f"{spec}:test", label_names=train.label_names) if "test" in splits else None
    for dataset in (train, test):
        if dataset is not None and (dataset.task not in CLASSIFICATION_TASKS or dataset.labels is None):
            raise DataError(f"{dataset.name} has no class labels: a transfer task needs a classification dataset")
    total = len(train)
    train = train.sample(max_train, seed)
    classes = Counter(train.labels)
    if len(classes) < 2:
        (only,) = classes
        name = train.label_names[only] if train.label_names else only
        raise DataError(f"{train.name}: a transfer task needs at least two classes, every training example is "
                        f"'{name}'")
    return TransferTask(spec, train, test, sample_info(len(train), total, seed))


def embedding_features(model, tokenizer, dataset: TextDataset, max_length: int, batch_size: int, device,
                       progress=None) -> np.ndarray:
    """Sentence embeddings (one text) or SentEval's pair features ``[|u − v|, u ⊙ v]`` (two texts)."""
    texts = dataset.texts + (dataset.pairs or [])
    embeddings = embed_sentences(model, tokenizer, texts, max_length, batch_size, device, progress=progress).numpy()
    if dataset.pairs is None:
        return embeddings
    u, v = embeddings[: len(dataset)], embeddings[len(dataset):]
    return np.concatenate([np.abs(u - v), u * v], axis=1)


def logistic_accuracy(train_x: np.ndarray, train_y, test_x: np.ndarray | None = None, test_y=None,
                      folds: int = FOLDS, seed: int = 0, c: float = 1.0) -> dict:
    """Accuracy × 100 of logistic regression: trained on train and scored on test when a test set is given,
    else the mean over stratified ``folds``-fold cross-validation of train (shuffled with ``seed``)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    train_y = np.asarray(train_y)
    classifier = LogisticRegression(C=c, max_iter=1000)
    if test_x is not None:
        accuracy = classifier.fit(train_x, train_y).score(test_x, np.asarray(test_y))
        return {"accuracy": 100 * accuracy, "protocol": "train/test", "train": len(train_y), "test": len(test_y)}
    largest = max(Counter(train_y.tolist()).values())
    if largest < folds:
        raise DataError(f"{folds}-fold cross-validation needs a class with at least {folds} examples; "
                        f"the largest has {largest}")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = [classifier.fit(train_x[fit], train_y[fit]).score(train_x[held], train_y[held])
              for fit, held in splitter.split(train_x, train_y)]
    return {"accuracy": 100 * float(np.mean(scores)), "protocol": f"{folds}-fold cross-validation",
            "train": len(train_y), "test": 0}


def evaluate_transfer(model, tokenizer, task: TransferTask, max_length: int, batch_size: int, device,
                      folds: int = FOLDS, seed: int = 0, c: float = 1.0, progress=None) -> dict:
    """One transfer task: ``{"accuracy" (× 100), "protocol", "train", "test"}``."""
    train_x = embedding_features(model, tokenizer, task.train, max_length, batch_size, device, progress)
    test_x = None if task.test is None else embedding_features(
        model, tokenizer, task.test, max_length, batch_size, device, progress)
    test_y = None if task.test is None else task.test.labels
    result = logistic_accuracy(train_x, task.train.labels, test_x, test_y, folds, seed, c)
    return result if task.sample is None else result | {"sample": task.sample}


def transfer_suite(model, tokenizer, tasks: Sequence[TransferTask], max_length: int, batch_size: int, device,
                   folds: int = FOLDS, seed: int = 0, c: float = 1.0, progress=None) -> dict:
    """``{"pooling", "tasks": {name: result}, "average"}`` over ``tasks`` (load them first with
    :func:`load_transfer_task`, so that bad data fails before any embedding is computed)."""
    results = {task.name: evaluate_transfer(model, tokenizer, task, max_length, batch_size, device, folds, seed, c,
                                            progress) for task in tasks}
    average = float(np.mean([result["accuracy"] for result in results.values()])) if results else None
    return {"pooling": model.pooling, "tasks": results, "average": average}
