"""Half precision on the CPU, as a GPU would run it (docs/methods.md, "Conventions"): the input gradient that builds
δ survives float16 (it is taken on a scaled loss) and is bit for bit today's in float32 and bfloat16; δ stays
finite when the gradient is not; contrastive logits are float32 under autocast.

CPU autocast runs the same casts as CUDA's for what matters here (linear layers and matrix products in the half
type, their backward in it too), so a float16 backward underflows on the CPU as it does on a GPU: a loss 2⁻¹⁸
times smaller than the tiny BERT's CE (the size of a deep model's gradients) flushes every input gradient to 0.
"""

import pytest
import torch
from torch.nn import functional as F

from advcl.losses.infonce import InfoNCE, cosine_logits
from advcl.losses.memory_bank_contrast import MemoryBankContrast
from advcl.losses.multi_positive_infonce import MultiPositiveInfoNCE
from advcl.losses.nt_xent import NTXent
from advcl.objectives import adversarial_pair, uscal
from advcl.perturbers import base, precision
from advcl.perturbers.fgm import FGM
from advcl.perturbers.pgd import PGD
from advcl.perturbers.robustsentembed import RobustPerturbationConfig, robust_perturbation, token_step
from advcl.perturbers.smart import SMART
from objective_helpers import dropout_free_classifier, make_objective, run_step, watch_encoder
from sentence_helpers import random_sentences
from tiny_models import tiny_batch

BATCH = tiny_batch()
MASK = BATCH["attention_mask"]
TINY = 2.0**-18  # the loss factor under which an unscaled float16 backward gives only zeros


def raw_gradient(loss, inputs, retain_graph=False):
    """The input gradient as advcl took it before: ``torch.autograd.grad`` on the loss itself."""
    (grad,) = torch.autograd.grad(loss, inputs, retain_graph=retain_graph)
    return grad


def switch_off_scaling(monkeypatch):
    """Every input gradient that builds δ taken the former way from here on (the helper switched off)."""
    for module in (base, adversarial_pair, uscal):
        monkeypatch.setattr(module, "input_gradient", raw_gradient)


def autocast(dtype):
    return torch.autocast("cpu", dtype=dtype, enabled=dtype is not None)


def cosine(u, v):
    return float((u * v).sum() / (u.norm() * v.norm()))


# -- 1. the input gradient in float16 ------------------------------------------------------------------------


def test_float16_is_detected_from_the_tensor_or_from_autocast_and_nothing_else():
    x = torch.zeros(2)
    assert not precision.runs_in_float16(x) and not precision.runs_in_float16(x.double())
    assert precision.runs_in_float16(x.half())
    with autocast(torch.float16):
        assert precision.runs_in_float16(x)
    with autocast(torch.bfloat16):
        assert not precision.runs_in_float16(x) and not precision.runs_in_float16(x.bfloat16())


def test_the_gradient_of_a_float16_tensor_is_taken_scaled_and_divided_back_exactly():
    x = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float16, requires_grad=True)
    a = torch.tensor([1024.0, 3072.0, -512.0], dtype=torch.float16)
    c = 2.0**-30  # the backward's first product, c, is below float16's smallest subnormal (2⁻²⁴) unscaled

    def loss():
        return (x * a).sum() * c

    assert torch.equal(raw_gradient(loss(), x), torch.zeros(3, dtype=torch.float16))
    grad = precision.input_gradient(loss(), x)
    assert grad.dtype == torch.float16 and torch.equal(grad.double(), a.double() * c)  # 2⁻²⁰·(1, 3, −½), exact


def test_an_overflow_of_the_scaled_float16_backward_counts_as_zero():
    x = torch.tensor([1.0, 2.0], dtype=torch.float16, requires_grad=True)
    loss = (x * torch.tensor([60000.0, 1.0], dtype=torch.float16)).sum()  # 60000·2¹⁵ overflows float16
    assert torch.equal(precision.input_gradient(loss, x), torch.tensor([0.0, 1.0], dtype=torch.float16))


@pytest.fixture(scope="module")
def tiny():
    model = dropout_free_classifier().eval()
    embeds = model.word_embeddings(BATCH["input_ids"]).detach()

    def loss_fn(e):
        return TINY * F.cross_entropy(model(inputs_embeds=e, attention_mask=MASK).logits, BATCH["labels"])

    return embeds, loss_fn


