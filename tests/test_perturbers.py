"""Embedding-space perturbers against independent expectations: finite differences, closed-form optima, norms."""

import pytest
import torch
from torch.nn import functional as F

from advcl.config.validate import RecipeError, build
from advcl.perturbers import fgm, fgsm, pgd, smart
from advcl.perturbers.fgm import FGM
from advcl.perturbers.fgsm import FGSM
from advcl.perturbers.freelb import FreeLBConfig, freelb_init, freelb_update
from advcl.perturbers.matrix import matrix_gradient, matrix_perturbation
from advcl.perturbers.pgd import PGD
from advcl.perturbers.smart import SMART
from tiny_models import tiny_batch, tiny_classifier

BATCH = tiny_batch()
MASK = BATCH["attention_mask"]
REAL = MASK.bool()


@pytest.fixture(scope="module")
def attack():
    """A tiny BERT in float64 (finite differences need it), its clean embeddings and its CE as a function of them."""
    model = tiny_classifier().double().eval()
    embeds = model.word_embeddings(BATCH["input_ids"]).detach()

    def loss_fn(e):
        return F.cross_entropy(model(inputs_embeds=e, attention_mask=MASK).logits, BATCH["labels"])

    return model, embeds, loss_fn


@pytest.fixture(scope="module")
def fd_grad(attack):
    """Central finite differences of the batch loss w.r.t. every real-token embedding coordinate.

    The batch loss is the mean of per-example CEs, so each example's coordinates are differenced in one forward
    over copies of that example, each copy moved by ±h along one coordinate.
    """
    model, embeds, _ = attack
    n, length, dim = embeds.shape
    h = 1e-6
    grad = torch.zeros_like(embeds)
    with torch.no_grad():
        for b in range(n):
            coords = REAL[b].unsqueeze(-1).expand(length, dim).flatten().nonzero().flatten()
            steps = torch.zeros(len(coords), length * dim, dtype=embeds.dtype)
            steps[torch.arange(len(coords)), coords] = h
            steps = steps.view(-1, length, dim)

            def example_ce(x):
                logits = model(inputs_embeds=x, attention_mask=MASK[b].expand(len(x), -1)).logits
                return F.cross_entropy(logits, BATCH["labels"][b].expand(len(x)), reduction="none")

            grad[b].view(-1)[coords] = (example_ce(embeds[b] + steps) - example_ce(embeds[b] - steps)) / (2 * h * n)
    return grad


def example_norms(x):
    return x.flatten(1).norm(dim=1)


def test_fgsm_moves_every_real_coordinate_by_exactly_eps_along_the_gradient_sign(attack, fd_grad):
    _, embeds, loss_fn = attack
    delta = FGSM(FGSM.Config(eps=0.01))(loss_fn, embeds, MASK)
    assert torch.all(delta[~REAL] == 0)
    assert torch.all(delta[REAL].abs() == 0.01)
    assert torch.equal(delta[REAL].sign(), fd_grad[REAL].sign())


def test_fgm_is_eps_long_per_example_along_the_finite_difference_gradient(attack, fd_grad):
    _, embeds, loss_fn = attack
    delta = FGM(FGM.Config(eps=0.3))(loss_fn, embeds, MASK)
    assert torch.allclose(example_norms(delta), torch.full((2,), 0.3, dtype=delta.dtype), rtol=1e-12)
    expected = 0.3 * fd_grad / example_norms(fd_grad).view(-1, 1, 1)
    assert torch.allclose(delta, expected, atol=1e-7)
    assert torch.all(delta[~REAL] == 0)


def test_fgm_token_scope_gives_each_real_token_norm_eps(attack, fd_grad):
    _, embeds, loss_fn = attack
    delta = FGM(FGM.Config(eps=0.2, scope="token"))(loss_fn, embeds, MASK)
    assert torch.allclose(delta[REAL].norm(dim=-1), torch.full((int(REAL.sum()),), 0.2, dtype=delta.dtype))
    expected = 0.2 * fd_grad[REAL] / fd_grad[REAL].norm(dim=-1, keepdim=True)
    assert torch.allclose(delta[REAL], expected, atol=1e-7)
    assert torch.all(delta[~REAL] == 0)


