"""Issue 17, item 6: every export carries the training max length, so plain transformers, sentence-transformers
and the onnx folder's tokenizer truncate long inputs where advcl (and training) did."""

import pytest
import torch

from advcl.data.batching import encode
from advcl.data.dataset import TextDataset
from advcl.data.tasks import UNLABELED
from advcl.export import export_model
from advcl.runs import load_model
from daily_helpers import train_tiny

MAX_LENGTH = 12
LONG = ("the film opens slowly , then the second act turns every expectation around and the ending , "
        "which i will not spoil , lands with a quiet force that stays with you for days")


@pytest.fixture(scope="module")
def short_run(tmp_path_factory, tiny_model_dir):
    return train_tiny(tmp_path_factory.mktemp("short"), tiny_model_dir,
                      model={"max_length": MAX_LENGTH, "pooling": "mean"})


def advcl_logits(run, text):
    loaded = load_model(str(run))
    encoded = encode(TextDataset("long", UNLABELED, [text]), loaded.tokenizer, loaded.max_length)
    ids = torch.tensor(encoded.input_ids)
    with torch.no_grad():
        return loaded.model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits, encoded.input_ids[0]


def test_hf_export_truncates_where_training_did(short_run, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    result = export_model(str(short_run), tmp_path / "hf", "hf")
    assert result["max_length"] == MAX_LENGTH
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "hf")
    assert tokenizer.model_max_length == MAX_LENGTH
    plain = AutoModelForSequenceClassification.from_pretrained(tmp_path / "hf").eval()
    inputs = tokenizer(LONG, truncation=True, return_tensors="pt")
    expected, ids = advcl_logits(short_run, LONG)
    assert inputs["input_ids"][0].tolist() == ids and len(ids) == MAX_LENGTH
    with torch.no_grad():
        torch.testing.assert_close(plain(**inputs).logits, expected, atol=1e-5, rtol=0)
    # the tokenizer as training loaded it (its own limit) would have kept every token of the text
    assert len(AutoTokenizer.from_pretrained(short_run / "model")(LONG, truncation=True)["input_ids"]) > 2 * MAX_LENGTH


def test_sentence_transformers_and_onnx_exports_carry_the_max_length(short_run, tmp_path):
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer

    export_model(str(short_run), tmp_path / "st", "sentence-transformers")
    model = SentenceTransformer(str(tmp_path / "st"), device="cpu")
    assert model.max_seq_length == MAX_LENGTH
    assert AutoTokenizer.from_pretrained(tmp_path / "st").model_max_length == MAX_LENGTH
    pytest.importorskip("onnxscript")
    export_model(str(short_run), tmp_path / "onnx", "onnx")
    assert AutoTokenizer.from_pretrained(tmp_path / "onnx").model_max_length == MAX_LENGTH
