"""Periodic evaluation during training: the metrics of a validation split, by the split's task.

A classification split gives accuracy, macro-F1 and MCC; an STS split (such as ``stsb:validation``) gives the
Spearman correlation ×100 between the cosine of the two sentence embeddings and the gold score (SimCSE's
model selection on STS-B dev).
"""

from __future__ import annotations

from collections.abc import Callable

from advcl.config.schema import Recipe
from advcl.config.validate import RecipeError
from advcl.data.batching import encode
from advcl.data.dataset import TextDataset
from advcl.evaluation.classify import evaluate

Validator = Callable[..., dict]  # (model, progress=None) -> metrics

CLASSIFICATION_METRICS = ("accuracy", "macro_f1", "mcc")


def make_validator(recipe: Recipe, dataset: TextDataset, tokenizer, num_labels: int, device) -> Validator:
    metric = recipe.train.select_metric
    batch_size, precision = recipe.train.eval_batch_size, recipe.run.precision
    if dataset.task == "sts":
        if metric != "spearman":
            raise RecipeError(
                f"'train.select_metric' = '{metric}' needs a classification validation split; "
                f"{recipe.data.validation} is an STS split: use 'spearman'"
            )
        from advcl.evaluation.sts import sts_spearman

        def validate_sts(model, progress=None) -> dict:
            value = sts_spearman(model, tokenizer, dataset, recipe.model.max_length, batch_size, device)
            return {"spearman": value, "examples": len(dataset)}

        return validate_sts
    if dataset.labels is None:
        raise RecipeError(f"'data.validation' = '{recipe.data.validation}' has no labels to evaluate against")
    if metric not in CLASSIFICATION_METRICS:
        raise RecipeError(
            f"'train.select_metric' = '{metric}' needs an STS validation split; "
            f"{recipe.data.validation} is {dataset.task}: use one of {', '.join(CLASSIFICATION_METRICS)}"
        )
    encoded = encode(dataset, tokenizer, recipe.model.max_length)

    def validate_classification(model, progress=None) -> dict:
        return evaluate(model, encoded, num_labels, batch_size, device, precision, progress)

    return validate_classification
