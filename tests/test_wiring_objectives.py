"""Every objective's loss and parameter gradients against a reference assembled by hand in the test: which view
feeds which term, where the gradient is cut, which model and which constant goes where. Methods that rely on two
dropout views run on a tiny BERT with dropout, the reference replaying each forward's dropout masks (issue 12).
Constants are asymmetric (α, λ, M ≠ 0.5, τ ≠ 1)."""

import pytest
import torch
from torch.nn import functional as F

from objective_helpers import dropout_free_classifier, grads, make_objective, run_step, watch_encoder
from sentence_helpers import random_sentences
from tiny_models import tiny_classifier
from wiring_helpers import RngAtForwards, assert_grads_to_float32, close_to_scale, wide_classifier

N = 4


def infonce_by_hand(anchors, positives, tau):
    sims = F.normalize(anchors, dim=-1) @ F.normalize(positives, dim=-1).T / tau
    return -(sims.diag() - sims.logsumexp(1)).mean()


def multi_positive_by_hand(anchors, views, tau):
    sims = torch.cat([F.normalize(anchors, dim=-1) @ F.normalize(v, dim=-1).T / tau for v in views], dim=1)
    own = torch.stack([sims[:, k * N: (k + 1) * N].diag() for k in range(len(views))], dim=1)
    return (sims.logsumexp(1) - own.logsumexp(1)).mean()


def mlp_pooler(objective, h):
    """SimCSE's / SCAL's p(h) = tanh(W h + b), from the head's own two parameters."""
    weight, bias = [p for _, p in objective.head.named_parameters()]
    assert weight.shape == (h.shape[-1], h.shape[-1]) and bias.shape == (h.shape[-1],)
    return torch.tanh(h @ weight.T + bias)


def dropout_model(seed=1):
    model = tiny_classifier(seed=seed).double().train()
    assert model.hf.config.hidden_dropout_prob > 0
    return model


def two_view_forward(model, batch, state):
    """The 2N-row forward of SimCSE's views, under the dropout masks of ``state``."""
    ids, mask = batch["input_ids"], batch["attention_mask"]
    torch.set_rng_state(state)
    embeds = F.embedding(torch.cat([ids, ids]), model.word_embeddings.weight)
    return embeds, model(inputs_embeds=embeds, attention_mask=torch.cat([mask, mask]))


def test_simcse_contrasts_two_dropout_views_with_gradients_through_both():
    batch = random_sentences(N, 7, seed=3)
    model = dropout_model()
    objective = make_objective("simcse", model, contrast={"temperature": 0.3}).double()
    with RngAtForwards(model) as rng:
        out = run_step(objective, batch, model)
    actual = grads(model, objective)
    _, output = two_view_forward(model, batch, rng.before[0])
    z1, z2 = mlp_pooler(objective, output.sentence).chunk(2)
    assert not torch.allclose(z1, z2)  # dropout made two views
    loss = infonce_by_hand(z1, z2, 0.3)
    assert out.loss.item() == pytest.approx(loss.item(), rel=1e-5)
    loss.backward()
    assert_grads_to_float32(actual, grads(model, objective))


def test_uscal_adds_alpha_times_infonce_of_view_1_and_its_fgm_view():
    batch = random_sentences(N, 7, seed=4)
    model = dropout_model(seed=2)
    objective = make_objective("uscal", model, contrast={"temperature": 0.3}, adv_weight=0.3,
                               perturber={"name": "fgm", "eps": 0.2}).double()
    with RngAtForwards(model) as rng:
        out = run_step(objective, batch, model)
    actual = grads(model, objective)
    mask = batch["attention_mask"]
    embeds, output = two_view_forward(model, batch, rng.before[0])
    z1, z2 = mlp_pooler(objective, output.sentence).chunk(2)
    clean = infonce_by_hand(z1, z2, 0.3)
    (g,) = torch.autograd.grad(clean, embeds, retain_graph=True)
    g1 = g[:N] * mask.unsqueeze(-1)
    delta = 0.2 * g1 / g1.flatten(1).norm(dim=1).view(-1, 1, 1)
    torch.set_rng_state(rng.before[1])
    z_adv = mlp_pooler(objective, model(inputs_embeds=embeds[:N] + delta, attention_mask=mask).sentence)
    loss = clean + 0.3 * infonce_by_hand(z1, z_adv, 0.3)
    assert out.loss.item() == pytest.approx(loss.item(), rel=1e-5)
    loss.backward()
    assert_grads_to_float32(actual, grads(model, objective))


