"""Semantic textual similarity, the SimCSE protocol (Gao et al. 2021, §4.1 and Appendix B;
docs/methods.md, "Evaluation protocols").

Each pair is scored by the cosine of its two sentence embeddings, and a task's result is the Spearman rank
correlation between those cosines and the gold scores, × 100. STS12-16 are scored in the "all" setting: the
subsets of a year are concatenated and ranked together, one Spearman per year (SentEval's
``results[task]["all"]["spearman"]["all"]``, which SimCSE reports; its Appendix B shows how far this differs from
SentEval's per-subset "mean" and "wmean"). STS-B and SICK-R are scored on their test splits. The suite reports
the average over the tasks it scored (seven in the papers; six here when SICK-R is not in the data folder) and the
pooler that made the embeddings. STS-B validation, through :func:`sts_spearman`, selects checkpoints during training.

A gold score outside the range the dataset's meta.json declares (``score_range``, or ``hub.score_range``) is a
one-line :class:`~advcl.data.readers.DataError` naming the file and line, wherever the split is read (the
catalogue checks it: :func:`advcl.data.catalogue.load_data`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from advcl.data.catalogue import load_data, parse_spec, resolve
from advcl.data.dataset import TextDataset
from advcl.data.readers import DataError, iter_rows
from advcl.data.tasks import UNLABELED
from advcl.embedding import embed_texts
from advcl.evaluation.sampling import SAMPLE_SEED, sample_info

STS_SUITE = ("sts12:test", "sts13:test", "sts14:test", "sts15:test", "sts16:test", "stsb:test", "sickr:test")
MODEL_SELECTION = "stsb:validation"


def average_ranks(values) -> np.ndarray:
    """1-based ranks of ``values``; tied values share the mean of the ranks they span:
    ``[3, 1, 3]`` -> ``[2.5, 1, 2.5]`` (scipy's ``rankdata(method="average")``)."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])  # first position of each run of ties
    sizes = np.diff(np.r_[starts, len(values)])
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(starts + (sizes + 1) / 2, sizes)
    return ranks


def spearman(x, y) -> float:
    """Spearman's ρ: the Pearson correlation of the average ranks (Spearman 1904), in [-1, 1].

    0 when either side is constant (ρ is undefined there; scipy returns NaN), so that a collapsed model scores
    as uncorrelated and model selection keeps comparing numbers.
    """
    rx, ry = average_ranks(x), average_ranks(y)
    if len(rx) != len(ry) or len(rx) < 2:
        raise ValueError(f"spearman needs two sequences of the same length >= 2, got {len(rx)} and {len(ry)}")
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = np.sqrt((rx @ rx) * (ry @ ry))
    return float(rx @ ry / denominator) if denominator > 0 else 0.0


def embed_sentences(model, tokenizer, texts: Sequence[str], max_length: int, batch_size: int, device,
                    normalize: bool = False, progress=None) -> torch.Tensor:
    """:func:`advcl.embedding.embed_texts` (batched by length, returned in the given order), leaving the model
    in the train/eval mode it was found in."""
    was_training = model.training
    try:
        return embed_texts(model, tokenizer, list(texts), max_length, batch_size, device, normalize, progress)
    finally:
        model.train(was_training)


def pair_cosines(model, tokenizer, dataset: TextDataset, max_length: int, batch_size: int, device,
                 progress=None) -> np.ndarray:
    """cos(f(sentence1), f(sentence2)) for every pair of an STS dataset."""
    if dataset.pairs is None:
        raise DataError(f"{dataset.name}: STS needs sentence pairs, this dataset has single texts")
    embeddings = embed_sentences(model, tokenizer, dataset.texts + dataset.pairs, max_length, batch_size, device,
                                 progress=progress)
    first, second = embeddings[: len(dataset)], embeddings[len(dataset):]
    return F.cosine_similarity(first.double(), second.double(), dim=-1).numpy()


def sts_spearman(model, tokenizer, dataset: TextDataset, max_length: int, batch_size: int, device,
                 progress=None) -> float:
    """Spearman × 100 between pair cosines and gold scores: the model-selection metric (SimCSE selects on
    STS-B validation, :data:`MODEL_SELECTION`). Leaves the model in the mode it found it."""
    cosines = pair_cosines(model, tokenizer, dataset, max_length, batch_size, device, progress)
    return 100 * spearman(cosines, dataset.labels)


@dataclass
class StsSet:
    """An STS split and the subset of each pair (None when its rows have no ``subset`` field)."""

    spec: str
    dataset: TextDataset
    subsets: list[str] | None
    sample: dict  # advcl.evaluation.sampling.sample_info: the whole split or a seeded sample of it


def load_sts(spec: str, max_pairs: int = 0, seed: int = SAMPLE_SEED) -> StsSet:
    """Load a catalogue STS split (``stsb:test``; the catalogue checks its scores against the declared range)
    and keep the ``subset`` field of each row (STS12-16) for per-subset reporting. ``max_pairs`` > 0 keeps a
    seeded random sample of that many pairs (``advcl eval --suite sts --max-examples``)."""
    dataset = load_data(spec)
    if not dataset.task.scored:
        raise DataError(f"{spec} is a {dataset.task} dataset, not an STS one (sentence pairs with scores)")
    if len(dataset) < 2:
        raise DataError(f"{spec}: a rank correlation needs at least 2 pairs, found {len(dataset)}")
    name, split = parse_spec(spec)
    source = resolve(name, split)
    subsets = None
    if source.kind == "local":
        subsets = [row.get("subset") for _, row in iter_rows(Path(source.where))]
        subsets = subsets if all(isinstance(s, str) for s in subsets) else None
    total, max_pairs = len(dataset), max_pairs and max(max_pairs, 2)
    dataset = dataset.sample(max_pairs, seed)
    if subsets is not None:  # the same rows: a sample depends only on the length and the seed
        subsets = TextDataset("subsets", UNLABELED, subsets).sample(max_pairs, seed).texts
    return StsSet(spec, dataset, subsets, sample_info(len(dataset), total, seed))


def score_sts_set(sts: StsSet, cosines: np.ndarray) -> dict:
    """Spearman × 100 over all pairs (for STS12-16 this is the "all" setting: subsets concatenated) and, where
    rows carry a subset, each subset's own Spearman × 100 for reference."""
    gold = np.asarray(sts.dataset.labels, dtype=np.float64)
    result = {"spearman": 100 * spearman(cosines, gold), "pairs": len(gold), "sample": sts.sample}
    if sts.subsets is not None:
        subsets = np.asarray(sts.subsets)
        result["subsets"] = {name: 100 * spearman(cosines[subsets == name], gold[subsets == name])
                             for name in dict.fromkeys(sts.subsets) if np.sum(subsets == name) > 1}
    return result


def sts_suite(model, tokenizer, max_length: int, batch_size: int, device, tasks: Sequence[str] = STS_SUITE,
              progress=None, max_pairs: int = 0) -> dict:
    """Score ``model`` (an :class:`~advcl.modeling.encoder.EncoderClassifier`) on each STS split of ``tasks``.

    Every split is loaded and checked before any is embedded. A split that is neither in the data folder nor on
    a hub the catalogue declares (SICK-R, unless a ``sickr`` folder is added) is skipped with a note.
    ``max_pairs`` > 0 scores a seeded random sample of that many pairs of each split. Returns
    ``{"pooling", "tasks": {spec: {"spearman", "pairs", "subsets"?}}, "average", "skipped": {spec: note}}``;
    Spearman values are × 100.
    """
    sets, skipped = {}, {}
    for spec in tasks:
        source = resolve(*parse_spec(spec))
        if source.kind == "missing":
            skipped[spec] = f"not in the data folder (looked for {source.where})"
        else:
            sets[spec] = load_sts(spec, max_pairs)
    if not sets:
        raise DataError(f"none of the STS tasks {', '.join(tasks)} is available: {'; '.join(skipped.values())}")
    scores = {spec: score_sts_set(sts, pair_cosines(model, tokenizer, sts.dataset, max_length, batch_size, device,
                                                    progress)) for spec, sts in sets.items()}
    average = float(np.mean([score["spearman"] for score in scores.values()]))
    return {"pooling": model.pooling, "tasks": scores, "average": average, "skipped": skipped}
