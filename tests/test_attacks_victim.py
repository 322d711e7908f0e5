"""The victim TextAttack queries: length-sorted batches padded to their longest member give each input the logits
it gets alone, unpadded; inputs are truncated at max_length."""

import pytest
import torch

from advcl.attacks.victim import Victim, onnx_session
from advcl.runs import load_model

TEXTS = [
    "a gorgeous , witty , seductive movie .",
    "bad",
    "the acting , costumes , music , cinematography and sound are all astounding given the production 's "
    "austere locales , and the story never lets the energy flag for a single minute of its running time .",
    "it 's a charming and often affecting journey .",
    "unflinchingly bleak and desperate",
]


def alone(loaded, first, second=None, max_length=32):
    encoded = loaded.tokenizer(first, second, truncation=True, max_length=max_length, return_tensors="pt")
    with torch.inference_mode():
        return loaded.model.hf(**encoded).logits[0]


def test_batched_padded_logits_equal_single_unpadded_queries(tiny_model_dir):
    loaded = load_model(str(tiny_model_dir))
    victim = Victim(loaded.model, loaded.tokenizer, max_length=32, batch_size=2)
    logits = victim(TEXTS)
    assert logits.shape == (len(TEXTS), 2)
    for text, row in zip(TEXTS, logits):
        torch.testing.assert_close(row, alone(loaded, text), atol=1e-5, rtol=1e-5)
    # truncation: the long text scores as its first 32 tokens
    assert len(loaded.tokenizer(TEXTS[2])["input_ids"]) > 32
    assert victim([]).shape == (0, 2)


def test_pairs_are_encoded_as_pairs(tiny_model_dir):
    loaded = load_model(str(tiny_model_dir))
    victim = Victim(loaded.model, loaded.tokenizer, max_length=32, batch_size=3)
    pairs = [(TEXTS[0], TEXTS[1]), (TEXTS[3], TEXTS[4]), (TEXTS[1], TEXTS[0])]
    for (first, second), row in zip(pairs, victim(pairs)):
        torch.testing.assert_close(row, alone(loaded, first, second), atol=1e-5, rtol=1e-5)


def test_onnxruntime_victim_gives_the_same_logits_and_exports_once(tiny_model_dir, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    loaded = load_model(str(tiny_model_dir))
    victim = Victim(loaded.model, loaded.tokenizer, max_length=32, batch_size=2, session=onnx_session(loaded, tmp_path))
    for text, row in zip(TEXTS, victim(TEXTS)):
        torch.testing.assert_close(row, alone(loaded, text), atol=1e-4, rtol=1e-4)
    onnx_session(loaded, tmp_path)
    assert len(list(tmp_path.iterdir())) == 1  # one export, found again
