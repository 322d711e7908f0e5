"""The kinds of dataset advcl reads, one object each: where a row's fields are, what its label column holds, and the
metrics a validation split of it is scored by.

A dataset's meta.json names its task (``"task": "sts"``); :func:`task_named` turns that name into the object once,
when the data is read, and everything downstream asks the object (``dataset.task.scored``) instead of comparing
names. The attack layer maps each labelled task to its attack goal in one place (:mod:`advcl.attacks.goals`).
"""

from __future__ import annotations

from dataclasses import dataclass

from advcl.data.readers import DataError


@dataclass(frozen=True)
class Columns:
    """Where each field lives in the source rows ("" = absent).

    ``adv_text`` (and ``adv_text_pair`` for pair tasks) hold the adversarial twin of each row's text, as
    ``advcl perturb`` writes them; they are read only for objectives that train on real adversarial text, with
    ``adv_status``, the attack's outcome for the row (:mod:`advcl.data.adversarial_rows`; "" = not recorded).
    """

    text: str = "text"
    text_pair: str = ""
    label: str = "label"
    adv_text: str = ""
    adv_text_pair: str = ""
    adv_status: str = ""


@dataclass(frozen=True)
class DataTask:
    """One kind of dataset.

    ``name``: the task as meta.json spells it. ``columns``: its fields in the catalogue's JSONL layout. ``labels``:
    what the label column holds, ``"classes"`` (class indices or names), ``"scores"`` (similarity scores, checked
    against the declared range) or ``""`` (no label column). ``metrics``: the ``train.select_metric`` values a
    validation split of this task gives (:mod:`advcl.engine.validation`).
    """

    name: str
    columns: Columns
    labels: str
    metrics: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.name

    @property
    def has_classes(self) -> bool:
        return self.labels == "classes"

    @property
    def scored(self) -> bool:
        """Whether the labels are similarity scores (an STS split) rather than classes."""
        return self.labels == "scores"


CLASSIFICATION_METRICS = ("accuracy", "macro_f1", "mcc")

CLASSIFICATION = DataTask("classification", Columns("text", "", "label"), "classes", CLASSIFICATION_METRICS)
PAIR_CLASSIFICATION = DataTask("pair-classification", Columns("text", "text_pair", "label"), "classes",
                               CLASSIFICATION_METRICS)
SIMILARITY = DataTask("sts", Columns("sentence1", "sentence2", "score"), "scores", ("spearman",))
UNLABELED = DataTask("unlabeled", Columns("text", "", ""), "")

TASKS = {task.name: task for task in (CLASSIFICATION, PAIR_CLASSIFICATION, SIMILARITY, UNLABELED)}


def task_named(name: str, dataset: str) -> DataTask:
    """The task meta.json names for ``dataset``; an unknown name is a one-line :class:`DataError`."""
    if name not in TASKS:
        raise DataError(f"dataset '{dataset}' has unknown task '{name}'")
    return TASKS[name]


def task_of_columns(columns: Columns) -> DataTask:
    """The task of a user file (or hub table) read with ``columns``: pairs with labels, texts with labels, or texts."""
    if columns.text_pair:
        return PAIR_CLASSIFICATION
    return CLASSIFICATION if columns.label else UNLABELED