# The attack's gradients come from a float32 loss here and a float64 one in the reference: FGSM's sign(g) could
# flip at a near-zero entry on another CPU, so its step is 0 (δ_fgsm stays δ⁰; the step itself is
# test_wiring_perturbers.py's); the PGD and token steps are continuous in g.
RSE = {"contrast": {"temperature": 0.2}, "regulariser_weight": 0.3, "rtd": False,
       "perturbation": {"eps": 0.05, "pgd_steps": 2, "fgsm_steps": 3, "pgd_step_size": 0.01, "fgsm_step_size": 0.0,
                        "token_step_size": 0.02, "rho": 0.3, "init_mag": 0.2}}


@pytest.mark.parametrize("rtd", [False, True])
def test_robustsentembed_attacks_view_1_against_view_2_and_trains_eq_10_on_the_attack_it_made(rtd, tmp_path):
    from advcl.modeling.encoder import EncoderClassifier
    from advcl.perturbers.robustsentembed import RobustPerturbationConfig, robust_perturbation
    from sentence_helpers import mlm_run_folder
    from tiny_models import tiny_bert

    batch = random_sentences(N, 7, seed=5)
    generator = {"rtd": True, "rtd_weight": 0.4, "generator": str(mlm_run_folder(tmp_path)[0].path)} if rtd else {}
    model = EncoderClassifier(tiny_bert(seed=3)).double().train()  # dropout 0.1, the generator's vocabulary
    objective = make_objective("robustsentembed", model, **{**RSE, **generator}).double()
    ids, mask = batch["input_ids"], batch["attention_mask"]
    eta0 = objective.token_memory[ids].clone()
    detector_calls = []
    if rtd:
        detect = objective.detector.forward

        def recording(*args):
            detector_calls.append((torch.get_rng_state(), args))
            return detect(*args)

        objective.detector.forward = recording
    with RngAtForwards(model) as rng, watch_encoder(model) as log:
        out = run_step(objective, batch, model)
    actual = grads(model, objective)

    embeds, output = two_view_forward(model, batch, rng.before[0])
    z1, z2 = mlp_pooler(objective, output.sentence).chunk(2)
    attack_forwards = iter(rng.before[1:])

    def attack_loss(perturbed):  # L_con(X + δ + η, {X⁺}), the positive being view 2, held fixed
        torch.set_rng_state(next(attack_forwards))
        z = mlp_pooler(objective, model(inputs_embeds=perturbed, attention_mask=mask).sentence)
        return infonce_by_hand(z, z2.detach(), 0.2)

    torch.set_rng_state(rng.after[0])  # the start δ⁰ is drawn right after the views' forward
    config = RobustPerturbationConfig(**RSE["perturbation"])
    delta, eta = robust_perturbation(attack_loss, embeds[:N].detach(), mask, eta0, config)
    assert len(rng.before) == 2 + config.steps
    assert close_to_scale(log.embeds[2 + config.steps - 1] - embeds[:N].detach(), delta)  # z_adv = p(f(E + δ)): no η
    token = ids[0, 2]
    assert (ids[mask.bool()] == token).sum() == 1  # occurs once: its memory row is that position's final η
    assert close_to_scale(objective.token_memory[token], eta[0, 2])

    torch.set_rng_state(rng.before[1 + config.steps])
    z_adv = mlp_pooler(objective, model(inputs_embeds=embeds[:N] + delta, attention_mask=mask).sentence)
    loss = multi_positive_by_hand(z1, [z2, z_adv], 0.2) + 0.3 * multi_positive_by_hand(z_adv, [z2], 0.2)
    if rtd:  # eq. 8 itself is the detector's (tests/test_sentence_objectives.py); here: what it is given
        (state, (edited, perturbation, h, replaced, rtd_mask, _)), = detector_calls
        view_1 = output.sentence[:N]
        assert torch.allclose(h, view_1) and not torch.allclose(h, output.sentence[N:])
        assert close_to_scale(perturbation, eta) and torch.equal(rtd_mask, mask)
        torch.set_rng_state(state)
        loss = loss + 0.4 * objective.detector(edited, eta, view_1, replaced, mask)
    assert out.loss.item() == pytest.approx(loss.item(), rel=1e-5)
    loss.backward()
    assert_grads_to_float32(actual, grads(model, objective))


