"""SimCSE, USCAL and RobustSentEmbed against computations written out independently on a tiny BERT; that each
of them (and mlm) lowers its own loss over a few steps; recipe errors; and (integration) MiniLM on real sentences."""

import math

import pytest
import torch
from torch.nn import functional as F
from transformers import BertForMaskedLM, BertTokenizerFast

from advcl import plugins
from advcl.config.validate import RecipeError, build
from advcl.errors import BadInput
from advcl.losses.multi_positive_infonce import MultiPositiveInfoNCE
from advcl.objectives import robustsentembed
from advcl.objectives.robustsentembed import RobustSentEmbed
from objective_helpers import dropout_free_classifier, make_objective
from sentence_helpers import random_sentences
from tiny_models import tiny_bert_config, tiny_classifier

TAU = 0.05
THREE = {  # a hand-made batch of three sentences of different lengths: [CLS] = 2, [SEP] = 3, padding 0
    "input_ids": torch.tensor([[2, 10, 11, 12, 3], [2, 20, 21, 3, 0], [2, 30, 3, 0, 0]]),
    "attention_mask": torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0], [1, 1, 1, 0, 0]]),
    "index": torch.arange(3),
}


@pytest.fixture(scope="module")
def generator_dir(tmp_path_factory):
    """A Hugging Face masked-LM folder over the tiny 100-token vocabulary ([MASK] = 4)."""
    folder = tmp_path_factory.mktemp("generator")
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(95)]
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    torch.manual_seed(0)
    BertForMaskedLM(tiny_bert_config()).save_pretrained(folder)
    return folder


def cosine(a, b) -> float:
    a, b = a.double(), b.double()
    return float(a @ b / (a.norm() * b.norm()))


def naive_infonce(anchors, positives) -> float:
    """−1/N Σ_i log e^{cos(a_i, p_i)/τ} / Σ_j e^{cos(a_i, p_j)/τ}, one term at a time."""
    total = 0.0
    for i in range(len(anchors)):
        terms = [math.exp(cosine(anchors[i], positives[j]) / TAU) for j in range(len(positives))]
        total -= math.log(terms[i] / sum(terms))
    return total / len(anchors)


# -- SimCSE --------------------------------------------------------------------------------------------------------

def test_simcse_loss_on_three_sentences_is_the_naive_infonce_of_two_dropout_views():
    model = tiny_classifier(seed=0).train()  # dropout on
    objective = make_objective("simcse", model)
    torch.manual_seed(11)
    out = objective.step(THREE, model, ctx=None)
    torch.manual_seed(11)  # the same dropout masks: one pass over the batch stacked twice
    doubled = {k: torch.cat([THREE[k], THREE[k]]) for k in ("input_ids", "attention_mask")}
    h = model(**doubled).sentence
    z = torch.tanh(h @ objective.head[0].weight.T + objective.head[0].bias)
    z1, z2 = z[:3], z[3:]
    assert not torch.allclose(z1, z2)  # two different dropout views
    assert out.loss.item() == pytest.approx(naive_infonce(z1.detach(), z2.detach()), rel=1e-5)


def test_without_dropout_the_two_views_are_identical_and_the_positive_logit_is_one_over_tau():
    model = dropout_free_classifier()
    objective = make_objective("simcse", model)
    views = objective.views(THREE, model)
    assert torch.allclose(views.z1, views.z2, atol=1e-6)
    logits = F.normalize(views.z1, dim=-1) @ F.normalize(views.z2, dim=-1).T / TAU
    assert torch.allclose(logits.diag(), torch.full((3,), 1 / TAU), rtol=1e-5)
    assert torch.all(logits.diag() >= logits.max(1).values - 1e-4)


# -- USCAL ---------------------------------------------------------------------------------------------------------

