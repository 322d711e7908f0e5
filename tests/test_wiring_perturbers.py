"""Every perturber against a reference written out by hand on a loss whose gradient is known in closed form,
``L(E) = Σ w ⊙ sin(E)`` (so ``∇L = w ⊙ cos(E)``, which changes from one iterate to the next): directions, norms
per example or per token, projections, step counts, ascent (never descent) and padding; random starts are
replayed by re-seeding torch and drawing the same numbers by hand (issue 12)."""

import pytest
import torch
from torch.nn import functional as F

from advcl.perturbers.fgm import FGM
from advcl.perturbers.fgsm import FGSM
from advcl.perturbers.freelb import FreeLBConfig, freelb_init, freelb_update
from advcl.perturbers.matrix import matrix_perturbation
from advcl.perturbers.norms import ascent_direction, ascent_step, normalised, project, random_in_ball
from advcl.perturbers.pgd import PGD
from advcl.perturbers.robustsentembed import RobustPerturbationConfig, robust_perturbation
from advcl.perturbers.smart import SMART

MASK = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
REAL = MASK.bool()
M = MASK.unsqueeze(-1).double()
DIM = 4
generator = torch.Generator().manual_seed(0)
E = torch.randn(2, 5, DIM, generator=generator, dtype=torch.float64)
W = torch.randn(2, 5, DIM, generator=generator, dtype=torch.float64) * torch.linspace(0.2, 3, DIM, dtype=torch.float64)
G = torch.randn(2, 5, DIM, generator=generator, dtype=torch.float64)  # a gradient, non-zero at padding too


def loss_fn(x):
    return (W * torch.sin(x)).sum()


def gradient_at(x):
    """∇L at x, written out; only real tokens count."""
    return W * torch.cos(x) * M


def per_example_l2(x):
    return torch.stack([x[b].norm() for b in range(len(x))]).view(-1, 1, 1)


def per_token(x, norm):
    return x.norm(dim=-1, keepdim=True) if norm == "l2" else x.abs().amax(dim=-1, keepdim=True)


def per_example(x, norm):
    return per_example_l2(x) if norm == "l2" else x.abs().flatten(1).amax(1).view(-1, 1, 1)


def unit(x, norm, scope):
    """x/‖x‖ per scope, 0/0 = 0."""
    length = per_token(x, norm) if scope == "token" else per_example(x, norm)
    return torch.where(length > 0, x / length.clamp_min(1e-300), torch.zeros_like(x))


def ball(x, eps, norm, scope):
    """The nearest point of the ε-ball, by hand."""
    if norm == "linf":
        return x.clamp(-eps, eps)
    length = per_token(x, "l2") if scope == "token" else per_example_l2(x)
    return torch.where(length > eps, x * eps / length, x)


@pytest.mark.parametrize("scope", ["token", "sentence"])
def test_ascent_direction_is_the_unit_gradient_of_the_real_tokens(scope):
    masked = G * M
    assert torch.allclose(ascent_direction(G, MASK, "l2", scope), unit(masked, "l2", scope))
    assert torch.equal(ascent_direction(G, MASK, "linf", scope), masked.sign())
    broken = G.clone()
    broken[0, 1, 2], broken[1, 0, 0] = float("nan"), float("inf")
    direction = ascent_direction(broken, MASK, "l2", scope)
    assert torch.isfinite(direction).all() and direction[0, 1, 2] == 0 and direction[1, 0, 0] == 0


@pytest.mark.parametrize("norm", ["l2", "linf"])
@pytest.mark.parametrize("scope", ["token", "sentence"])
def test_normalised_divides_by_the_p_norm_of_each_scope(norm, scope):
    assert torch.allclose(normalised(G, MASK, norm, scope), unit(G * M, norm, scope))


