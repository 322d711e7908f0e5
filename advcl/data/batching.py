"""Tokenise once, then build dynamically padded batches in a seeded, reproducible order.

A dataset with adversarial texts (:attr:`TextDataset.adv_texts`, from ``advcl perturb``) gives batches that also
carry them, padded on their own: ``adv_input_ids``, ``adv_attention_mask`` (and ``adv_token_type_ids``), row i
the adversarial twin of row i; :func:`adversarial_inputs` hands them to the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from advcl.data.dataset import TextDataset
from advcl.modeling.encoder import MODEL_INPUTS

ADVERSARIAL_PREFIX = "adv_"


@dataclass
class EncodedDataset:
    """Token ids per example (unpadded) plus labels; batches are padded to their longest row."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    labels: list | None
    pad_token_id: int
    truncated: int = 0  # examples cut to max_length
    adversarial: EncodedDataset | None = None  # the adversarial twin of every row (no labels)

    def __len__(self) -> int:
        return len(self.input_ids)

    def lengths(self) -> list[int]:
        """Tokens per example: the longer of the text and its adversarial twin, which pad in the same batch."""
        own = [len(ids) for ids in self.input_ids]
        if self.adversarial is None:
            return own
        return [max(a, b) for a, b in zip(own, self.adversarial.lengths())]

    def collate(self, indices: list[int]) -> dict[str, torch.Tensor]:
        width = max(len(self.input_ids[i]) for i in indices)
        ids = torch.full((len(indices), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(indices), width), dtype=torch.long)
        types = torch.zeros((len(indices), width), dtype=torch.long) if self.token_type_ids else None
        for row, i in enumerate(indices):
            n = len(self.input_ids[i])
            ids[row, :n] = torch.tensor(self.input_ids[i])
            mask[row, :n] = 1
            if types is not None:
                types[row, :n] = torch.tensor(self.token_type_ids[i])
        batch = {"input_ids": ids, "attention_mask": mask, "index": torch.tensor(indices)}
        if types is not None:
            batch["token_type_ids"] = types
        if self.labels is not None:
            dtype = torch.float if any(isinstance(v, float) for v in self.labels) else torch.long
            batch["labels"] = torch.tensor([self.labels[i] for i in indices], dtype=dtype)
        if self.adversarial is not None:
            twins = self.adversarial.collate(indices)
            batch.update({ADVERSARIAL_PREFIX + k: v for k, v in twins.items() if k in MODEL_INPUTS})
        return batch


def adversarial_inputs(batch: dict) -> dict:
    """The model inputs of the batch's adversarial texts, under the model's own argument names."""
    found = {k: batch[ADVERSARIAL_PREFIX + k] for k in MODEL_INPUTS if ADVERSARIAL_PREFIX + k in batch}
    if not found:
        raise KeyError("the batch has no adversarial texts (adv_input_ids): load the data with its adv_text column")
    return found


def encode(dataset: TextDataset, tokenizer, max_length: int) -> EncodedDataset:
    """Tokenise without padding, truncating to ``max_length`` and counting the examples that were cut.

    Adversarial texts, when the dataset has them, are encoded the same way into ``adversarial``.
    """
    encoded = _encode_texts(dataset, tokenizer, max_length)
    if dataset.adv_texts is not None:
        twins = TextDataset(dataset.name, dataset.task, dataset.adv_texts, dataset.adv_pairs)
        encoded.adversarial = _encode_texts(twins, tokenizer, max_length)
    return encoded


def _encode_texts(dataset: TextDataset, tokenizer, max_length: int) -> EncodedDataset:
    out = _tokenize(tokenizer, dataset.texts, dataset.pairs, max_length + 1)
    too_long = [i for i, ids in enumerate(out["input_ids"]) if len(ids) > max_length]
    if too_long:
        pick = lambda xs: None if xs is None else [xs[i] for i in too_long]  # noqa: E731
        cut = _tokenize(tokenizer, pick(dataset.texts), pick(dataset.pairs), max_length)
        for key in out:
            for i, value in zip(too_long, cut[key]):
                out[key][i] = value
    types = out.get("token_type_ids")
    return EncodedDataset(
        input_ids=out["input_ids"],
        token_type_ids=types if types is not None and "token_type_ids" in tokenizer.model_input_names else None,
        labels=dataset.labels,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
        truncated=len(too_long),
    )


def _tokenize(tokenizer, texts, pairs, max_length: int) -> dict:
    return dict(
        tokenizer(texts, pairs, truncation=True, max_length=max_length, padding=False, return_attention_mask=False)
    )


GROUP_BATCHES = 50  # batches per mega-batch sorted by length (Hugging Face Trainer's group_by_length uses up to 50)


def epoch_batches(
    n: int, batch_size: int, seed: int, epoch: int, multiple_of: int = 1, lengths: list[int] | None = None
) -> list[list[int]]:
    """The batches of one epoch: a permutation that depends only on (seed, epoch) (and ``lengths``).

    With ``multiple_of`` > 1 (the number of processes) the order wraps around to a multiple of it, so the
    last batch still splits into equal slices, one per process. With ``lengths`` (tokens per example) the
    batches are grouped by length: see :func:`group_by_length`.
    """
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(n, generator=generator).tolist()
    order += order[: -len(order) % multiple_of]
    if lengths is not None:
        return group_by_length(order, lengths, batch_size, generator)
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def group_by_length(order: list[int], lengths: list[int], batch_size: int, generator: torch.Generator) -> list[list[int]]:
    """Batches of similar length from a shuffled ``order``, so that padding to the longest row costs little.

    The order is cut into mega-batches of :data:`GROUP_BATCHES` batches, each sorted by length (longest
    first, ties kept in shuffled order) and cut into batches; the batches are then shuffled with
    ``generator``, except that the one holding the longest example goes first (an out-of-memory error shows at
    step 0, not hours in). There are as many batches as without grouping, and still only one can be short (the
    last cut, now anywhere in the epoch).
    """
    mega = GROUP_BATCHES * batch_size
    batches = []
    for start in range(0, len(order), mega):
        chunk = sorted(order[start : start + mega], key=lambda i: -lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
    longest = max(range(len(batches)), key=lambda b: lengths[batches[b][0]], default=0)
    batches.insert(0, batches.pop(longest))
    return batches


def groups_by_length(setting: str, in_batch_negatives: bool) -> bool:
    """Whether training batches are grouped by length: ``data.group_by_length`` "on"/"off", or for "auto" the
    objective family's default: on, except for objectives whose contrast takes its negatives from the batch
    (length-sorted batches hold similar-length sentences, easier negatives; docs/results.md, "Speed")."""
    if setting == "auto":
        return not in_batch_negatives
    return setting == "on"


def length_sorted_batches(lengths: list[int], batch_size: int, indices: list[int] | None = None) -> list[list[int]]:
    """Inference batches: ``indices`` (default: all rows) longest first, cut into batches of ``batch_size``, so
    that each batch pads to rows of about its own length. Callers put each output back at its row's index; the
    longest batch comes first, so an out-of-memory error shows at once."""
    order = sorted(range(len(lengths)) if indices is None else indices, key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
