"""`advcl perturb --space embedding`: per-example δ, its norm and the clean/adversarial representations, checked
against the ε-ball, the padding, a recomputation from the stored δ, and `advcl eval --robust`'s numbers."""

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from advcl.data.catalogue import load_data
from advcl.errors import BadInput
from advcl.evaluation.perturbations import embedding_perturbations
from advcl.evaluation.robustness import AttackSettings, robustness
from conftest import run_cli
from test_robustness import invoke, random_data
from tiny_models import tiny_classifier


@pytest.fixture(scope="module")
def model():
    return tiny_classifier().eval()


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_each_perturbation_lies_in_the_ball_and_off_padding(model, norm):
    data, eps = random_data(20), 0.3
    found = embedding_perturbations(model, data, eps, AttackSettings(norm=norm, steps=3), batch_size=8, device="cpu")
    width, dim = max(len(ids) for ids in data.input_ids), model.hf.config.hidden_size
    assert found["delta"].shape == (20, width, dim) and found["attention_mask"].shape == (20, width)
    assert found["clean_sentence"].shape == found["adversarial_sentence"].shape == (20, dim)
    assert found["clean_logits"].shape == found["adversarial_logits"].shape == (20, 2)
    assert found["delta_norm"].shape == (20,)
    for i, ids in enumerate(data.input_ids):
        assert found["attention_mask"][i].tolist() == [1] * len(ids) + [0] * (width - len(ids))
        assert torch.count_nonzero(found["delta"][i, len(ids):]) == 0  # padding, in its batch and beyond
        real = found["delta"][i, : len(ids)]
        size = real.norm() if norm == "l2" else real.abs().max()
        assert found["delta_norm"][i].item() == pytest.approx(size.item(), rel=1e-6)
        assert 0 < size <= eps * (1 + 1e-5)


def test_stored_perturbations_reproduce_the_stored_representations_and_eval_robust(model):
    data, eps, settings = random_data(20), 0.5, AttackSettings(steps=3, seed=4)
    found = embedding_perturbations(model, data, eps, settings, batch_size=8, device="cpu")
    for i, ids in enumerate(data.input_ids):  # one example at a time, unpadded: an independent recomputation
        embeds = model.word_embeddings(torch.tensor([ids]))
        mask = torch.ones(1, len(ids), dtype=torch.long)
        with torch.no_grad():
            clean = model(inputs_embeds=embeds, attention_mask=mask)
            adversarial = model(inputs_embeds=embeds + found["delta"][i : i + 1, : len(ids)], attention_mask=mask)
        assert torch.allclose(clean.sentence[0], found["clean_sentence"][i], atol=1e-5)
        assert torch.allclose(adversarial.sentence[0], found["adversarial_sentence"][i], atol=1e-5)
        assert torch.allclose(adversarial.logits[0], found["adversarial_logits"][i], atol=1e-5)
    reference = robustness(model, data, [eps], settings, batch_size=8, device="cpu")  # same seeds, same δ
    labels = torch.tensor(data.labels)
    correct = (found["clean_logits"].argmax(-1) == labels) & (found["adversarial_logits"].argmax(-1) == labels)
    assert correct.float().mean().item() == pytest.approx(reference["results"][0]["accuracy"])
    distance = (found["clean_sentence"] - found["adversarial_sentence"]).norm(dim=-1).mean().item()
    assert distance == pytest.approx(reference["results"][0]["euclidean_distance"], rel=1e-5)


def test_perturb_in_embedding_space_writes_tensors_and_an_index(tmp_path, tiny_model_dir):
    out = tmp_path / "pgd"
    args = ["perturb", "--space", "embedding", "--eps", "0.1", "--steps", "2", "--model", str(tiny_model_dir),
            "--data", "sst2:validation", "-n", "10", "--output", str(out), "--json"]
    done = invoke(*args)
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert result["attack"] == "pgd" and result["eps"] == 0.1 and result["examples"] == 10
    assert result["max_delta_norm"] <= 0.1 * (1 + 1e-5)
    tensors = load_file(out / "validation.embedding.safetensors")
    assert tensors["delta"].shape[:1] == tensors["delta_norm"].shape == (10,)
    assert torch.count_nonzero(tensors["delta"][tensors["attention_mask"] == 0]) == 0
    with safe_open(out / "validation.embedding.safetensors", "pt") as handle:
        meta = {k: json.loads(v) for k, v in handle.metadata().items()}
    assert meta["attack"] == "pgd" and meta["eps"] == 0.1 and meta["data"] == "sst2:validation"
    rows = [json.loads(line) for line in (out / "validation.embedding.jsonl").read_text().splitlines()]
    assert [r["row"] for r in rows] == list(range(10))
    source = load_data("sst2:validation").sample(10, 0)  # the seeded sample, in order
    assert [r["text"] for r in rows] == source.texts and [r["label"] for r in rows] == source.labels
    for row in rows:
        assert row["delta_norm"] == pytest.approx(tensors["delta_norm"][row["row"]].item())
        assert row["tokens"] == int(tensors["attention_mask"][row["row"]].sum())
        assert row["adversarial_prediction"] == int(tensors["adversarial_logits"][row["row"]].argmax())
    again = invoke(*args)
    assert isinstance(again.exception, BadInput) and "already exists (pass --overwrite" in str(again.exception)


@pytest.mark.parametrize("args, fragment", [
    (["--space", "embedding", "--attack", "pwws"], "--attack set a text attack: drop them for --space embedding"),
    (["--space", "embedding", "--perturber", "pdg"], "unknown perturber 'pdg'"),
    (["--space", "embedding", "--norm", "l1"], "norm must be l2 or linf"),
    (["--eps", "0.1"], "--eps set an embedding-space attack: add --space embedding"),
    ([], "give --attack NAME (a text attack), or --space embedding"),
    (["--space", "pixels"], "--space must be text or embedding"),
])
def test_mixed_up_options_fail_before_loading_anything(tmp_path, args, fragment):
    done = invoke("perturb", "--model", "/nonexistent/model", "--data", "sst2:validation", "--output", str(tmp_path),
                  *args)
    assert isinstance(done.exception, BadInput) and fragment in str(done.exception)


def test_a_mixed_up_option_is_one_line_with_exit_2(tmp_path):
    done = run_cli("perturb", "--model", "/nonexistent/model", "--data", "sst2:validation", "--output", str(tmp_path),
                   "--space", "embedding", "--attack", "pwws")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
