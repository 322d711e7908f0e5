"""Embedding-space robustness evaluation (CARL Tables 4-5) against independent expectations."""

import json
import math

import pytest
import torch
from torch.nn import functional as F

from advcl.data.batching import EncodedDataset
from advcl.errors import BadInput
from advcl.evaluation.classify import evaluate
from advcl.evaluation.robustness import (
    AttackSettings, adversarial_delta, parse_eps, representation_distances, robustness,
)
from advcl.modeling.encoder import model_inputs
from conftest import run_cli, write_tiny_recipe
from tiny_models import tiny_batch, tiny_classifier


def random_data(n: int = 32, seed: int = 0) -> EncodedDataset:
    """Sentences of 3-9 tokens (so batches are padded) over the tiny vocabulary, random binary labels."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(3, 10, (n,), generator=generator).tolist()
    ids = [[2, *torch.randint(5, 100, (k - 2,), generator=generator).tolist(), 3] for k in lengths]
    return EncodedDataset(ids, None, torch.randint(0, 2, (n,), generator=generator).tolist(), pad_token_id=0)


@pytest.fixture(scope="module")
def model():
    return tiny_classifier().eval()


def run(model, eps, steps=3, **settings):
    return robustness(model, random_data(), eps, AttackSettings(steps=steps, **settings), batch_size=16, device="cpu")


@pytest.mark.parametrize("norm", ["l2", "linf"])
@pytest.mark.parametrize("step_factor", [None, 4.0])  # the default α, and α = 4ε so that every step is projected
def test_perturbation_stays_in_the_ball_and_off_padding(model, norm, step_factor):
    batch = tiny_batch()
    inputs = model_inputs(batch)
    embeds = model.word_embeddings(inputs.pop("input_ids")).detach()
    real = batch["attention_mask"].bool()
    for eps in (0.02, 0.5):
        settings = AttackSettings(norm=norm, steps=4, step_size=step_factor and step_factor * eps)
        with torch.no_grad():
            delta = adversarial_delta(model, embeds, inputs, batch["labels"], settings.perturber(eps))
        assert torch.equal(delta[~real], torch.zeros_like(delta[~real]))
        for b in range(len(delta)):
            size = delta[b][real[b]].norm() if norm == "l2" else delta[b][real[b]].abs().max()
            assert 0 < size <= eps * (1 + 1e-5)
            if step_factor:  # steps longer than the ball: the projection puts δ on its boundary
                assert size == pytest.approx(eps, rel=1e-5)

        def per_example_ce(e):
            return F.cross_entropy(model(inputs_embeds=e, **inputs).logits, batch["labels"], reduction="none")

        with torch.no_grad():
            assert (per_example_ce(embeds + delta) > per_example_ce(embeds)).all()  # the attack ascends the loss


def test_eps_zero_gives_clean_accuracy_and_zero_distances(model):
    result = run(model, [0.0])
    clean = evaluate(model, random_data(), 2, 16, "cpu")["accuracy"]  # the input_ids path, independently
    assert result["clean_accuracy"] == result["results"][0]["accuracy"] == clean
    assert result["results"][0]["cosine_distance"] == pytest.approx(0, abs=1e-6)
    assert result["results"][0]["euclidean_distance"] == pytest.approx(0, abs=1e-6)


def test_attack_lowers_accuracy_and_moves_representations(model):
    result = run(model, [0.02, 0.5, 5.0], norm="linf")
    clean = result["clean_accuracy"]
    assert 0 < clean and result["examples"] == 32
    rows = result["results"]
    assert all(r["accuracy"] <= clean for r in rows)
    assert rows[-1]["accuracy"] < clean
    assert all(r["cosine_distance"] > 0 and r["euclidean_distance"] > 0 for r in rows)
    assert rows[0]["euclidean_distance"] < rows[-1]["euclidean_distance"]


def test_distances_equal_a_naive_loop():
    generator = torch.Generator().manual_seed(3)
    clean, adversarial = torch.randn(5, 7, generator=generator), torch.randn(5, 7, generator=generator)
    cosine, euclidean = representation_distances(clean, adversarial)
    for i in range(5):
        a, b = clean[i].tolist(), adversarial[i].tolist()
        dot = sum(x * y for x, y in zip(a, b))
        norm_a, norm_b = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(y * y for y in b))
        assert cosine[i].item() == pytest.approx(1 - dot / (norm_a * norm_b), abs=1e-6)
        assert euclidean[i].item() == pytest.approx(math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b))), rel=1e-6)


@pytest.mark.parametrize("training", [False, True])
def test_model_weights_flags_grads_and_mode_are_left_alone(training):
    model = tiny_classifier()
    model.hf.bert.pooler.dense.bias.requires_grad_(False)
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    weights = {name: p.detach().clone() for name, p in model.named_parameters()}
    model.train(training)
    result = run(model, [0.1])
    assert model.training == training
    for name, p in model.named_parameters():
        assert torch.equal(p, weights[name]) and p.grad is None and p.requires_grad == flags[name], name
    assert result == run(model.eval(), [0.1])  # dropout was off during the attack


def test_seeded_reproducible_independent_of_the_other_eps_and_rng_untouched(model):
    state = torch.get_rng_state()
    first = run(model, [0.02, 0.1])
    assert torch.equal(torch.get_rng_state(), state)
    assert run(model, [0.02, 0.1]) == first
    assert run(model, [0.1])["results"] == first["results"][1:]
    assert run(model, [0.1], seed=1)["results"] != first["results"][1:]


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda: parse_eps("0.02,x"), "comma-separated list of numbers"),
        (lambda: parse_eps("0.02,-0.1"), "finite number >= 0, got -0.1"),
        (lambda: parse_eps("nan"), "finite number >= 0"),
        (lambda: AttackSettings(steps=0), "steps >= 1"),
        (lambda: AttackSettings(step_size=0.0), "step size must be a number > 0"),
        (lambda: AttackSettings(norm="l1"), "norm must be l2 or linf"),
        (lambda: AttackSettings(attack="pdg"), "did you mean 'pgd'"),
        (lambda: AttackSettings(attack="smart"), "cannot be the robustness attack"),
    ],
)
def test_bad_attack_settings(make, fragment):
    with pytest.raises(BadInput) as caught:
        make()
    assert fragment in str(caught.value)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_model_dir):
    folder = tmp_path_factory.mktemp("robust")
    recipe = write_tiny_recipe(folder, tiny_model_dir, data={"max_train_examples": 16, "max_eval_examples": 16},
                               train={"epochs": 1})
    done = run_cli("train", "--recipe", str(recipe))
    assert done.returncode == 0, done.stderr
    return folder / "runs" / "tiny"


ROBUST = ["--data", "sst2:validation", "--max-examples", "24", "--robust", "pgd", "--eps", "0,0.5", "--steps", "2"]


def test_cli_table_writes_the_run_report(tiny_run):
    done = run_cli("eval", "--model", str(tiny_run), *ROBUST)
    assert done.returncode == 0, done.stderr
    for header in ("ε", "accuracy", "cosine distance", "euclidean distance", "clean", "0.5"):
        assert header in done.stdout
    report = json.loads((tiny_run / "report.json").read_text())
    assert report["status"] == "completed"  # the training report is kept
    entry = report["robustness"]["sst2:validation@24"]  # a --max-examples sample, kept beside the whole split
    assert entry["checkpoint"].startswith(str(tiny_run / "checkpoints"))
    assert [r["eps"] for r in entry["results"]] == [0.0, 0.5] and entry["examples"] == 24 and entry["steps"] == 2
    assert entry["results"][0]["accuracy"] == entry["clean_accuracy"]


def invoke(*args):
    """``advcl ARGS`` in this process (no interpreter start-up): the parsing and output of the real command."""
    from typer.testing import CliRunner

    from advcl.cli import app

    return CliRunner().invoke(app, list(args))


def test_cli_json(tiny_model_dir):
    done = invoke("eval", "--model", str(tiny_model_dir), *ROBUST, "--norm", "linf", "--step-size", "0.3", "--json")
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    robust = result["robustness"]
    assert robust["clean_accuracy"] == result["accuracy"] and robust["norm"] == "linf"
    assert [(r["eps"], r["step_size"]) for r in robust["results"]] == [(0.0, 0.3), (0.5, 0.3)]
    assert all(r["accuracy"] <= result["accuracy"] for r in robust["results"])
    assert not (tiny_model_dir / "report.json").exists()  # a model folder has no report


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        (["--robust", "pdg"], "unknown perturber 'pdg' (did you mean 'pgd'?"),
        (["--robust", "pgd", "--eps", "0.02,-1"], "got -1.0"),
        (["--robust", "pgd", "--eps", "0.02;0.1"], "comma-separated list"),
        (["--robust", "pgd", "--steps", "0"], "steps >= 1"),
        (["--robust", "pgd", "--norm", "l1"], "norm must be l2 or linf"),
        (["--eps", "0.1"], "add --robust pgd"),
    ],
)
def test_cli_bad_attack_options_fail_before_loading_anything(options, fragment):
    done = invoke("eval", "--model", "/nonexistent/model", "--data", "sst2:validation", *options)
    assert isinstance(done.exception, BadInput) and fragment in str(done.exception)


def test_cli_bad_attack_is_one_line_with_exit_2():
    args = ["eval", "--model", "/nonexistent/model", "--data", "sst2:validation", "--robust", "pdg"]
    done = run_cli(*args)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "did you mean 'pgd'?" in lines[0]