# -- heads ---------------------------------------------------------------------------------------------------

def test_cat_projection_is_w2_relu_w1_h_without_biases_into_300_dimensions():
    model = dropout_free_classifier().double()
    objective = make_objective("cat", model).double()
    params = [p for _, p in objective.head.named_parameters()]
    assert [tuple(p.shape) for p in params] == [(32, 32), (300, 32)]
    h = torch.randn(3, 32, dtype=torch.float64)
    assert torch.allclose(objective.head(h), torch.relu(h @ params[0].T) @ params[1].T)


def test_cat_at_x_with_l2_steps_eps_along_each_examples_unit_gradient_of_the_lookups():
    model = dropout_free_classifier().double()
    objective = make_objective("cat", model, target="inputs_embeds", norm="l2", eps=0.3).double()
    with watch_encoder(model) as log:
        run_step(objective, BATCH, model)
    ids, mask = BATCH["input_ids"], BATCH["attention_mask"]
    lookups = model.word_embeddings(ids)
    logits = model(inputs_embeds=lookups, attention_mask=mask).logits
    (g,) = torch.autograd.grad(F.cross_entropy(logits, BATCH["labels"]), lookups)
    g = g * mask.unsqueeze(-1)
    assert torch.allclose(log.embeds[1] - log.embeds[0], 0.3 * g / g.flatten(1).norm(dim=1).view(-1, 1, 1))


def test_scal_projection_is_tanh_of_an_affine_map():
    model = dropout_free_classifier().double()
    objective = make_objective("scal", model).double()
    h = torch.randn(3, 32, dtype=torch.float64)
    assert torch.allclose(objective.head(h), mlp_pooler(objective, h))


# -- CARL ----------------------------------------------------------------------------------------------------

def test_freelb_starts_from_uniform_noise_of_gamma_over_root_l_d():
    model = dropout_free_classifier().double()
    objective = make_objective("freelb", model, freelb={"init_mag": 0.5, "step_size": 0.02, "steps": 2})
    torch.manual_seed(4)
    with watch_encoder(model) as log:
        run_step(objective, BATCH, model)
    torch.manual_seed(4)
    mask = BATCH["attention_mask"]
    lookups = model.word_embeddings(BATCH["input_ids"]).detach()
    scale = 0.5 / (mask.sum(1) * 32).double().sqrt().view(-1, 1, 1)
    expected = torch.empty_like(lookups).uniform_(-1, 1) * mask.unsqueeze(-1) * scale
    assert torch.allclose(log.embeds[0] - lookups, expected)


def carl_data():
    from objective_helpers import tiny_dataset

    generator = torch.Generator().manual_seed(1)
    return tiny_dataset([[2] + torch.randint(12, 100, (int(n),), generator=generator).tolist() + [3]
                         for n in [3, 5, 4, 6] * 3], [0, 1, 2] * 4)