def test_uscal_adds_alpha_times_infonce_with_the_fgm_view_of_the_contrastive_gradient():
    model = dropout_free_classifier()
    eps, alpha = 0.3, 0.4
    objective = make_objective("uscal", model, perturber={"name": "fgm", "eps": eps}, adv_weight=alpha)
    out = objective.step(THREE, model, ctx=None)

    ids, mask = THREE["input_ids"], THREE["attention_mask"]
    e1 = model.word_embeddings(ids).detach().requires_grad_(True)  # E₁, view 1 on its own
    e2 = model.word_embeddings(ids).detach()
    z1 = objective.head(model(inputs_embeds=e1, attention_mask=mask).sentence)
    z2 = objective.head(model(inputs_embeds=e2, attention_mask=mask).sentence)
    (grad,) = torch.autograd.grad(objective.contrast(z1, z2), e1)
    grad = grad * mask.unsqueeze(-1)
    delta = eps * grad / grad.flatten(1).norm(dim=1).view(-1, 1, 1)  # ‖·‖₂ over each example's tokens
    z_adv = objective.head(model(inputs_embeds=e2 + delta, attention_mask=mask).sentence)
    expected = naive_infonce(z1.detach(), z2.detach()) + alpha * naive_infonce(z1.detach(), z_adv.detach())
    assert out.loss.item() == pytest.approx(expected, rel=1e-4)
    assert out.logs["contrast_adv"] > out.logs["contrast"]  # the adversarial view is harder


def test_uscal_refuses_a_multi_step_perturber():
    cls = plugins.registry().get("objective", "uscal").cls
    with pytest.raises(RecipeError, match="objective.perturber"):
        build(cls.Config, {"perturber": "pgd"}, "objective")


# -- RobustSentEmbed -----------------------------------------------------------------------------------------------

def test_the_multi_positive_loss_is_eq_9_term_by_term():
    torch.manual_seed(0)
    z, z_pos, z_adv = torch.randn(3, 3, 8).unbind(0)
    loss = MultiPositiveInfoNCE()(z, z_pos, z_adv)
    expected = 0.0
    for i in range(3):
        positive = math.exp(cosine(z[i], z_pos[i]) / TAU) + math.exp(cosine(z[i], z_adv[i]) / TAU)
        everything = sum(math.exp(cosine(z[i], v[j]) / TAU) for v in (z_pos, z_adv) for j in range(3))
        expected -= math.log(positive / everything) / 3
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert MultiPositiveInfoNCE()(z, z_pos).item() == pytest.approx(naive_infonce(z, z_pos), rel=1e-5)


def test_robustsentembed_loss_is_eq_10_and_the_token_memory_keeps_the_final_eta(monkeypatch, generator_dir):
    model = dropout_free_classifier()
    objective = make_objective("robustsentembed", model, generator=str(generator_dir))
    ids, mask = THREE["input_ids"], THREE["attention_mask"]
    torch.manual_seed(0)
    delta = torch.randn(3, 5, 32) * 1e-2 * mask.unsqueeze(-1)
    eta = torch.randn(3, 5, 32) * 1e-2 * mask.unsqueeze(-1)
    seen = {}

    def fixed_perturbation(loss_fn, embeds, attention_mask, eta0, config):
        seen["eta0"] = eta0
        return delta, eta

    def fixed_rtd(edited, perturbation, sentence, replaced, attention_mask, token_type_ids):
        seen["rtd"] = (perturbation, sentence)
        return torch.tensor(0.7)

    monkeypatch.setattr(robustsentembed, "robust_perturbation", fixed_perturbation)
    monkeypatch.setattr(objective.detector, "forward", fixed_rtd)
    memory = objective.token_memory.clone()
    out = objective.step(THREE, model, ctx=None)

    assert torch.equal(seen["eta0"], memory[ids])  # η⁰ = 𝒱[w]
    e = model.word_embeddings(ids).detach()
    z = objective.head(model(inputs_embeds=e, attention_mask=mask).sentence).detach()  # = z⁺ without dropout
    z_adv = objective.head(model(inputs_embeds=e + delta, attention_mask=mask).sentence).detach()
    contrast = MultiPositiveInfoNCE()
    expected = contrast(z, z, z_adv) + contrast(z_adv, z) / 128 + 0.005 * 0.7
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert seen["rtd"][0] is eta
    assert torch.allclose(seen["rtd"][1], model(input_ids=ids, attention_mask=mask).sentence, atol=1e-6)  # h
    real = mask.bool()
    assert torch.equal(objective.token_memory[10], eta[0, 1])  # token 10 occurs once
    assert torch.allclose(objective.token_memory[2], eta[:, 0].mean(0))  # [CLS] occurs thrice: the mean
    assert torch.equal(objective.token_memory[40], memory[40])  # absent tokens keep their rows
    assert objective.token_memory[ids[real]].shape == (real.sum(), 32)


