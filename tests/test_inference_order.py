"""Inference batched by length (advcl.data.batching.length_sorted_batches): embeddings, predictions and embedding
perturbations come back in the caller's order and equal what each example gives alone, unpadded."""

from types import SimpleNamespace

import pytest
import torch

from advcl.data.batching import length_sorted_batches
from advcl.embedding import embed_texts
from advcl.evaluation.classify import predict
from advcl.modeling.encoder import EncoderClassifier
from test_robustness import random_data
from tiny_models import tiny_bert, tiny_tokenizer

TEXTS = [
    "bad",
    "the acting , costumes , music , cinematography and sound are all astounding given the production 's "
    "austere locales , and the story never lets the energy flag",
    "a gorgeous , witty , seductive movie .",
    "unflinchingly bleak",
    "it 's a charming and often affecting journey .",
    "ok",
    "a movie that is n't funny , and even less so for the second time .",
]


def test_length_sorted_batches_cover_the_rows_longest_first():
    lengths = [3, 9, 1, 9, 4, 7, 2]
    batches = length_sorted_batches(lengths, 3)
    assert sorted(i for b in batches for i in b) == list(range(7))
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(lengths, reverse=True) and [len(b) for b in batches] == [3, 3, 1]
    subset = length_sorted_batches(lengths, 2, indices=[0, 2, 4, 6])  # one process's rows
    assert subset == [[4, 0], [6, 2]]


@pytest.fixture(scope="module")
def encoder():
    return EncoderClassifier(tiny_bert(seed=2), "mean").eval()


def alone(model, tokenizer, text: str) -> torch.Tensor:
    """The sentence vector of ``text`` on its own: one row, no padding."""
    with torch.no_grad():
        return model(**tokenizer(text, truncation=True, max_length=64, return_tensors="pt")).sentence[0]


def test_embeddings_are_in_the_given_order_and_equal_each_text_alone(encoder):
    tokenizer = tiny_tokenizer()
    vectors = embed_texts(encoder, tokenizer, TEXTS, max_length=64, batch_size=3, device="cpu")
    assert vectors.shape[0] == len(TEXTS)
    for i, text in enumerate(TEXTS):
        assert torch.allclose(vectors[i], alone(encoder, tokenizer, text), atol=1e-5)
    reversed_vectors = embed_texts(encoder, tokenizer, TEXTS[::-1], max_length=64, batch_size=3, device="cpu")
    assert torch.allclose(reversed_vectors, vectors.flip(0), atol=1e-5)


def test_embedding_batches_are_formed_by_length(encoder, monkeypatch):
    from advcl.data.batching import EncodedDataset

    seen = []
    original = EncodedDataset.collate
    monkeypatch.setattr(EncodedDataset, "collate", lambda self, rows: seen.append(list(rows)) or original(self, rows))
    embed_texts(encoder, tiny_tokenizer(), TEXTS, max_length=64, batch_size=3, device="cpu")
    assert seen[0][0] == 1  # the longest text opens the first batch
    widths = [[len(tiny_tokenizer()(TEXTS[i])["input_ids"]) for i in batch] for batch in seen]
    assert [w for batch in widths for w in batch] == sorted((w for batch in widths for w in batch), reverse=True)


class ParityOfTokens(torch.nn.Module):
    """A stand-in classifier whose class is the parity of a row's token-id sum (padding ignored): every row's
    prediction is known exactly, so any mix-up of rows shows."""

    def forward(self, input_ids, attention_mask, **_):
        odd = ((input_ids * attention_mask).sum(-1) % 2).float()
        return SimpleNamespace(logits=torch.stack([1 - odd, odd], dim=-1))


@pytest.mark.parametrize("batch_size", [1, 4, 100])
def test_predictions_are_in_the_given_order(batch_size):
    data = random_data(23, seed=3)
    expected = [sum(ids) % 2 for ids in data.input_ids]
    assert 5 <= sum(expected) <= 18  # both classes occur
    assert predict(ParityOfTokens(), data, batch_size=batch_size, device="cpu").tolist() == expected