@pytest.mark.parametrize("norm", ["l2", "linf"])
@pytest.mark.parametrize("scope", ["sentence", "token"])
def test_pgd_never_leaves_the_ball_and_raises_the_loss(attack, norm, scope):
    _, embeds, loss_fn = attack
    torch.manual_seed(0)
    eps = 0.05
    config = PGD.Config(eps=eps, step_size=0.5, steps=3, norm=norm, scope=scope, random_init=True)
    delta = PGD(config)(loss_fn, embeds, MASK)
    if norm == "linf":
        assert delta.abs().max() <= eps
    elif scope == "sentence":
        assert torch.all(example_norms(delta) <= eps * (1 + 1e-12))
    else:
        assert torch.all(delta.norm(dim=-1) <= eps * (1 + 1e-12))
    assert torch.all(delta[~REAL] == 0)
    assert loss_fn(embeds + delta) > loss_fn(embeds)


def test_pgd_random_start_is_inside_the_ball_and_zero_on_padding(attack):
    _, embeds, _ = attack
    torch.manual_seed(0)
    delta = PGD(PGD.Config(eps=0.05, step_size=0.01, steps=1, norm="l2"))(lambda e: 0 * e.sum(), embeds, MASK)
    assert torch.all(example_norms(delta) <= 0.05) and torch.all(example_norms(delta) > 0)
    assert torch.all(delta[~REAL] == 0)


def quadratic(embeds, target):
    """``−½‖x − E − c‖²`` over real tokens: its maximiser over δ = x − E in a ball is the projection of c."""
    mask = MASK.unsqueeze(-1).double()
    return lambda x: -0.5 * (((x - embeds - target) * mask) ** 2).sum()


def test_pgd_l2_converges_to_the_projection_of_the_unconstrained_optimum():
    torch.manual_seed(1)
    embeds, target = torch.randn(2, 6, 4, dtype=torch.float64), torch.randn(2, 6, 4, dtype=torch.float64)
    eps = 0.5
    config = PGD.Config(eps=eps, step_size=eps / 10, steps=200, norm="l2", scope="sentence", random_init=True)
    delta = PGD(config)(quadratic(embeds, target), embeds, MASK)
    masked = target * MASK.unsqueeze(-1)
    assert torch.allclose(delta, eps * masked / example_norms(masked).view(-1, 1, 1), atol=1e-4)


def test_pgd_linf_converges_to_the_clamped_optimum():
    torch.manual_seed(2)
    eps = 0.1
    embeds = torch.randn(2, 6, 4, dtype=torch.float64)
    target = torch.randn(2, 6, 4, dtype=torch.float64).sign() * (2 * eps + torch.rand(2, 6, 4, dtype=torch.float64))
    config = PGD.Config(eps=eps, step_size=eps / 4, steps=20, norm="linf", random_init=True)
    delta = PGD(config)(quadratic(embeds, target), embeds, MASK)
    assert torch.equal(delta, target.clamp(-eps, eps) * MASK.unsqueeze(-1))


@pytest.mark.parametrize(
    ("cls", "options", "key"),
    [(PGD, {"eps": 0.0}, "eps"), (PGD, {"steps": 0}, "steps"), (FGSM, {"eps": -0.1}, "eps"),
     (FGM, {"eps": -1}, "eps"), (SMART, {"sigma": -1e-5}, "sigma")],
)
@pytest.mark.parametrize("where", ["objective.perturber", "objective.adversary.perturber"])
def test_nonsensical_perturber_options_are_recipe_errors_naming_the_key_where_it_was_read(cls, options, key, where):
    with pytest.raises(RecipeError, match=f"^'{where}.{key}' must"):
        build(cls.Config, options, where)


def test_smart_without_noise_is_one_step_of_eta_times_g_over_its_per_token_linf_norm(attack, fd_grad):
    """SMART's Algorithm 1: ``η·g/‖g‖_∞``, the norm per token (scope "token"), checked on finite differences."""
    _, embeds, loss_fn = attack
    delta = SMART(SMART.Config(sigma=0.0, step_size=1e-3))(loss_fn, embeds, MASK)
    largest = fd_grad.abs().amax(-1, keepdim=True)
    expected = torch.where(REAL.unsqueeze(-1), 1e-3 * fd_grad / largest.clamp_min(1e-300), 0.0)
    assert torch.allclose(delta, expected, rtol=1e-4, atol=1e-9)
    assert torch.allclose(delta[REAL].abs().amax(-1), torch.full((int(REAL.sum()),), 1e-3, dtype=delta.dtype))
    assert delta[REAL].abs().mean() < 0.7e-3  # not sign(g): most entries move by less than η