@pytest.mark.parametrize("norm", ["l2", "linf"])
@pytest.mark.parametrize("scope", ["token", "sentence"])
def test_project_finds_the_nearest_point_of_the_ball(norm, scope):
    delta = G * 0.6
    eps = 0.5 if norm == "linf" else 1.2  # some blocks inside, some outside
    expected = ball(delta * M, eps, norm, scope)
    assert torch.allclose(project(delta, MASK, eps, norm, scope), expected)
    assert not torch.allclose(expected, delta * M) and (expected == delta * M).any()


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_ascent_step_moves_along_the_gradient_then_projects(norm):
    delta = G.flip(0) * 0.3 * M
    step, eps = 0.4, 0.7
    direction = unit(G * M, "l2", "sentence") if norm == "l2" else (G * M).sign()
    assert torch.allclose(ascent_step(delta, G, MASK, step, eps, norm, "sentence"),
                          ball(delta + step * direction, eps, norm, "sentence"))
    assert torch.allclose(ascent_step(delta, G, MASK, step, 0.0, norm, "sentence"), delta + step * direction)


def test_random_start_replays_torch_draws_inside_the_ball():
    eps = 0.3
    torch.manual_seed(4)
    actual = random_in_ball(E, MASK, eps, "linf", "sentence")
    torch.manual_seed(4)
    assert torch.equal(actual, torch.empty_like(E).uniform_(-eps, eps) * M)
    for scope in ("sentence", "token"):
        torch.manual_seed(5)
        actual = random_in_ball(E, MASK, eps, "l2", scope)
        torch.manual_seed(5)
        direction = unit(torch.randn_like(E) * M, "l2", scope)
        radius_shape = (2, 1, 1) if scope == "sentence" else (2, 5, 1)
        expected = direction * torch.rand(radius_shape, dtype=E.dtype) * eps
        assert torch.allclose(actual, expected)
    big = torch.zeros(400, 3, 8, dtype=torch.float64)
    radii = per_example_l2(random_in_ball(big, torch.ones(400, 3), eps, "l2", "sentence")).flatten()
    assert radii.max() <= eps + 1e-12 and radii.min() < 0.1 * eps and radii.max() > 0.9 * eps


@pytest.mark.parametrize("scope", ["sentence", "token"])
def test_fgm_steps_eps_along_the_l2_unit_gradient_at_zero(scope):
    fgm = FGM(FGM.Config(eps=0.37, scope=scope))
    assert torch.allclose(fgm(loss_fn, E, MASK), 0.37 * unit(gradient_at(E), "l2", scope))
    assert torch.allclose(fgm.from_gradient(G, MASK), 0.37 * unit(G * M, "l2", scope))


def test_fgsm_steps_eps_along_the_sign_of_the_gradient_at_zero():
    fgsm = FGSM(FGSM.Config(eps=0.02))
    assert torch.equal(fgsm(loss_fn, E, MASK), 0.02 * gradient_at(E).sign())
    assert torch.equal(fgsm.from_gradient(G, MASK), 0.02 * (G * M).sign())


@pytest.mark.parametrize("norm, scope", [("l2", "sentence"), ("l2", "token"), ("linf", "sentence")])
def test_pgd_takes_k_projected_ascent_steps_from_zero(norm, scope):
    eps, step, k = (0.9, 0.4, 4) if norm == "l2" else (0.5, 0.2, 4)
    pgd = PGD(PGD.Config(eps=eps, step_size=step, steps=k, norm=norm, scope=scope, random_init=False))
    delta = torch.zeros_like(E)
    for _ in range(k):
        g = gradient_at(E + delta)
        delta = ball(delta + step * (unit(g, "l2", scope) if norm == "l2" else g.sign()), eps, norm, scope)
    actual = pgd(loss_fn, E, MASK)
    assert torch.allclose(actual, delta)
    assert loss_fn(E + actual) > loss_fn(E)


def test_pgd_starts_from_the_random_point_it_drew():
    eps, step = 0.5, 0.2
    pgd = PGD(PGD.Config(eps=eps, step_size=step, steps=2, norm="linf", random_init=True))
    torch.manual_seed(9)
    actual = pgd(loss_fn, E, MASK)
    torch.manual_seed(9)
    delta = torch.empty_like(E).uniform_(-eps, eps) * M
    for _ in range(2):
        delta = ball(delta + step * gradient_at(E + delta).sign(), eps, "linf", "sentence")
    assert torch.allclose(actual, delta)