PERTURBERS = {
    "fgm": lambda: FGM(FGM.Config(eps=0.3)),
    "pgd": lambda: PGD(PGD.Config(eps=0.3, step_size=0.1, steps=3, random_init=False)),
    "smart": lambda: SMART(SMART.Config(sigma=0.0)),  # its l∞ step divides g by each token's largest entry
}


def perturb(name, tiny, dtype):
    embeds, loss_fn = tiny
    with autocast(dtype):
        return PERTURBERS[name]()(loss_fn, embeds, MASK)


@pytest.mark.parametrize("name", PERTURBERS)
def test_a_perturbation_in_float16_points_where_the_float32_one_does(name, tiny, monkeypatch):
    reference = perturb(name, tiny, None)
    assert reference.abs().sum() > 0
    delta = perturb(name, tiny, torch.float16)
    assert delta.abs().sum() > 0 and cosine(delta, reference) > 0.9
    switch_off_scaling(monkeypatch)
    assert perturb(name, tiny, torch.float16).abs().sum() == 0  # what the unscaled gradient gave


def test_robustsentembeds_perturbation_in_float16_points_where_the_float32_one_does(tiny):
    embeds, loss_fn = tiny
    c = RobustPerturbationConfig(eps=0.05, pgd_step_size=0.01, pgd_steps=2, fgsm_steps=2, init_mag=0.0,
                                 token_scale="gradient")
    results = {}
    for dtype in (None, torch.float16):
        with autocast(dtype):
            results[dtype] = robust_perturbation(loss_fn, embeds, MASK, torch.zeros_like(embeds), c)
    for fp32, fp16 in zip(results[None], results[torch.float16]):
        assert fp16.abs().sum() > 0 and cosine(fp16, fp32) > 0.9


@pytest.mark.parametrize("dtype", [None, torch.bfloat16])
@pytest.mark.parametrize("name", PERTURBERS)
def test_a_perturbation_in_float32_or_bfloat16_is_bit_for_bit_the_unscaled_one(name, dtype, tiny, monkeypatch):
    delta = perturb(name, tiny, dtype)
    switch_off_scaling(monkeypatch)
    assert torch.equal(delta, perturb(name, tiny, dtype))


class Tiny(torch.nn.Module):
    """A loss times 2⁻¹⁸."""

    def __init__(self, loss):
        super().__init__()
        self.loss = loss

    def forward(self, *args):
        return TINY * self.loss(*args)


def objective_delta(name: str, dtype) -> torch.Tensor:
    """The δ one step of ``name`` adds to the lookups (its attack pass's embeddings minus the clean ones), its loss
    made tiny. ``cat`` (coupled views) and ``uscal`` take ∇_E with an input-only backward."""
    model = dropout_free_classifier(seed=3)
    if name == "cat":
        objective = make_objective("cat", model, target="inputs_embeds", norm="l2", eps=0.3)
        objective.loss = Tiny(objective.loss)
        batch = BATCH
    else:
        objective = make_objective("uscal", model, perturber={"name": "fgm", "eps": 0.2})
        objective.contrast = Tiny(objective.contrast)
        batch = random_sentences(4, 7, seed=4)
    with watch_encoder(model) as log, autocast(dtype):
        run_step(objective, batch, model)
    clean, attacked = log.embeds[0], log.embeds[1]
    return attacked - clean[: len(attacked)]


@pytest.mark.parametrize("name", ["cat", "uscal"])
def test_an_objectives_input_only_gradient_in_float16_points_where_the_float32_one_does(name, monkeypatch):
    reference = objective_delta(name, None)
    delta = objective_delta(name, torch.float16)
    assert reference.abs().sum() > 0 and delta.abs().sum() > 0 and cosine(delta, reference) > 0.9
    switch_off_scaling(monkeypatch)
    assert objective_delta(name, torch.float16).abs().sum() == 0


@pytest.mark.parametrize("dtype", [None, torch.bfloat16])
@pytest.mark.parametrize("name", ["cat", "uscal"])
def test_an_objectives_delta_in_float32_or_bfloat16_is_bit_for_bit_the_unscaled_one(name, dtype, monkeypatch):
    delta = objective_delta(name, dtype)
    switch_off_scaling(monkeypatch)
    assert torch.equal(delta, objective_delta(name, dtype))


