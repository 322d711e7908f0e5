"""FGSM / FGM / PGD adversarial training against gradients computed by hand, and their recipe checks."""

import pytest
import torch
from torch.nn import functional as F

from advcl import plugins
from advcl.config.validate import RecipeError, build
from advcl.objectives.embedding_at import FGMTraining, FGSMTraining, PGDTraining
from objective_helpers import Calls, assert_same_grads, dropout_free_classifier, grads, make_objective, run_step
from objective_helpers import watch_encoder
from tiny_models import tiny_batch

BATCH = tiny_batch()
MASK = BATCH["attention_mask"]
IDS = BATCH["input_ids"]


def ce_at(model, embeds):
    """The batch's CE at ``inputs_embeds``, logits cast to float32 as the ``cross_entropy`` loss does."""
    return F.cross_entropy(model(inputs_embeds=embeds, attention_mask=MASK).logits.float(), BATCH["labels"])


@pytest.mark.parametrize(
    "name, options, alpha",
    [
        ("fgsm_at", {"perturber": {"name": "fgsm", "eps": 0.01}, "alpha": 0.7}, 0.7),
        ("fgsm_at", {"perturber": {"name": "fgsm", "eps": 0.01}, "alpha": 0.0}, 0.0),
        ("fgm_at", {"perturber": {"name": "fgm", "eps": 0.5}}, 0.5),  # Goodfellow's α = 0.5 by default
    ],
)
def test_one_step_training_is_two_passes_with_the_gradient_of_the_alpha_mixture(name, options, alpha):
    """Goodfellow et al. 2015, §6: the gradient is α·∇CE(x) + (1 − α)·∇CE(x_adv), built by hand here."""
    model = dropout_free_classifier().double()
    objective = make_objective(name, model, **options)
    calls = Calls()
    with watch_encoder(model) as log:
        out = run_step(objective, BATCH, model, calls=calls)
    actual = grads(model)
    clean_backward = int(alpha > 0)  # α = 0: ∇_E CE from an input-only backward, no parameter gradient
    assert (log.forwards, calls.backward) == (2, 1 + clean_backward)

    embeds = model.word_embeddings(IDS)
    clean = ce_at(model, embeds)
    (g,) = torch.autograd.grad(clean, embeds, retain_graph=True)
    g = g * MASK.unsqueeze(-1)
    eps = options["perturber"]["eps"]
    delta = eps * (g.sign() if name == "fgsm_at" else g / g.flatten(1).norm(dim=1).view(-1, 1, 1))
    assert torch.allclose(log.embeds[1] - log.embeds[0], delta, rtol=1e-9, atol=1e-12)
    adversarial = ce_at(model, model.word_embeddings(IDS) + delta)
    assert out.loss.item() == pytest.approx((alpha * clean + (1 - alpha) * adversarial).item(), rel=1e-12)
    (alpha * clean + (1 - alpha) * adversarial).backward()
    assert_same_grads(actual, grads(model))


@pytest.mark.parametrize("alpha", [-0.1, 1.5])
def test_one_step_alpha_outside_zero_one_is_a_one_line_recipe_error(alpha):
    with pytest.raises(RecipeError, match=r"^'objective.alpha' must be between 0 and 1, got"):
        build(FGSMTraining.Config, {"alpha": alpha}, "objective")


def test_adv_weight_is_gone_in_favour_of_alpha():
    with pytest.raises(RecipeError, match=r"adv_weight.*replaced by .objective\.alpha"):
        build(FGMTraining.Config, {"adv_weight": 1.0}, "objective")


@pytest.mark.parametrize("clean_weight", [0.0, 0.5])
def test_pgd_training_is_k_attack_passes_then_the_ce_at_the_attack_point(clean_weight):
    model = dropout_free_classifier().double()
    pgd = {"name": "pgd", "eps": 0.3, "step_size": 0.1, "steps": 3}
    objective = make_objective("pgd_at", model, perturber=pgd, clean_weight=clean_weight)
    calls = Calls()
    with watch_encoder(model) as log:
        out = run_step(objective, BATCH, model, calls=calls)
    actual = grads(model)
    clean_pass = int(clean_weight > 0)
    assert (log.forwards, calls.backward) == (clean_pass + 3 + 1, clean_pass + 1)

    embeds = model.word_embeddings(IDS).detach()
    delta = log.embeds[-1] - embeds
    assert torch.all(delta.flatten(1).norm(dim=1) <= 0.3 + 1e-9) and torch.all(delta[~MASK.bool()] == 0)
    adversarial = ce_at(model, model.word_embeddings(IDS) + delta)
    assert adversarial > ce_at(model, embeds)
    loss = adversarial + clean_weight * ce_at(model, model.word_embeddings(IDS))
    assert out.loss.item() == pytest.approx(loss.item(), rel=1e-9)
    loss.backward()
    assert_same_grads(actual, grads(model))


def test_each_objective_defaults_to_its_own_perturber():
    for cls, name in ((FGSMTraining, "fgsm"), (FGMTraining, "fgm"), (PGDTraining, "pgd")):
        assert build(cls.Config, {}, "objective").perturber.name == name
    assert plugins.registry().get("objective", "pgd_at").cls is PGDTraining


def test_a_one_step_objective_refuses_a_multi_step_perturber():
    with pytest.raises(RecipeError, match="'objective.perturber' must be a one-step perturber such as fgsm or fgm"):
        build(FGSMTraining.Config, {"perturber": "pgd"}, "objective")
