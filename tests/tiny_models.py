"""Tiny random encoders built in memory, and a small padded batch, for unit tests."""

import torch
from transformers import BertConfig, BertForSequenceClassification

from advcl.modeling.encoder import EncoderClassifier


def tiny_bert_config(**overrides) -> BertConfig:
    options = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    return BertConfig(**{**options, **overrides})


def tiny_classifier(seed: int = 0, num_labels: int = 2) -> EncoderClassifier:
    torch.manual_seed(seed)
    return EncoderClassifier(BertForSequenceClassification(tiny_bert_config(num_labels=num_labels)))


def tiny_batch() -> dict:
    """Two examples of 6 positions; the second has 2 padding positions; token 7 occurs twice in the first."""
    return {
        "input_ids": torch.tensor([[2, 7, 15, 7, 33, 3], [2, 41, 8, 3, 0, 0]]),
        "attention_mask": torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]]),
        "labels": torch.tensor([0, 1]),
    }
