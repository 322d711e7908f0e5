"""RobustSentEmbed's perturbation generator (Rafiei Asl et al. 2024, eq. 2-7) against independent computations:
the token-level scaling index, the ε-balls, ρ = 0 / 1 as pure FGSM / PGD, the ablation switches."""

import pytest
import torch
from torch.nn import functional as F

from advcl.config.validate import RecipeError, build
from advcl.perturbers.robustsentembed import (
    RobustPerturbationConfig,
    robust_perturbation,
    scaling_index,
    token_step,
)
from objective_helpers import dropout_free_classifier
from tiny_models import tiny_batch

BATCH = tiny_batch()
MASK = BATCH["attention_mask"]
REAL = MASK.bool()


def config(**options) -> RobustPerturbationConfig:
    return build(RobustPerturbationConfig, options, "objective.perturbation")


def contrastive_setup():
    """A deterministic L_con(X + δ, {X⁺}) on the tiny BERT (no dropout, so X⁺ = X) and the clean lookups E."""
    model = dropout_free_classifier()
    embeds = model.word_embeddings(BATCH["input_ids"]).detach()
    positive = model(inputs_embeds=embeds, attention_mask=MASK).sentence.detach()

    def loss_fn(perturbed):
        z = model(inputs_embeds=perturbed, attention_mask=MASK).sentence
        logits = F.normalize(z, dim=-1) @ F.normalize(positive, dim=-1).T / 0.05
        return F.cross_entropy(logits, torch.arange(len(z)))

    return loss_fn, embeds


def gradient(loss_fn, point):
    point = point.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss_fn(point), point)
    return grad


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_token_scale_gradient_gives_the_largest_gradient_token_the_largest_token_level_perturbation(norm):
    torch.manual_seed(0)
    grad = torch.randn(2, 6, 8) * torch.tensor([1.0, 0.2, 3.0, 0.5, 0.1, 0.7]).view(1, 6, 1)  # token 2 dominates
    c = config(norm=norm, token_step_size=1e-3, eps=1.0, token_scale="gradient")
    eta = token_step(torch.zeros_like(grad), grad, MASK, c)
    size = eta.abs().amax(-1) if norm == "linf" else eta.norm(dim=-1)
    assert torch.equal(size.argmax(1), torch.tensor([2, 2]))
    # from η = 0 the step is n_i·γ·g_i/‖g_i‖: each token's size is γ·n_i, n_i = ‖g_i‖/max_j ‖g_j‖ over real tokens
    per_token = (grad.abs().amax(-1) if norm == "linf" else grad.norm(dim=-1)) * MASK
    expected = 1e-3 * per_token / per_token.amax(1, keepdim=True)
    assert torch.allclose(size, expected, rtol=1e-5, atol=1e-12)
    assert torch.allclose(scaling_index(grad * MASK.unsqueeze(-1), norm).squeeze(-1), expected / 1e-3, rtol=1e-6)
    assert torch.all(eta[~REAL] == 0)


# One sentence of three real tokens and one padding position, d = 2, γ = 0.5, ε = 1 (no clipping):
# η⁰ = [.3, .4], [0, .1], [.1, 0]; g = [3, 4], [0, −2], [0, 1]. By hand, η̃ = η⁰ + γ·g/‖g‖_P, then n_i·η̃_i:
# l2: η̃ = [.6, .8], [0, −.4], [.1, .5] (norms 1, .4, √.26); "perturbation": n = ‖η̃_i‖/1, "gradient": n = ‖g_i‖/5
# l∞: η̃ = [.675, .9], [0, −.4], [.1, .5] (max 0.9, .4, .5); "gradient": n = max|g_i|/4 = 1, .5, .25
ETA0 = torch.tensor([[[0.3, 0.4], [0.0, 0.1], [0.1, 0.0], [5.0, 5.0]]], dtype=torch.float64)
GRAD = torch.tensor([[[3.0, 4.0], [0.0, -2.0], [0.0, 1.0], [7.0, 7.0]]], dtype=torch.float64)
ONE_MASK = torch.tensor([[1, 1, 1, 0]])
ROOT = 0.26**0.5
BY_HAND = {
    ("l2", "perturbation"): [[0.6, 0.8], [0.0, -0.4 * 0.4], [0.1 * ROOT, 0.5 * ROOT]],
    ("l2", "gradient"): [[0.6, 0.8], [0.0, -0.4 * 0.4], [0.1 * 0.2, 0.5 * 0.2]],
    ("linf", "perturbation"): [[0.675, 0.9], [0.0, -0.4 * 0.4 / 0.9], [0.1 * 0.5 / 0.9, 0.5 * 0.5 / 0.9]],
    ("linf", "gradient"): [[0.675, 0.9], [0.0, -0.4 * 0.5], [0.1 * 0.25, 0.5 * 0.25]],
}


@pytest.mark.parametrize("norm, token_scale", list(BY_HAND))
def test_token_step_scales_by_the_stepped_perturbation_by_default_eq_2(norm, token_scale):
    options = {"norm": norm, "token_step_size": 0.5, "eps": 1.0}
    if token_scale == "gradient":
        options["token_scale"] = "gradient"
    eta = token_step(ETA0, GRAD, ONE_MASK, config(**options))
    expected = torch.tensor([BY_HAND[norm, token_scale] + [[0.0, 0.0]]], dtype=torch.float64)
    assert torch.allclose(eta, expected, rtol=1e-12, atol=1e-15)


