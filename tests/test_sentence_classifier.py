"""model.classifier_input = "sentence": logits from a linear classifier on the pooled sentence vector."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModel, BertForSequenceClassification

from advcl.modeling.encoder import EncoderClassifier, model_inputs
from conftest import run_cli, write_tiny_recipe
from tiny_models import tiny_batch, tiny_bert_config

SENTENCES = ["the film is wonderful", "i hated every minute of it , truly", "ok"]


def by_hand(states: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Mean of the unpadded token states, one example at a time, then ``W h + b``."""
    rows = []
    for example, keep in zip(states, mask):
        h = example[keep.bool()].sum(0) / keep.sum()
        rows.append(weight @ h + bias)
    return torch.stack(rows)


def test_logits_are_a_linear_map_of_the_mean_pooled_states():
    torch.manual_seed(0)
    model = EncoderClassifier(BertForSequenceClassification(tiny_bert_config(num_labels=3)), "cls", "mean").eval()
    batch = tiny_batch()
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    linear = model.sentence_classifier[1]
    expected = by_hand(out.token_states, batch["attention_mask"], linear.weight, linear.bias)
    torch.testing.assert_close(out.logits, expected)
    torch.testing.assert_close(out.sentence, out.token_states[:, 0])  # `pooling` still gives the embedding
    assert out.logits.shape == (2, 3)


def test_weights_round_trip_and_refuse_a_model_without_the_classifier():
    torch.manual_seed(0)
    model = EncoderClassifier(BertForSequenceClassification(tiny_bert_config()), "mean", "mean")
    state = model.weights()
    assert {"sentence_classifier.1.weight", "sentence_classifier.1.bias"} <= set(state)
    torch.manual_seed(1)
    other = EncoderClassifier(BertForSequenceClassification(tiny_bert_config()), "mean", "mean")
    other.load_weights(state)
    batch = model_inputs(tiny_batch())
    torch.testing.assert_close(other.eval()(**batch).logits, model.eval()(**batch).logits)
    plain = EncoderClassifier(BertForSequenceClassification(tiny_bert_config()), "mean")
    with pytest.raises(RuntimeError, match="sentence classifier"):
        plain.load_weights(state)


@pytest.fixture(scope="module")
def sentence_classifier_run(tmp_path_factory, tiny_model_dir):
    folder = tmp_path_factory.mktemp("sentence-classifier")
    recipe = write_tiny_recipe(folder, tiny_model_dir, model={"pooling": "mean", "classifier_input": "sentence"},
                               train={"epochs": 1}, data={"max_train_examples": 32, "max_eval_examples": 32})
    done = run_cli("train", "--recipe", str(recipe))
    assert done.returncode == 0, done.stderr
    return folder / "runs" / "tiny"


def test_a_trained_run_reloads_to_the_classifier_its_checkpoint_holds(sentence_classifier_run, tiny_model_dir):
    from transformers import AutoTokenizer

    from advcl.runs import load_model

    run = sentence_classifier_run
    weights = load_file(run / "checkpoints" / "step-0000004" / "model.safetensors")
    # the encoder alone, from the checkpoint's architecture weights (the "bert." prefix is the base model's)
    encoder = AutoModel.from_config(AutoConfig.from_pretrained(run / "model")).eval()
    encoder.load_state_dict({k[len("bert."):]: v for k, v in weights.items() if k.startswith("bert.")})
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    batch = tokenizer(SENTENCES, return_tensors="pt", padding=True)
    with torch.no_grad():
        states = encoder(**batch).last_hidden_state
        expected = by_hand(states, batch["attention_mask"], weights["sentence_classifier.1.weight"],
                           weights["sentence_classifier.1.bias"])
        loaded = load_model(str(run), "last").model
        assert loaded.sentence_classifier is not None and not loaded.training
        torch.testing.assert_close(loaded(**batch).logits, expected, atol=1e-5, rtol=1e-5)
    # the untrained architecture head is not what classifies: its logits differ
    assert not torch.allclose(loaded.hf(**batch).logits, expected, atol=1e-3)
    # and the sentence classifier is what training moved: its weights differ between the last two checkpoints
    earlier = load_file(run / "checkpoints" / "step-0000003" / "model.safetensors")
    assert not torch.equal(earlier["sentence_classifier.1.weight"], weights["sentence_classifier.1.weight"])


def test_the_attack_victim_scores_with_the_sentence_classifier(tiny_model_dir):
    """advcl attack's PyTorch victim (the path on GPUs, or without onnxruntime) gives EncoderClassifier's logits."""
    from transformers import AutoTokenizer

    from advcl.attacks.victim import Victim

    torch.manual_seed(0)
    model = EncoderClassifier(BertForSequenceClassification.from_pretrained(tiny_model_dir), "mean", "mean").eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        expected = torch.cat([model(**tokenizer([text], return_tensors="pt")).logits for text in SENTENCES])
    torch.testing.assert_close(Victim(model, tokenizer, max_length=32, batch_size=2)(SENTENCES), expected,
                               atol=1e-5, rtol=1e-5)