def test_smart_sentence_scope_divides_by_the_largest_entry_of_the_whole_example(attack, fd_grad):
    _, embeds, loss_fn = attack
    delta = SMART(SMART.Config(sigma=0.0, step_size=1e-3, scope="sentence"))(loss_fn, embeds, MASK)
    largest = (fd_grad * MASK.unsqueeze(-1)).abs().flatten(1).amax(1).view(-1, 1, 1)
    assert torch.allclose(delta, 1e-3 * fd_grad * MASK.unsqueeze(-1) / largest, rtol=1e-4, atol=1e-9)


def test_smart_direction_sign_keeps_the_former_sign_step(attack, fd_grad):
    _, embeds, loss_fn = attack
    delta = SMART(SMART.Config(sigma=0.0, step_size=1e-3, direction="sign"))(loss_fn, embeds, MASK)
    assert torch.equal(delta, 1e-3 * fd_grad.sign())


def test_smart_adds_gaussian_noise_of_scale_sigma_on_real_tokens_only():
    torch.manual_seed(3)
    embeds, slope = torch.randn(2, 6, 32, dtype=torch.float64), torch.randn(2, 6, 32, dtype=torch.float64)
    delta = SMART(SMART.Config(sigma=1e-5, step_size=1e-3))(lambda x: (x * slope).sum(), embeds, MASK)
    noise = (delta - 1e-3 * slope / slope.abs().amax(-1, keepdim=True))[REAL]
    assert torch.all(delta[~REAL] == 0)
    assert 0.85e-5 < noise.std() < 1.15e-5


def test_smart_l2_token_step_has_norm_eta_per_token(attack):
    _, embeds, loss_fn = attack
    delta = SMART(SMART.Config(sigma=0.0, step_size=1e-3, norm="l2", scope="token"))(loss_fn, embeds, MASK)
    assert torch.allclose(delta[REAL].norm(dim=-1), torch.full((int(REAL.sum()),), 1e-3, dtype=delta.dtype))


def test_perturbers_leave_parameter_gradients_untouched(attack):
    model, embeds, loss_fn = attack
    for perturber in (FGSM(), FGM(), PGD(), SMART()):
        perturber(loss_fn, embeds, MASK)
    assert all(p.grad is None for p in model.parameters())


def test_freelb_init_is_uniform_within_gamma_over_sqrt_length_times_dim():
    torch.manual_seed(4)
    embeds = torch.randn(2, 6, 32, dtype=torch.float64)
    delta = freelb_init(embeds, MASK, init_mag=0.6)
    bounds = 0.6 / torch.tensor([6 * 32, 4 * 32], dtype=torch.float64).sqrt()
    assert torch.all(delta[~REAL] == 0)
    for i, bound in enumerate(bounds):
        values = delta[i][REAL[i]]
        assert values.abs().max() <= bound and values.abs().max() > 0.95 * bound
        assert values.min() < 0 < values.max()


def test_freelb_update_takes_a_normalised_step_per_example_then_projects():
    torch.manual_seed(5)
    embeds, grad = torch.randn(2, 6, 32, dtype=torch.float64), torch.randn(2, 6, 32, dtype=torch.float64)
    delta = freelb_init(embeds, MASK, init_mag=0.6)
    unbounded = freelb_update(delta, grad, MASK, FreeLBConfig(step_size=0.1, eps=0.0))
    masked_grad = grad * MASK.unsqueeze(-1)
    expected = delta + 0.1 * masked_grad / example_norms(masked_grad).view(-1, 1, 1)
    assert torch.allclose(unbounded, expected)
    bounded = freelb_update(delta, grad, MASK, FreeLBConfig(step_size=0.1, eps=0.05))
    assert torch.allclose(example_norms(bounded), torch.full((2,), 0.05, dtype=torch.float64))
    assert torch.allclose(bounded, 0.05 * expected / example_norms(expected).view(-1, 1, 1))
    assert torch.all(bounded[~REAL] == 0)