def test_the_default_token_scale_is_the_papers_eq_2():
    assert RobustPerturbationConfig().token_scale == "perturbation"


def test_every_perturbation_stays_in_its_linf_ball_and_off_padding():
    loss_fn, embeds = contrastive_setup()
    eps = 2e-3  # steps far larger than ε, so that every projection is active
    c = config(eps=eps, pgd_step_size=0.05, fgsm_step_size=0.05, token_step_size=0.05, init_mag=1.0)
    torch.manual_seed(0)
    eta0 = torch.empty_like(embeds).uniform_(-0.1, 0.1)
    delta, eta = robust_perturbation(loss_fn, embeds, MASK, eta0, c)
    for perturbation in (delta, eta):
        assert perturbation.abs().max() <= eps
        assert perturbation[REAL].abs().max() > 0.5 * eps
        assert torch.all(perturbation[~REAL] == 0)
        assert not perturbation.requires_grad


def naive_trajectory(loss_fn, embeds, steps, update, init_mag, eps):
    """Algorithm 1's δ⁰ = U(−σ, σ)/√D, then ``steps`` times δ ← clamp(update(δ, ∇L(E + δ)), −ε, ε) on real tokens."""
    scale = init_mag / embeds.shape[-1] ** 0.5
    mask = MASK.unsqueeze(-1).float()
    delta = torch.empty_like(embeds).uniform_(-scale, scale) * mask
    for _ in range(steps):
        grad = gradient(loss_fn, embeds + delta) * mask
        delta = update(delta, grad).clamp(-eps, eps) * mask
    return delta


def test_rho_one_is_pure_k_step_pgd_and_rho_zero_pure_t_step_fgsm():
    loss_fn, embeds = contrastive_setup()
    options = dict(eps=0.05, pgd_step_size=0.01, pgd_steps=4, fgsm_step_size=0.004, fgsm_steps=3, init_mag=0.1,
                   token_level=False)
    alpha, beta = options["pgd_step_size"], options["fgsm_step_size"]

    def pgd(delta, grad):  # eq. 5 with P = ∞: the step divides by the example's largest gradient entry
        return delta + alpha * (grad / grad.abs().amax(dim=(1, 2), keepdim=True))

    def fgsm(delta, grad):  # eq. 6
        return delta + beta * grad.sign()

    torch.manual_seed(3)
    pure_pgd = naive_trajectory(loss_fn, embeds, 4, pgd, 0.1, 0.05)
    torch.manual_seed(3)
    pure_fgsm = naive_trajectory(loss_fn, embeds, 3, fgsm, 0.1, 0.05)
    zeros = torch.zeros_like(embeds)
    torch.manual_seed(3)
    delta_pgd, eta = robust_perturbation(loss_fn, embeds, MASK, zeros, config(rho=1.0, **options))
    torch.manual_seed(3)
    delta_fgsm, _ = robust_perturbation(loss_fn, embeds, MASK, zeros, config(rho=0.0, **options))
    assert torch.allclose(delta_pgd, pure_pgd, rtol=1e-4, atol=1e-7)  # float32 rounding through 4 passes
    assert torch.allclose(delta_fgsm, pure_fgsm, rtol=1e-4, atol=1e-7)
    assert not torch.allclose(pure_pgd, pure_fgsm)
    assert torch.all(eta == 0)  # token level off
    torch.manual_seed(3)
    mixed, _ = robust_perturbation(loss_fn, embeds, MASK, zeros, config(rho=0.5, **options))
    assert not torch.allclose(mixed, delta_pgd) and not torch.allclose(mixed, delta_fgsm)


def test_sentence_level_off_leaves_delta_zero_and_steps_eta_max_k_t_times():
    loss_fn, embeds = contrastive_setup()
    c = config(sentence_level=False, pgd_steps=2, fgsm_steps=3, eps=1.0, token_step_size=0.01)
    eta0 = torch.zeros_like(embeds)
    delta, eta = robust_perturbation(loss_fn, embeds, MASK, eta0, c)
    assert torch.all(delta == 0)
    expected = eta0
    for _ in range(3):
        expected = token_step(expected, gradient(loss_fn, embeds + expected), MASK, c)
    assert torch.allclose(eta, expected, rtol=1e-5, atol=1e-10)


@pytest.mark.parametrize(
    "options, key",
    [
        ({"rho": 1.5}, "objective.perturbation.rho"),
        ({"eps": 0.0}, "objective.perturbation.eps"),
        ({"fgsm_steps": 0}, "objective.perturbation.fgsm_steps"),
        ({"token_step_size": -1.0}, "objective.perturbation.token_step_size"),
        ({"sentence_level": False, "token_level": False}, "objective.perturbation.sentence_level"),
        ({"norm": "l1"}, "objective.perturbation.norm"),
    ],
)
def test_nonsensical_settings_name_the_key(options, key):
    with pytest.raises(RecipeError, match=key.replace(".", r"\.")):
        config(**options)