def test_hf_export_is_refused_and_onnx_reproduces_the_logits(sentence_classifier_run, tmp_path):
    import onnxruntime
    from transformers import AutoTokenizer

    from advcl.runs import load_model

    for fmt in ("hf", "sentence-transformers"):
        refused = run_cli("export", "--model", str(sentence_classifier_run), "--output", str(tmp_path / fmt),
                          "--format", fmt)
        assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
        assert f"--format {fmt} folder" in refused.stderr and "the formats that fit this run: onnx" in refused.stderr
        assert not (tmp_path / fmt).exists()
    out = tmp_path / "onnx"
    done = run_cli("export", "--model", str(sentence_classifier_run), "--output", str(out), "--format", "onnx", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["format"] == "onnx"
    session = onnxruntime.InferenceSession(str(out / "model.onnx"))
    feed = dict(AutoTokenizer.from_pretrained(out)(SENTENCES, return_tensors="np", padding=True))
    logits, _ = session.run(None, feed)
    with torch.no_grad():
        expected = load_model(str(sentence_classifier_run)).model(**{k: torch.from_numpy(v) for k, v in feed.items()})
    np.testing.assert_allclose(logits, expected.logits.numpy(), atol=1e-4)


def test_export_help_says_which_formats_fit_a_run_whose_classifier_reads_the_sentence_vector():
    shown = run_cli("export", "--help", env={"COLUMNS": "200"})
    assert shown.returncode == 0
    assert 'model.classifier_input = "sentence": onnx only' in " ".join(shown.stdout.split())


# -- the contrastive term and the classifier read one vector ---------------------------------------------------------

CONTRASTIVE = ("scal", "cat", "carl", "taichi")


def recipe_with(objective: str, **model):
    """The recipe, loaded and put through the check a new run (and `advcl train --dry-run`) makes."""
    from advcl.config.recipe import check_readout, load_recipe

    recipe = load_recipe(None, data={"model": model, "data": {"train": "x"}, "objective": {"name": objective}})
    check_readout(recipe)
    return recipe


@pytest.mark.parametrize("objective", CONTRASTIVE)
def test_a_contrast_on_the_mean_with_a_classifier_on_cls_is_a_one_line_recipe_error(objective):
    from advcl.config.validate import RecipeError

    with pytest.raises(RecipeError) as info:
        recipe_with(objective, pooling="mean", classifier_input="head")
    message = str(info.value)
    assert "\n" not in message and f"objective '{objective}' contrasts the mean-pooled sentence vector" in message
    assert 'model.classifier_input = "sentence"' in message and "model.mixed_readout = true" in message
    # one vector for both, or the papers' [CLS] for both, or the mix asked for explicitly
    assert recipe_with(objective, pooling="mean", classifier_input="sentence").model.classifier_input == "sentence"
    assert recipe_with(objective, pooling="cls", classifier_input="head").model.pooling == "cls"
    assert recipe_with(objective, pooling="mean", classifier_input="head", mixed_readout=True).model.mixed_readout


@pytest.mark.parametrize("objective", ["vanilla", "fgsm_at", "smart", "freelb", "rar", "simcse", "robustsentembed"])
def test_objectives_without_a_labelled_contrast_on_the_sentence_vector_are_not_checked(objective):
    assert recipe_with(objective, pooling="mean", classifier_input="head").model.pooling == "mean"


def test_a_mixed_readout_recipe_stops_train_with_one_line_before_any_run_folder(tmp_path, tiny_model_dir):
    recipe = write_tiny_recipe(tmp_path, tiny_model_dir, model={"pooling": "mean"}, objective={"name": "scal"})
    for extra in (["--dry-run"], []):
        done = run_cli("train", "--recipe", str(recipe), *extra)
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "model.mixed_readout = true" in done.stderr and done.stdout == ""
    assert not (tmp_path / "runs").exists()


def test_a_stored_run_config_with_a_mixed_readout_still_loads(tmp_path):
    """Runs trained before the check keep loading (evaluate, export, resume): only a new run is checked."""
    from advcl.config.recipe import load_recipe

    stored = tmp_path / "config.toml"
    stored.write_text('[model]\npooling = "mean"\n[data]\ntrain = "sst2:train"\n[objective]\nname = "cat"\n')
    assert load_recipe(stored).model.classifier_input == "head"


def test_every_shipped_recipe_with_a_contrast_classifies_from_the_vector_it_contrasts():
    from advcl.config.recipe import load_recipe
    from advcl.plugins import registry
    from conftest import ROOT

    checked = []
    for path in sorted((ROOT / "recipes").glob("*.toml")):
        if "plugin" in path.read_text():  # example plugins may be absent
            continue
        recipe = load_recipe(path)
        if registry().get("objective", recipe.objective.name).cls.contrasts_sentence:
            assert (recipe.model.pooling, recipe.model.classifier_input) == ("mean", "sentence"), path.name
            assert not recipe.model.mixed_readout, path.name
            checked.append(path.stem)
    assert {"scal_sst2", "scal_trec", "cat_sst2", "cat_trec", "carl_agnews", "taichi_sst2", "taichi_trec"} <= set(checked)