# -- 2. RobustSentEmbed's token step with a non-finite or huge gradient --------------------------------------


@pytest.mark.parametrize("token_scale", ["perturbation", "gradient"])
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_rse_token_step_counts_non_finite_gradient_entries_as_zero(token_scale, norm):
    c = RobustPerturbationConfig(eps=0.3, norm=norm, token_step_size=0.1, token_scale=token_scale)
    generator = torch.Generator().manual_seed(3)
    grad = torch.randn(2, 6, 4, generator=generator)
    eta = torch.randn(2, 6, 4, generator=generator) * 0.05
    broken, zeroed = grad.clone(), grad.clone()
    broken[0, 1, 2], broken[0, 4, 0], broken[1, 2, 3] = float("inf"), float("-inf"), float("nan")
    zeroed[0, 1, 2] = zeroed[0, 4, 0] = zeroed[1, 2, 3] = 0.0
    stepped = token_step(eta, broken, MASK, c)
    assert torch.isfinite(stepped).all() and torch.equal(stepped, token_step(eta, zeroed, MASK, c))


@pytest.mark.parametrize("token_scale", ["perturbation", "gradient"])
def test_rse_perturbation_of_a_loss_with_an_infinite_gradient_entry_is_finite(token_scale):
    weights = torch.randn(2, 6, 4, generator=torch.Generator().manual_seed(5))

    def loss_fn(x):  # ∂L/∂x[0, 1, 2] = inf
        return (weights * torch.sin(x)).sum() + x[0, 1, 2] * float("inf")

    c = RobustPerturbationConfig(eps=0.3, pgd_step_size=0.05, fgsm_step_size=0.05, token_step_size=0.1,
                                 token_scale=token_scale)
    delta, eta = robust_perturbation(loss_fn, torch.zeros(2, 6, 4), MASK, torch.zeros(2, 6, 4), c)
    assert torch.isfinite(delta).all() and torch.isfinite(eta).all() and eta.abs().sum() > 0


# -- 3. contrastive logits under autocast ---------------------------------------------------------------------


def views(*shapes, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=generator) for shape in shapes]


def test_cosine_logits_under_bfloat16_autocast_are_the_float32_ones():
    a, b = views((6, 32), (8, 32))
    expected = F.normalize(a.double(), dim=-1) @ F.normalize(b.double(), dim=-1).T / 0.05
    with autocast(torch.bfloat16):
        logits = cosine_logits(a, b, 0.05)
    assert logits.dtype == torch.float32
    assert torch.allclose(logits.double(), expected, rtol=0, atol=1e-5)  # bf16 would be off by up to 0.06


def memory_bank_loss(reps, reps_adv):
    bank = MemoryBankContrast(MemoryBankContrast.Config(temperature=0.07), num_examples=10, dim=32)
    rows, rows_adv = views((10, 32), (10, 32), seed=2)
    bank.update(torch.arange(10), rows, rows_adv, torch.arange(10) % 2)  # label = row parity
    labels = torch.tensor([0, 1, 0, 1, 1, 0])
    negatives = torch.tensor([1, 3, 5]) - labels[:, None]  # rows of the other parity
    return bank(reps, reps_adv, labels, negatives)


LOSSES = {
    "infonce": lambda a, b: InfoNCE(InfoNCE.Config(temperature=0.05))(a, b),
    "nt_xent": lambda a, b: NTXent(NTXent.Config(temperature=0.1))(a, b),
    "multi_positive_infonce": lambda a, b: MultiPositiveInfoNCE()(a, b, b.flip(0)),
    "memory_bank_contrast": memory_bank_loss,
}


@pytest.mark.parametrize("name", LOSSES)
def test_a_contrastive_loss_under_bfloat16_autocast_is_its_float32_value_and_gradient(name):
    inputs = [x.requires_grad_() for x in views((6, 32), (6, 32), seed=1)]
    expected = LOSSES[name](*inputs)
    expected_grads = torch.autograd.grad(expected, inputs)
    with autocast(torch.bfloat16):
        actual = LOSSES[name](*inputs)
    assert actual.dtype == torch.float32
    assert actual.item() == pytest.approx(expected.item(), rel=1e-6)
    for got, want in zip(torch.autograd.grad(actual, inputs), expected_grads):
        assert torch.allclose(got, want, rtol=1e-5, atol=1e-6 * float(want.abs().max()))