def test_rtd_gradient_reaches_the_encoder_through_h(generator_dir):
    model = tiny_classifier(seed=0)
    objective = make_objective("robustsentembed", model, generator=str(generator_dir))
    batch = random_sentences(4, 8)
    edited = batch["input_ids"].clone()
    edited[:, 2] = 7
    h = model(**{k: batch[k] for k in ("input_ids", "attention_mask")}).sentence
    eta = torch.zeros(4, 8, 32)
    loss = objective.detector(edited, eta, h, edited != batch["input_ids"], batch["attention_mask"])
    loss.backward()
    assert model.hf.bert.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0
    assert all(param.grad is not None for param in objective.detector.parameters())  # D and its scorer train


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_rtd_is_electras_eq_8_with_d_the_probability_of_original_and_its_reduction(generator_dir, reduction):
    """Eq. 8 term by term: −log D on kept tokens, −log(1 − D) on replaced ones, D = P(original) = 1 − σ(logit),
    over the real positions after the first; "mean" over all those tokens, "sum" per sentence then the mean."""
    model = tiny_classifier(seed=0)
    detector = make_objective("robustsentembed", model, generator=str(generator_dir),
                              detector={"name": "replaced_token_detection", "reduction": reduction}).detector
    detector.eval()  # dropout off, so that the recomputation below sees the same network
    ids, mask = THREE["input_ids"], THREE["attention_mask"]
    edited = ids.clone()
    edited[0, 2], edited[1, 1] = 50, 60
    replaced = edited != ids
    torch.manual_seed(1)
    eta, h = torch.randn(3, 5, 32) * 1e-2, torch.randn(3, 32)
    loss = detector(edited, eta, h, replaced, mask)

    with torch.no_grad():
        embeds = detector.discriminator.get_input_embeddings()(edited) + eta
        embeds[:, 0] = h
        states = detector.discriminator(inputs_embeds=embeds, attention_mask=mask).last_hidden_state
        logits = detector.scorer(states).squeeze(-1).double()
    per_sentence = []
    for i in range(3):
        terms = []
        for j in range(1, int(mask[i].sum())):
            d = 1 - torch.sigmoid(logits[i, j])  # P(token j is original)
            terms.append(-torch.log(1 - d) if replaced[i, j] else -torch.log(d))
        per_sentence.append(terms)
    tokens = [t for terms in per_sentence for t in terms]
    expected = sum(tokens) / len(tokens) if reduction == "mean" else sum(sum(t) for t in per_sentence) / 3
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert len(tokens) == 4 + 3 + 2  # sentence lengths 5, 4, 3 without their first position


def test_rtd_reduction_defaults_to_the_mean_that_lambda_2_was_set_for():
    assert plugins.registry().get("loss", "replaced_token_detection").cls.Config().reduction == "mean"


@pytest.mark.parametrize(
    "options, error, message",
    [
        ({"generator": ""}, RecipeError, "'objective.generator' is empty"),
        ({"generator": "/nowhere/mlm"}, BadInput, "objective.generator: masked LM /nowhere/mlm does not exist"),
        ({"rtd_weight": -1.0}, RecipeError, "objective.rtd_weight"),
        ({"mask_rate": 1.0}, RecipeError, "objective.mask_rate"),
    ],
)
def test_robustsentembed_settings_errors_name_the_key(options, error, message):
    with pytest.raises(error, match=message):
        make_objective("robustsentembed", tiny_classifier(), **options)