def test_freelb_init_draws_uniform_noise_scaled_by_gamma_over_root_l_d():
    torch.manual_seed(3)
    actual = freelb_init(E, MASK, 0.6)
    torch.manual_seed(3)
    lengths = torch.tensor([5.0, 3.0], dtype=torch.float64).view(-1, 1, 1)
    assert torch.allclose(actual, torch.empty_like(E).uniform_(-1, 1) * M * 0.6 / torch.sqrt(lengths * DIM))


@pytest.mark.parametrize("eps", [0.0, 0.5])
def test_freelb_update_is_a_per_example_normalised_step_projected_when_eps_is_set(eps):
    delta = G.flip(1) * 0.2 * M
    config = FreeLBConfig(step_size=0.3, eps=eps)
    expected = delta + 0.3 * unit(G * M, "l2", "sentence")
    if eps:
        expected = ball(expected, eps, "l2", "sentence")
    assert torch.allclose(freelb_update(delta, G, MASK, config), expected)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_matrix_perturbation_is_a_step_on_the_gradient_of_the_word_embedding_matrix(norm):
    ids = torch.tensor([[2, 7, 5, 7, 9], [2, 4, 5, 0, 0]])
    weight = torch.randn(12, DIM, generator=torch.Generator().manual_seed(1), dtype=torch.float64).requires_grad_()
    lookups = F.embedding(ids, weight)
    (grad_w,) = torch.autograd.grad((W * torch.sin(lookups) * M).sum(), weight, retain_graph=True)
    (grad_e,) = torch.autograd.grad((W * torch.sin(lookups) * M).sum(), lookups)
    r = 0.01 * (grad_w.sign() if norm == "linf" else grad_w / grad_w.norm())
    assert torch.allclose(matrix_perturbation(grad_e, ids, MASK, 0.01, norm), r[ids] * M)


@pytest.mark.parametrize("norm, scope, direction", [
    ("linf", "token", "normalized"), ("linf", "sentence", "normalized"), ("linf", "token", "sign"),
    ("l2", "token", "normalized")])
def test_smart_adds_one_normalised_ascent_step_to_its_gaussian_start(norm, scope, direction):
    sigma, step = 0.05, 0.3
    smart = SMART(SMART.Config(sigma=sigma, step_size=step, norm=norm, scope=scope, direction=direction))
    torch.manual_seed(6)
    actual = smart(loss_fn, E, MASK)
    torch.manual_seed(6)
    noise = torch.randn_like(E) * sigma * M
    g = gradient_at(E + noise)
    expected = noise + step * (g.sign() if direction == "sign" and norm == "linf" else unit(g, norm, scope))
    assert torch.allclose(actual, expected)


@pytest.mark.parametrize("token_scale", ["perturbation", "gradient"])
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_robust_perturbation_runs_pgd_fgsm_and_token_steps_on_shared_gradients(token_scale, norm):
    c = RobustPerturbationConfig(eps=0.35, norm=norm, pgd_step_size=0.1, pgd_steps=2, fgsm_step_size=0.15,
                                 fgsm_steps=3, rho=0.3, token_step_size=0.2, init_mag=0.4, token_scale=token_scale)
    eta0 = G.flip(0) * 0.05
    torch.manual_seed(8)
    delta, eta = robust_perturbation(loss_fn, E, MASK, eta0, c)
    torch.manual_seed(8)
    scale = 0.4 / DIM ** 0.5
    pgd = fgsm = torch.empty_like(E).uniform_(-scale, scale) * M
    memory = eta0 * M
    for t in range(1, 4):
        g = gradient_at(E + 0.3 * pgd + 0.7 * fgsm + memory)
        if t <= 2:
            pgd = ball(pgd + 0.1 * unit(g, norm, "sentence"), 0.35, norm, "sentence")
        if t <= 3:
            fgsm = ball(fgsm + 0.15 * g.sign(), 0.35, norm, "sentence")
        stepped = (memory + 0.2 * unit(g, norm, "token")) * M
        sizes = per_token(stepped if token_scale == "perturbation" else g, norm)
        memory = ball(sizes / sizes.amax(dim=1, keepdim=True) * stepped, 0.35, norm, "token")
    assert torch.allclose(delta, 0.3 * pgd + 0.7 * fgsm)
    assert torch.allclose(eta, memory)