def test_one_step_perturbers_from_a_given_gradient_match_their_own_attack(attack):
    _, embeds, loss_fn = attack
    point = embeds.clone().requires_grad_()
    (grad,) = torch.autograd.grad(loss_fn(point), point)
    for perturber in (FGSM(FGSM.Config(eps=0.01)), FGM(FGM.Config(eps=0.3)), FGM(FGM.Config(eps=0.3, scope="token"))):
        expected = perturber(loss_fn, embeds, MASK)
        assert torch.allclose(perturber.from_gradient(grad, MASK), expected, rtol=1e-12, atol=0)
        assert torch.allclose(perturber.from_gradient(7.5 * grad, MASK), expected, rtol=1e-12, atol=0)  # any loss scale


def test_an_overflowed_gradient_gives_a_finite_perturbation():
    """A loss-scaled fp16 backward overflows while the GradScaler searches its scale (that step is skipped)."""
    grad = torch.randn(2, 6, 4)
    grad[0, 1, 2], grad[1, 0, 0] = float("inf"), float("nan")
    for perturber in (FGSM(), FGM()):
        assert torch.isfinite(perturber.from_gradient(grad, MASK)).all()
    assert torch.isfinite(matrix_perturbation(grad, BATCH["input_ids"], MASK, 1e-3, "l2")).all()


def cat_setup(seed=1):
    """A tiny BERT, the clean CE's gradient w.r.t. the lookups E and (independently) w.r.t. the matrix W."""
    model = tiny_classifier(seed=seed).double().eval()
    embedding = model.word_embeddings
    ids = BATCH["input_ids"]
    embeds = embedding(ids)
    ce = F.cross_entropy(model(inputs_embeds=embeds, attention_mask=MASK).logits, BATCH["labels"])
    grad_embeds, grad_w = torch.autograd.grad(ce, [embeds, embedding.weight])
    return model, ce, grad_embeds, grad_w


def test_cat_matrix_gradient_is_autograds_gradient_on_the_rows_of_tokens_in_the_batch():
    _, _, grad_embeds, grad_w = cat_setup()
    rows, grad_rows, _ = matrix_gradient(grad_embeds, BATCH["input_ids"], MASK)
    assert rows.tolist() == sorted(set(BATCH["input_ids"][REAL].tolist()))  # token 0 occurs at padding only
    assert torch.allclose(grad_rows, grad_w[rows], rtol=1e-10, atol=1e-15)
    absent = torch.ones(len(grad_w), dtype=torch.bool)
    absent[rows] = False
    assert torch.all(grad_w[absent] == 0)  # so r = ε·sign(∇_W) moves no other row


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_cat_matrix_perturbation_is_the_lookup_in_w_plus_r(norm):
    model, ce, grad_embeds, grad_w = cat_setup()
    weight = model.word_embeddings.weight
    before = weight.detach().clone()
    eps = 1e-2
    r = eps * (grad_w.sign() if norm == "linf" else grad_w / grad_w.norm())  # the paper's r on the whole matrix
    ids = BATCH["input_ids"]
    delta = matrix_perturbation(grad_embeds, ids, MASK, eps, norm)
    assert torch.allclose(delta[REAL], r[ids][REAL], rtol=1e-10, atol=1e-15)
    assert torch.all(delta[~REAL] == 0)
    assert torch.equal(delta[0, 1], delta[0, 3])  # token 7 twice: one perturbation
    if norm == "linf":
        assert torch.all(delta[REAL].abs() == eps)

    adv_ce = F.cross_entropy(model(inputs_embeds=model.word_embeddings(ids) + delta, attention_mask=MASK).logits,
                             BATCH["labels"])
    adv_ce.backward()
    assert adv_ce > ce
    assert torch.equal(weight.detach(), before)
    assert weight.grad[ids[REAL]].abs().sum() > 0


@pytest.mark.parametrize("module, cls", [(fgsm, FGSM), (fgm, FGM), (pgd, PGD), (smart, SMART)])
def test_each_perturber_registers_itself_with_a_buildable_config(module, cls):
    registered = []
    module.register_perturbers(registered.append)
    assert registered == [cls]
    assert build(cls.Config, {}) == cls.Config()


def test_a_wrong_norm_is_a_recipe_error_naming_the_key():
    with pytest.raises(RecipeError, match="perturber.norm"):
        build(PGD.Config, {"norm": "l3"}, "perturber")
