"""advcl export --format sentence-transformers and onnx: what other tools load gives advcl's numbers."""

import json

import numpy as np
import pytest
import torch

from conftest import run_cli, write_tiny_recipe

SENTENCES = ["the film is wonderful", "i hated every minute of it , truly", "ok"]


@pytest.fixture(scope="module")
def mean_pooled_run(tmp_path_factory, tiny_model_dir):
    folder = tmp_path_factory.mktemp("export")
    recipe = write_tiny_recipe(folder, tiny_model_dir, model={"pooling": "mean"}, train={"epochs": 1},
                               data={"max_train_examples": 32, "max_eval_examples": 32})
    done = run_cli("train", "--recipe", str(recipe))
    assert done.returncode == 0, done.stderr
    return folder / "runs" / "tiny"


def test_sentence_transformers_folder_encodes_as_advcl_embed(mean_pooled_run, tmp_path):
    from sentence_transformers import SentenceTransformer

    out = tmp_path / "st"
    done = run_cli("export", "--model", str(mean_pooled_run), "--output", str(out), "--format", "sentence-transformers", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["pooling"] == "mean" and json.loads(done.stdout)["left_out"] == []
    source = tmp_path / "s.txt"
    source.write_text("\n".join(SENTENCES) + "\n")
    embedded = run_cli("embed", "--model", str(mean_pooled_run), "--input", str(source), "--output", str(tmp_path / "e.npy"))
    assert embedded.returncode == 0, embedded.stderr
    model = SentenceTransformer(str(out), device="cpu")
    assert model.max_seq_length == 32
    np.testing.assert_allclose(model.encode(SENTENCES), np.load(tmp_path / "e.npy"), atol=1e-5)


def test_onnx_graph_runs_in_onnxruntime_like_pytorch(mean_pooled_run, tmp_path):
    import onnxruntime
    from transformers import AutoTokenizer

    from advcl.runs import load_model

    out = tmp_path / "onnx"
    done = run_cli("export", "--model", str(mean_pooled_run), "--output", str(out), "--format", "onnx", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)  # stdout holds the JSON only, though the exporter talks
    session = onnxruntime.InferenceSession(str(out / "model.onnx"))
    assert [i.name for i in session.get_inputs()] == result["onnx_inputs"]
    assert result["onnx_inputs"] == ["input_ids", "attention_mask", "token_type_ids"]  # what the BERT tokenizer gives
    assert [o.name for o in session.get_outputs()] == ["logits", "sentence_embedding"]
    ours = load_model(str(mean_pooled_run)).model.eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    for texts in (SENTENCES, SENTENCES[:1] * 4):  # other batch sizes and lengths than the traced example
        feed = dict(tokenizer(texts, return_tensors="np", padding=True))
        logits, sentence = session.run(None, feed)
        with torch.no_grad():
            expected = ours(**{k: torch.from_numpy(v) for k, v in feed.items()})
        np.testing.assert_allclose(logits, expected.logits.numpy(), atol=1e-4)
        np.testing.assert_allclose(sentence, expected.sentence.numpy(), atol=1e-4)


def test_unknown_format_is_one_line(mean_pooled_run, tmp_path):
    done = run_cli("export", "--model", str(mean_pooled_run), "--output", str(tmp_path / "x"), "--format", "tflite")
    assert done.returncode == 2 and done.stderr.strip() == "error: --format must be one of hf, sentence-transformers, onnx, got 'tflite'"
