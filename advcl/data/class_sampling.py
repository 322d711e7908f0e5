"""A seeded stratified training subset: ``data.examples_per_class`` rows of each class (the "N examples per intent"
of low-resource intent classification).

The draw is the one ``data.max_train_examples`` makes (:meth:`TextDataset.sample`), kept per class: one random
permutation of the rows from a generator seeded with ``run.seed``; walking it, a row is taken while its class has
fewer than N, and the rows taken come back in source order. A smaller N at the same seed walks the same
permutation less far, so its rows are part of the larger draw's (5 per class is half of the 10 per class). A class
with fewer than N rows keeps all of them; the summary names each such class, the run's report.json keeps it and the
log prints it. A fresh run and its resume draw the same rows: the draw depends on the data and the seed only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from advcl.config.validate import RecipeError

if TYPE_CHECKING:  # the recipe check imports advcl.data modules; torch stays out of a CLI start
    from advcl.data.dataset import TextDataset


def sample_per_class(dataset: TextDataset, n: int, seed: int) -> tuple[TextDataset, dict | None]:
    """``n`` seeded rows of each class and a summary for report.json; ``n = 0``: the dataset whole, no summary.

    Data without class labels (unlabelled sentences, STS scores) is a one-line :class:`RecipeError`.
    """
    if n <= 0:
        return dataset, None
    if not dataset.has_class_labels:
        raise RecipeError(f"'data.examples_per_class' draws rows per class, but {dataset.name} is {dataset.task} "
                          "data without class labels: set it to 0 (or use data.max_train_examples)")
    import torch

    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed)).tolist()
    taken = [0] * len(dataset.label_names)
    chosen = []
    for i in order:
        if taken[dataset.labels[i]] < n:
            taken[dataset.labels[i]] += 1
            chosen.append(i)
    short = {name: count for name, count in zip(dataset.label_names, taken) if count < n}
    summary = {"examples_per_class": n, "rows": len(chosen), "classes": len(taken), "short_classes": short}
    return dataset.select(sorted(chosen)), summary


def describe(summary: dict) -> str:
    """One line for the log: ``data.examples_per_class = 10: 770 rows of 77 classes`` and any short classes."""
    line = f"data.examples_per_class = {summary['examples_per_class']}: {summary['rows']} rows of " \
           f"{summary['classes']} classes"
    short = summary["short_classes"]
    if short:
        named = ", ".join(f"{name} ({count})" for name, count in short.items())
        line += f"; {len(short)} with fewer rows keep all of them: {named}"
    return line