def test_carl_writes_each_view_to_its_bank_and_adds_l_d_between_clean_and_last_adversarial_pass():
    freelb = {"init_mag": 0.1, "step_size": 0.05, "steps": 2}
    data = carl_data()
    model = dropout_free_classifier(num_labels=3).double()
    carl = make_objective("carl", model, num_train_examples=12, num_labels=3, freelb=freelb, contrast_weight=0.6,
                          contrast={"num_negatives": 5, "momentum": 0.3, "temperature": 0.2})
    plain = make_objective("freelb", model, num_labels=3, freelb=freelb)
    for step in range(3):
        run_step(carl, data.collate(list(range(4 * step, 4 * step + 4))), model, step=step)
    grads(model, carl)
    batch = data.collate([5, 2, 9, 0])
    before = (carl.contrast.bank_orig.clone(), carl.contrast.bank_adv.clone())
    drawn = []
    sample = carl.contrast.sample_negatives
    carl.contrast.sample_negatives = lambda labels: drawn.append(sample(labels)) or drawn[-1]
    torch.manual_seed(7)
    with watch_encoder(model) as log:
        out = run_step(carl, batch, model, step=3)
    with_l_d = grads(model, carl)
    torch.manual_seed(7)
    run_step(plain, batch, model, step=3)
    without = grads(model, carl)
    assert out.logs["contrast_on"] == 1.0 and len(drawn) == 1

    ids, mask, index = batch["input_ids"], batch["attention_mask"], batch["index"]
    lookups = model.word_embeddings(ids)
    delta = (log.embeds[1] - lookups).detach()  # the last FreeLB pass (pass 3 is the clean one)
    clean = model(inputs_embeds=lookups, attention_mask=mask).sentence
    adversarial = model(inputs_embeds=model.word_embeddings(ids) + delta, attention_mask=mask).sentence
    unit = lambda x: x / x.norm(dim=-1, keepdim=True)  # noqa: E731
    for bank, old, new in ((carl.contrast.bank_orig, before[0], clean), (carl.contrast.bank_adv, before[1], adversarial)):
        expected = unit(0.3 * old[index].double() + 0.7 * unit(new.detach()))
        assert torch.allclose(bank[index].double(), expected, atol=1e-6)
    c, a = unit(clean), unit(adversarial)
    positive = (c * a).sum(-1, keepdim=True)
    orig, adv = carl.contrast.bank_orig.double(), carl.contrast.bank_adv.double()
    l_d = 0.0
    for anchor, bank in ((a, orig), (c, adv)):
        negatives = torch.stack([anchor[i] @ bank[drawn[0][i]].T for i in range(4)])
        logits = torch.cat([positive, negatives], dim=1) / 0.2
        l_d = l_d + (logits.logsumexp(1) - logits[:, 0]).mean()
    assert out.logs["contrast"] == pytest.approx(l_d.item(), rel=1e-5)
    (0.6 * l_d).backward()
    expected = grads(model, carl)
    assert_grads_to_float32({n: with_l_d[n] - without[n] for n in without}, expected, rtol=1e-4)


def test_carl_adds_nothing_until_every_bank_row_is_written_even_past_its_start_step():
    freelb = {"init_mag": 0.1, "step_size": 0.05, "steps": 2}
    model = dropout_free_classifier(num_labels=3).double()
    carl = make_objective("carl", model, num_train_examples=12, num_labels=3, freelb=freelb,
                          contrast={"num_negatives": 1}, contrast_start_step=0)
    plain = make_objective("freelb", model, num_labels=3, freelb=freelb)
    batch = carl_data().collate([0, 1, 2, 3])
    torch.manual_seed(2)
    out = run_step(carl, batch, model, step=4)
    with_carl = grads(model)
    torch.manual_seed(2)
    run_step(plain, batch, model, step=4)
    assert out.logs["contrast_on"] == 0.0
    assert_grads_to_float32(with_carl, grads(model), rtol=1e-12)


def test_vanilla_is_the_cross_entropy_of_the_labels():
    model = dropout_free_classifier(num_labels=3).double()
    objective = make_objective("vanilla", model, num_labels=3)
    labels = torch.tensor([2, 0, 1])
    run_step(objective, {**BATCH, "labels": labels}, model)
    actual = grads(model)
    logits = model(input_ids=BATCH["input_ids"], attention_mask=BATCH["attention_mask"]).logits
    (-(logits.log_softmax(-1)[torch.arange(3), labels]).mean()).backward()
    assert_grads_to_float32(actual, grads(model))  # the CE runs in float32


# -- PGD training, TaiChi, ADA ----------------------------------------------------------------------------------

BATCH = {"input_ids": torch.tensor([[2, 7, 15, 7, 33, 3], [2, 41, 8, 3, 0, 0], [2, 19, 3, 0, 0, 0]]),
         "attention_mask": torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0]]),
         "labels": torch.tensor([0, 1, 1]),
         "adv_input_ids": torch.tensor([[2, 7, 16, 7, 3, 0], [2, 44, 8, 3, 0, 0], [2, 19, 21, 3, 0, 0]]),
         "adv_attention_mask": torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 0, 0]])}


