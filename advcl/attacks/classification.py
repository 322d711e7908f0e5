"""The label-flip attack: TextAttack's untargeted classification goal on a classifier's prediction, the goal of
every classification and pair-classification split (:mod:`advcl.attacks.goals` assembles these parts).

The victim is the run's classifier (:class:`advcl.attacks.victim.Victim`); the ground truth is the gold class
index, read with the model's label names so that class i means the same to the data and to the model. A pair's
two texts go to TextAttack as premise and hypothesis. A result row carries the gold and predicted labels, and the
summary is TextAttack's (:func:`advcl.attacks.runner.summarise`).
"""

from __future__ import annotations

from collections import OrderedDict

from advcl.attacks.tasks import STATUS, Target
from advcl.data.dataset import TextDataset
from advcl.errors import BadInput

PAIR_COLUMNS = ("premise", "hypothesis")  # TextAttack's column names for two-text inputs


def load(request) -> Target:
    """The classifier (its head required) and a seeded sample of labelled data in the model's label order."""
    from advcl.data.catalogue import load_data
    from advcl.runs import load_model

    if request.sts_margin is not None:
        raise BadInput(f"--sts-margin is for AdvSTS, on an STS split (like stsb:test); {request.data} is not one")
    loaded = load_model(request.model, request.checkpoint, require_head=True)
    dataset = load_data(request.data, label_names=loaded.label_names)
    if not dataset.has_class_labels:
        raise BadInput(f"{request.data} has no class labels or similarity scores: an attack needs the true label "
                       "(or gold score) of each example")
    if len(dataset.label_names) > len(loaded.label_names):
        raise BadInput(f"{request.data} has {len(dataset.label_names)} classes but the model predicts "
                       f"{len(loaded.label_names)}")
    return Target(loaded, dataset.sample(request.num_examples, request.seed), {})


def example_input(dataset: TextDataset, i: int):
    """What TextAttack attacks: the text, or an OrderedDict of the two texts of a pair."""
    if dataset.pairs is None:
        return dataset.texts[i]
    return OrderedDict(zip(PAIR_COLUMNS, (dataset.texts[i], dataset.pairs[i])))


def result_row(position: int, label: int, result, seconds: float) -> dict:
    """One JSON line: texts, labels (gold, predicted before and after), status, queries, words perturbed."""
    original = result.original_result.attacked_text
    perturbed = result.perturbed_result.attacked_text
    status = STATUS[type(result).__name__]
    row = {"index": position, "status": status, "label": int(label),
           "original_output": int(result.original_result.output),
           "perturbed_output": int(result.perturbed_result.output),
           "queries": 0 if status == "skipped" else int(result.perturbed_result.num_queries),
           "words": len(original.words),
           "words_perturbed": 0 if status == "skipped" else len(original.all_words_diff(perturbed)),
           "seconds": round(seconds, 3)}
    before, after = original.tokenizer_input, perturbed.tokenizer_input  # a text, or a tuple for pairs
    if isinstance(before, str):
        row["original_text"], row["perturbed_text"] = before, after
    else:
        row["original_text"], row["original_text_pair"] = before
        row["perturbed_text"], row["perturbed_text_pair"] = after
    return row


SUMMARY_LABELS = (
    ("original_accuracy", "Original accuracy (%)"),
    ("accuracy_under_attack", "Accuracy under attack (%)"),
    ("attack_success_rate", "Attack success rate (%)"),
    ("avg_perturbed_word_percent", "Average perturbed word %"),
    ("avg_words_per_input", "Average num. words per input"),
    ("avg_queries", "Avg num queries"),
    ("successful_attacks", "Successful attacks"),
    ("failed_attacks", "Failed attacks"),
    ("skipped_attacks", "Skipped attacks"),
    ("examples", "Examples"),
)