def test_ablations_build_without_a_generator_and_without_a_token_memory():
    objective = make_objective("robustsentembed", tiny_classifier(), rtd=False, generator="",
                               perturbation={"token_level": False})
    assert not hasattr(objective, "detector") and not hasattr(objective, "token_memory")
    assert build(RobustSentEmbed.Config, {}, "objective").generator == "runs/mlm_head_sentences"  # the mlm recipe's run


# -- every objective learns ------------------------------------------------------------------------------------------

LEARNERS = [
    ("simcse", {}),
    ("uscal", {"perturber": {"name": "fgm", "eps": 0.05}}),
    ("robustsentembed", {}),
    ("robustsentembed", {"rtd": False, "perturbation": {"rho": 0.0, "token_level": False}}),
    ("robustsentembed", {"perturbation": {"sentence_level": False}}),
    ("mlm", {"mask_token_id": 4}),
]


def one_word_sentences(n: int, length: int) -> dict:
    """Sentences that repeat one word each (different lengths): a masked word is predictable from the others."""
    batch = random_sentences(n, length)
    words = batch["input_ids"][:, 1:2].expand_as(batch["input_ids"])
    batch["input_ids"] = torch.where(batch["input_ids"] > 3, words, batch["input_ids"])
    return batch


@pytest.mark.parametrize("name, options", LEARNERS)
def test_each_objective_lowers_its_loss_on_a_tiny_model(name, options, generator_dir):
    model = tiny_classifier(seed=0)
    if name == "robustsentembed" and options.get("rtd", True):
        options = {**options, "generator": str(generator_dir)}
    objective = make_objective(name, model, **options)
    batch = one_word_sentences(8, 10)
    optimizer = torch.optim.AdamW(list(model.parameters()) + list(objective.parameters()), lr=1e-2)

    def loss_at_seed() -> float:
        torch.manual_seed(123)  # the same dropout, masks and perturbation start every time
        return objective.step(batch, model, ctx=None).loss.item()

    before = loss_at_seed()
    for _ in range(20):
        loss = objective.step(batch, model, ctx=None).loss  # none of these calls ctx.backward
        assert math.isfinite(loss.item())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert loss_at_seed() < 0.6 * before


# -- the real encoder ----------------------------------------------------------------------------------------------

@pytest.mark.integration
def test_minilm_mlm_head_run_is_robustsentembeds_generator_on_real_sentences(tmp_path):
    """One mlm step on MiniLM, saved as a run folder, then one RobustSentEmbed step with it as the generator."""
    import json

    from conftest import SHARED_DATA

    from advcl.modeling.encoder import EncoderClassifier
    from advcl.modeling.loading import load_classifier
    from sentence_helpers import write_run_folder

    hf, tokenizer, path = load_classifier("all-MiniLM-L6-v2")
    model = EncoderClassifier(hf).train()
    lines = (SHARED_DATA / "sentences" / "train.jsonl").read_text().splitlines()[:8]
    encoded = tokenizer([json.loads(line)["text"] for line in lines], padding=True, truncation=True, max_length=32,
                        return_tensors="pt")
    batch = {**encoded, "index": torch.arange(len(lines))}
    mlm = make_objective("mlm", model)
    loss = mlm.step(batch, model, ctx=None).loss
    assert 5 < loss.item() < 15  # a fresh head over 30,522 tokens: about log(30522) ≈ 10.3
    run = write_run_folder(tmp_path / "mlm_head", model, mlm, tokenizer)
    with pytest.raises(BadInput, match="has no trained masked-LM head"):
        make_objective("robustsentembed", model, generator=path)
    objective = make_objective("robustsentembed", model, generator=str(run.path))
    model.zero_grad()
    out = objective.step(batch, model, ctx=None)
    out.loss.backward()
    assert math.isfinite(out.loss.item()) and model.word_embeddings.weight.grad.abs().sum() > 0
    assert 0 < out.logs["replaced"] < 0.15  # 15 % masked, some refilled with the original token