def test_pgd_training_is_the_ce_at_k_projected_steps_plus_w_clean_times_the_clean_ce():
    model = dropout_free_classifier().double()
    objective = make_objective("pgd_at", model, clean_weight=0.3, perturber={
        "name": "pgd", "eps": 0.4, "step_size": 0.25, "steps": 3, "random_init": False})
    run_step(objective, BATCH, model)
    actual = grads(model, objective)
    ids, mask, labels = BATCH["input_ids"], BATCH["attention_mask"], BATCH["labels"]
    m = mask.unsqueeze(-1)

    def ce_at(delta):
        return F.cross_entropy(model(inputs_embeds=model.word_embeddings(ids) + delta, attention_mask=mask).logits,
                               labels)

    delta = torch.zeros(3, 6, 32, dtype=torch.float64)
    for _ in range(3):
        point = delta.clone().requires_grad_()
        (g,) = torch.autograd.grad(ce_at(point), point)
        g = g * m
        delta = delta + 0.25 * g / g.flatten(1).norm(dim=1).view(-1, 1, 1)
        delta = delta * (0.4 / delta.flatten(1).norm(dim=1)).clamp(max=1).view(-1, 1, 1)
    grads(model)
    (ce_at(delta) + 0.3 * ce_at(0)).backward()
    assert_grads_to_float32(actual, grads(model, objective), rtol=1e-6)


def l2_contrast_by_hand(anchors, candidates):
    a, c = F.normalize(anchors, dim=-1), F.normalize(candidates, dim=-1)
    scores = -torch.cdist(a, c) / 0.7
    terms = [torch.logsumexp(torch.cat([scores[i, :i], scores[i, i + 1:]]), 0) - scores[i, i] for i in range(len(a))]
    return torch.stack(terms).mean()


def kl_by_hand(logits_p, logits_q):
    p, q = logits_p.softmax(-1), logits_q.softmax(-1)
    return (p * (p.log() - q.log())).sum(-1).mean()


@pytest.mark.parametrize("ablation", ["none", "no_adv", "no_ctr", "no_kl"])
def test_taichi_gradients_reach_each_model_through_its_own_terms_and_the_kl_in_both_directions(ablation):
    model = wide_classifier().double()
    objective = make_objective("taichi", model, kl_weight=0.6, ablation=ablation,
                               contrast={"temperature": 0.7}).double()
    adv_model = objective.adversarial_model
    if adv_model is not None:  # a copy: same initialisation, no shared parameter
        assert not {id(p) for p in adv_model.parameters()} & {id(p) for p in model.parameters()}
    with torch.no_grad():  # confident predictions: near-uniform ones make KL(p‖q) ≈ KL(q‖p) to second order
        for classifier in [model.hf.classifier] + ([adv_model.hf.classifier] if adv_model is not None else []):
            classifier.weight.mul_(5)
    if adv_model is not None:
        torch.manual_seed(3)
        with torch.no_grad():
            for p in adv_model.parameters():
                p.add_(0.05 * torch.randn_like(p))
    run_step(objective, BATCH, model)
    actual = grads(model, objective)
    x = {"input_ids": BATCH["input_ids"], "attention_mask": BATCH["attention_mask"]}
    x_adv = {"input_ids": BATCH["adv_input_ids"], "attention_mask": BATCH["adv_attention_mask"]}
    y = BATCH["labels"]
    clean, clean_on_adv = model(**x), model(**x_adv)
    loss = F.cross_entropy(clean.logits, y)
    if ablation != "no_ctr":
        loss = loss + l2_contrast_by_hand(clean.sentence, clean_on_adv.sentence)
    if ablation in ("none", "no_ctr"):
        adv_on_clean, adv = adv_model(**x), adv_model(**x_adv)
        loss = loss + F.cross_entropy(adv.logits, y)
        if ablation == "none":
            loss = loss + l2_contrast_by_hand(adv.sentence, adv_on_clean.sentence)
        loss = loss + 0.6 * (kl_by_hand(clean.logits, adv_on_clean.logits) + kl_by_hand(adv.logits, clean_on_adv.logits))
    elif ablation == "no_adv":
        loss = loss + 0.6 * kl_by_hand(clean.logits, clean_on_adv.logits)
    loss.backward()
    assert_grads_to_float32(actual, grads(model, objective))


def test_ada_is_the_mean_ce_over_clean_and_adversarial_texts_with_the_clean_labels():
    model = dropout_free_classifier().double()
    objective = make_objective("ada", model)
    run_step(objective, BATCH, model)
    actual = grads(model)
    x = model(input_ids=BATCH["input_ids"], attention_mask=BATCH["attention_mask"]).logits
    x_adv = model(input_ids=BATCH["adv_input_ids"], attention_mask=BATCH["adv_attention_mask"]).logits
    ((F.cross_entropy(x, BATCH["labels"]) + F.cross_entropy(x_adv, BATCH["labels"])) / 2).backward()
    assert_grads_to_float32(actual, grads(model), rtol=1e-7)
