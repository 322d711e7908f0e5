"""Periodic evaluation during training: the metrics of a validation split, by the split's task
(:class:`advcl.data.tasks.DataTask`, whose ``metrics`` name what ``train.select_metric`` may choose).

A classification split gives accuracy, macro-F1 and MCC; an STS split (such as ``stsb:validation``) gives the
Spearman correlation ×100 between the cosine of the two sentence embeddings and the gold score (SimCSE's
model selection on STS-B dev).

Under torchrun each process encodes its share of the validation set and the shares are gathered, so every
process gets the metrics of the whole set (the same as one process would) for a 1/N share of the work.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

from advcl.config.schema import Recipe
from advcl.config.validate import RecipeError
from advcl.data.batching import encode
from advcl.data.dataset import TextDataset
from advcl.runtime.distributed import gather_objects, world
from advcl.evaluation.classify import evaluate

Validator = Callable[..., dict]  # (model, progress=None) -> metrics


def make_validator(recipe: Recipe, dataset: TextDataset, tokenizer, num_labels: int, device) -> Validator:
    metric = recipe.train.select_metric
    batch_size, precision = recipe.train.eval_batch_size, recipe.run.precision
    metrics = dataset.task.metrics
    if dataset.task.scored:
        if metric not in metrics:
            raise RecipeError(
                f"'train.select_metric' = '{metric}' needs a classification validation split; "
                f"{recipe.data.validation} is an STS split: use {', '.join(map(repr, metrics))}"
            )
        from advcl.evaluation.sts import spearman

        def validate_sts(model, progress=None) -> dict:
            cosines = sharded_pair_cosines(model, tokenizer, dataset, recipe.model.max_length, batch_size, device)
            return {"spearman": 100 * spearman(cosines, dataset.labels), "examples": len(dataset)}

        return validate_sts
    if dataset.labels is None:
        raise RecipeError(f"'data.validation' = '{recipe.data.validation}' has no labels to evaluate against")
    if metric not in metrics:
        raise RecipeError(
            f"'train.select_metric' = '{metric}' needs an STS validation split; "
            f"{recipe.data.validation} is {dataset.task}: use one of {', '.join(metrics)}"
        )
    encoded = encode(dataset, tokenizer, recipe.model.max_length)

    def validate_classification(model, progress=None) -> dict:
        return evaluate(model, encoded, num_labels, batch_size, device, precision, progress)

    return validate_classification


def sharded_pair_cosines(model, tokenizer, dataset: TextDataset, max_length: int, batch_size: int, device):
    """:func:`advcl.evaluation.sts.pair_cosines`, each process encoding every N-th sentence in order of length
    (so that the shares cost alike) and the embeddings gathered. One process: all sentences, the same batches
    as ``pair_cosines``."""
    from advcl.evaluation.sts import embed_sentences, pair_cosines

    topology = world()
    if not topology.distributed or dataset.pairs is None:  # (pair_cosines says why single texts cannot be scored)
        return pair_cosines(model, tokenizer, dataset, max_length, batch_size, device)
    texts = dataset.texts + dataset.pairs
    by_length = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    mine = by_length[topology.rank :: topology.world_size]
    local = None
    if mine:
        local = embed_sentences(model, tokenizer, [texts[i] for i in mine], max_length, batch_size, device)
    shares = gather_objects((mine, local))
    dim = next(emb.shape[1] for _, emb in shares if emb is not None)
    embeddings = torch.empty(len(texts), dim)
    for positions, emb in shares:
        if positions:
            embeddings[positions] = emb
    first, second = embeddings[: len(dataset)], embeddings[len(dataset) :]
    return F.cosine_similarity(first.double(), second.double(), dim=-1).numpy()
