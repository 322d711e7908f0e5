"""FreeLB, SMART, SCAL, CAT, CARL and RAR against expectations computed independently, by hand, on a tiny BERT;
the passes each one-step and K-step objective costs; that every objective learns a small synthetic task through
the engine; and (integration) one step of each on the shipped MiniLM encoder."""

import copy
import json

import pytest
import torch
from torch.nn import functional as F

from advcl.config.recipe import load_recipe
from advcl.config.validate import RecipeError
from advcl.data.batching import epoch_batches
from advcl.modeling.encoder import EncoderClassifier
from advcl.objectives.base import create
from advcl.perturbers.freelb import freelb_init
from objective_helpers import Calls, assert_same_grads, dropout_free_classifier, grads, make_objective, presence_task
from objective_helpers import run_step, tiny_dataset, trainer_for, watch_encoder
from tiny_models import tiny_batch, tiny_classifier

BATCH = tiny_batch()
MASK = BATCH["attention_mask"]
REAL = MASK.bool()
IDS = BATCH["input_ids"]
LABELS = BATCH["labels"]


def forward(model, embeds):
    return model(inputs_embeds=embeds, attention_mask=MASK)


def ce(logits, labels=LABELS):
    """CE with the logits cast to float32, as the ``cross_entropy`` loss does."""
    return F.cross_entropy(logits.float(), labels)


def cosine_logits(a, b, tau):
    return F.normalize(a.float(), dim=-1) @ F.normalize(b.float(), dim=-1).T / tau


def infonce_by_hand(z, z_adv, tau):
    return -torch.log_softmax(cosine_logits(z, z_adv, tau), dim=1).diag().mean()


def nt_xent_by_hand(z1, z2, tau):
    z, n = torch.cat([z1, z2]), len(z1)
    logits = cosine_logits(z, z, tau)
    terms = []
    for i in range(2 * n):
        others = [k for k in range(2 * n) if k != i]
        terms.append(-(logits[i, (i + n) % (2 * n)] - torch.logsumexp(logits[i, others], dim=0)))
    return torch.stack(terms).mean()


# -- FreeLB -----------------------------------------------------------------------------------------------

def test_freelb_makes_one_optimizer_step_with_the_average_gradient_of_its_k_passes(tmp_path):
    k, init_mag, step_size = 3, 0.5, 0.3
    model = dropout_free_classifier(seed=3)
    initial = copy.deepcopy(model)
    data = tiny_dataset([[2, 7, 15, 7, 33, 3], [2, 41, 8, 3], [2, 9, 9, 3, 5]], [0, 1, 1])
    freelb = {"name": "freelb", "freelb": {"init_mag": init_mag, "step_size": step_size, "steps": k}}
    trainer = trainer_for(tmp_path, model, data, freelb, max_grad_norm=0.0)
    at_optimizer_step = []
    trainer.optimizer.register_step_pre_hook(
        lambda optimizer, args, kwargs: at_optimizer_step.append({n: p.grad.clone() for n, p in model.named_parameters()})
    )
    with watch_encoder(model) as log:
        trainer.fit()
    assert len(at_optimizer_step) == 1 and log.forwards == k

    batch = data.collate(epoch_batches(len(data), len(data), trainer.recipe.run.seed, 0, lengths=trainer.lengths)[0])
    ids, mask = batch["input_ids"], batch["attention_mask"]
    real = mask.bool()
    lookups = initial.word_embeddings(ids).detach()
    deltas = [seen - lookups for seen in log.embeds]
    lengths = mask.sum(1)
    assert torch.all(deltas[0][~real] == 0)
    assert torch.all(deltas[0].abs().amax(dim=(1, 2)) <= init_mag / (lengths * 32).sqrt())

    passes = []
    for t, delta in enumerate(deltas):
        point = delta.clone().requires_grad_()
        loss = ce(initial(inputs_embeds=initial.word_embeddings(ids) + point, attention_mask=mask).logits, batch["labels"])
        loss.backward()
        passes.append(grads(initial))
        if t + 1 < k:  # δ_{t+1} = δ_t + α·g/‖g‖ per example, unbounded (ε = 0)
            g = point.grad * mask.unsqueeze(-1)
            expected = delta + step_size * g / g.flatten(1).norm(dim=1).view(-1, 1, 1)
            assert torch.allclose(deltas[t + 1], expected, atol=1e-6)
    average = {name: sum(p[name] for p in passes) / k for name in passes[0]}
    assert_same_grads({f"0.{n}": g for n, g in at_optimizer_step[0].items()}, average, rtol=1e-4, atol=1e-7)


# -- SMART ------------------------------------------------------------------------------------------------

def test_smart_trains_on_ce_plus_the_symmetric_kl_at_its_adversarial_point():
    model = dropout_free_classifier().double()
    objective = make_objective("smart", model, perturber={"name": "smart", "step_size": 0.05}, regularizer_weight=0.7)
    with watch_encoder(model) as log:
        run_step(objective, BATCH, model)
    actual = grads(model)
    assert log.forwards == 3  # clean, the ascent step's gradient, the adversarial point

    delta = log.embeds[2] - log.embeds[0]
    assert torch.all(delta[~REAL] == 0)  # η·g/‖g‖_∞ per token + N(0, σ²): each token's largest entry moves by η
    assert torch.all((delta[REAL].abs().amax(-1) - 0.05).abs() < 1e-4) and delta[REAL].abs().mean() < 0.04
    clean = forward(model, model.word_embeddings(IDS)).logits
    perturbed = forward(model, model.word_embeddings(IDS) + delta).logits
    p, q = clean.float().softmax(-1), perturbed.float().softmax(-1)
    symmetric_kl = ((p - q) * (p.log() - q.log())).sum(-1).mean()
    (ce(clean) + 0.7 * symmetric_kl).backward()
    assert_same_grads(actual, grads(model), rtol=1e-5, atol=1e-8)  # the KL is taken in float32


# -- SCAL and CAT ----------------------------------------------------------------------------------------

def scal_loss_by_hand(model, head, options):
    """Eq. 6-8 of SCAL with FGM on E."""
    embeds = model.word_embeddings(IDS)
    clean = forward(model, embeds)
    clean_ce = ce(clean.logits)
    (g,) = torch.autograd.grad(clean_ce, embeds, retain_graph=True)
    g = g * MASK.unsqueeze(-1)
    delta = options["perturber"]["eps"] * g / g.flatten(1).norm(dim=1).view(-1, 1, 1)
    adversarial = forward(model, model.word_embeddings(IDS) + delta)
    h = clean.sentence.detach() if options.get("detach_clean_view") else clean.sentence
    contrast = infonce_by_hand(head(h), head(adversarial.sentence), options["contrast"]["temperature"])
    return 0.5 * (clean_ce + ce(adversarial.logits)) + options["contrast_weight"] * contrast


def cat_loss_by_hand(model, head, options):
    """Eq. 5-10 of CAT: r from ∇_W CE on the whole matrix (or ∇_E for AT_x), W+r looked up, NT-Xent."""
    weight = model.word_embeddings.weight
    embeds = F.embedding(IDS, weight)
    clean = forward(model, embeds)
    clean_ce = ce(clean.logits)
    eps, norm = options.get("eps", 1e-3), options.get("norm", "linf")
    if options.get("target", "matrix") == "matrix":
        (g,) = torch.autograd.grad(clean_ce, weight, retain_graph=True)
        assert g[IDS[REAL]].abs().min() > 1e-6 * g.abs().max()  # no tie: sign(g) cannot flip by rounding
        r = eps * (g.sign() if norm == "linf" else g / g.norm())
        adversarial_embeds = F.embedding(IDS, weight + r)
    else:
        (g,) = torch.autograd.grad(clean_ce, embeds, retain_graph=True)
        g = g * MASK.unsqueeze(-1)
        assert g[REAL].abs().min() > 1e-6 * g.abs().max()  # no tie: sign(g) cannot flip by rounding
        adversarial_embeds = F.embedding(IDS, weight) + eps * (g.sign() if norm == "linf" else g / g.norm())
    adversarial = forward(model, adversarial_embeds)
    h = clean.sentence.detach() if options.get("detach_clean_view") else clean.sentence
    lam = options["contrast_weight"]
    contrast = nt_xent_by_hand(head(h), head(adversarial.sentence), options["contrast"]["temperature"])
    return (1 - lam) / 2 * (clean_ce + ce(adversarial.logits)) + lam * contrast


def assert_same_grads_to_float32(actual, expected, rtol=1e-5):
    """Gradients equal up to the rounding of a float32 contrastive loss: each entry within ``rtol`` of itself or of
    its tensor's largest entry. The float32 error of a gradient entry scales with the terms summed into it, not with
    the entry: where the CE and contrast gradients nearly cancel, an entry 40× below its tensor's largest came out
    3e-5 relatively off on an avx512 Intel CPU (its float32 kernels round differently) while the wiring was right.
    A mis-wired loss is off by O(1) of the tensor's scale."""
    assert actual.keys() == expected.keys()
    for name in expected:
        scale = float(expected[name].abs().max())
        assert torch.allclose(actual[name], expected[name], rtol=rtol, atol=rtol * scale + 1e-12), name


CONTRAST_CASES = [
    ("scal", {"perturber": {"name": "fgm", "eps": 0.3}, "contrast_weight": 0.4, "contrast": {"temperature": 0.5}}),
    ("scal", {"perturber": {"name": "fgm", "eps": 0.3}, "contrast_weight": 0.4, "contrast": {"temperature": 0.5},
              "detach_clean_view": True}),
    ("cat", {"eps": 1e-2, "contrast_weight": 0.3, "contrast": {"temperature": 0.2}}),
    ("cat", {"eps": 1e-2, "contrast_weight": 0.3, "contrast": {"temperature": 0.2}, "detach_clean_view": True}),
    ("cat", {"eps": 1e-2, "contrast_weight": 0.0, "contrast": {"temperature": 0.2}}),  # ablation: AT only
    ("cat", {"eps": 1e-2, "contrast_weight": 0.3, "contrast": {"temperature": 0.2}, "target": "inputs_embeds"}),
    ("cat", {"eps": 0.5, "contrast_weight": 0.3, "contrast": {"temperature": 0.2}, "norm": "l2"}),  # FGM on W
]


@pytest.mark.parametrize("name, options", CONTRAST_CASES)
def test_scal_and_cat_gradients_are_those_of_the_papers_loss(name, options):
    model = dropout_free_classifier().double()
    objective = make_objective(name, model, **options).double()
    calls = Calls()
    with watch_encoder(model) as log:
        out = run_step(objective, BATCH, model, calls=calls)
    actual = grads(model, objective)
    by_hand = scal_loss_by_hand if name == "scal" else cat_loss_by_hand
    loss = by_hand(model, objective.head, options)
    assert out.loss.item() == pytest.approx(loss.item(), rel=1e-6)
    loss.backward()
    assert_same_grads_to_float32(actual, grads(model, objective))

    coupled = options["contrast_weight"] > 0 and not options.get("detach_clean_view")
    # two forwards; coupled: one input-only backward for ∇_E, then one backward through both graphs
    assert (log.forwards, log.backward, calls.backward) == ((2, 3, 1) if coupled else (2, 2, 2))


def test_cat_perturbs_the_matrix_and_leaves_the_weights_alone():
    model = dropout_free_classifier().double()
    objective = make_objective("cat", model, eps=1e-2).double()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    with watch_encoder(model) as log:
        run_step(objective, BATCH, model)
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())

    shift = log.embeds[1] - log.embeds[0]
    assert torch.equal(shift[0, 1], shift[0, 3])  # token 7 occurs twice: one row of r, one perturbation
    assert torch.all(shift[~REAL] == 0)
    weight = model.word_embeddings.weight
    (grad_w,) = torch.autograd.grad(ce(forward(model, F.embedding(IDS, weight)).logits), weight)
    r = 1e-2 * grad_w.sign()
    moved = set(r.abs().sum(1).nonzero().flatten().tolist())
    assert moved == set(IDS[REAL].tolist())  # only the rows of tokens present in the batch move
    assert torch.allclose(shift[REAL], r[IDS][REAL], atol=1e-12)


# -- CARL -------------------------------------------------------------------------------------------------

FREELB = {"init_mag": 0.1, "step_size": 0.05, "steps": 2}


def three_label_data():
    """Twelve sentences, three labels."""
    generator = torch.Generator().manual_seed(1)
    ids = [[2] + torch.randint(12, 100, (int(n),), generator=generator).tolist() + [3] for n in [3, 5, 4, 6] * 3]
    return tiny_dataset(ids, [0, 1, 2] * 4)


def carl_and_freelb(model, start):
    carl = make_objective("carl", model, num_train_examples=12, num_labels=3, freelb=FREELB,
                          contrast={"num_negatives": 4}, contrast_start_step=start)
    return carl, make_objective("freelb", model, num_labels=3, freelb=FREELB)


def test_carl_banks_are_indexed_by_example_and_negatives_never_share_the_anchors_label():
    model = dropout_free_classifier(num_labels=3)
    carl, _ = carl_and_freelb(model, start=3)
    data = three_label_data()
    sampled = []
    original = carl.contrast.sample_negatives

    def recording(labels):
        negatives = original(labels)
        sampled.append((labels, negatives, carl.contrast.bank_labels.clone()))
        return negatives

    carl.contrast.sample_negatives = recording
    order = [[5, 2, 9, 0], [1, 4, 7, 10], [3, 6, 8, 11]]
    for step in range(6):
        indices = order[step % 3]
        run_step(carl, data.collate(indices), model, step=step)
        grads(model)
        written = carl.contrast.bank_labels >= 0
        if step == 0:
            assert written.nonzero().flatten().tolist() == sorted(indices)
            assert carl.contrast.bank_labels[indices].tolist() == [data.labels[i] for i in indices]
    assert len(sampled) == 3  # steps 3, 4, 5: past the start step, with full banks
    for labels, negatives, bank_labels in sampled:
        assert negatives.shape == (4, 4)
        assert torch.all(bank_labels[negatives] != labels.unsqueeze(1))


def test_carl_contrast_weighs_nothing_before_its_start_step():
    model = dropout_free_classifier(num_labels=3)
    carl, freelb = carl_and_freelb(model, start=5)
    data = three_label_data()
    for step in range(3):  # one pass fills the banks
        run_step(carl, data.collate(list(range(4 * step, 4 * step + 4))), model, step=step)
    grads(model, carl)
    batch = data.collate([0, 1, 2, 3])

    def step_grads(objective, step):
        torch.manual_seed(7)
        out = run_step(objective, batch, model, step=step)
        return out.logs, grads(model)

    logs, carl_early = step_grads(carl, 4)
    assert logs["contrast_on"] == 0.0
    assert_same_grads(carl_early, step_grads(freelb, 4)[1], rtol=0, atol=0)
    logs, carl_late = step_grads(carl, 5)
    assert logs["contrast_on"] == 1.0 and logs["contrast"] > 0
    freelb_late = step_grads(freelb, 5)[1]
    assert any(not torch.allclose(carl_late[n], freelb_late[n]) for n in freelb_late)


def test_carl_refuses_more_negatives_than_the_training_set_has():
    with pytest.raises(RecipeError, match=r"'objective.contrast.num_negatives' must be below the number of training "
                                          r"examples \(12\), got 16000"):
        make_objective("carl", tiny_classifier(), num_train_examples=12)


# -- RAR --------------------------------------------------------------------------------------------------

def test_rar_adds_the_reconstruction_gradient_of_the_last_adversarial_pass():
    model = dropout_free_classifier().double()
    rar = make_objective("rar", model, freelb=FREELB, reconstruction_weight=0.3).double()
    freelb = make_objective("freelb", model, freelb=FREELB)
    torch.manual_seed(5)
    with watch_encoder(model) as log:
        run_step(rar, BATCH, model)
    with_reconstruction = grads(model, rar)
    torch.manual_seed(5)
    run_step(freelb, BATCH, model)
    without = grads(model, rar)
    difference = {n: with_reconstruction[n] - without[n] for n in without}

    assert log.forwards == FREELB["steps"]  # the K passes and no other: the last one is the adversarial example
    delta = log.embeds[-1] - model.word_embeddings(IDS).detach()
    states = forward(model, model.word_embeddings(IDS) + delta).token_states[REAL]
    head = rar.reconstruction
    hidden = F.layer_norm(F.gelu(head.dense(states)), (32,), head.norm.weight, head.norm.bias, head.norm.eps)
    scores = hidden @ model.word_embeddings.weight.T + head.bias  # decoder tied to W
    (0.3 * F.cross_entropy(scores.float(), IDS[REAL])).backward()
    assert_same_grads(difference, grads(model, rar), rtol=1e-6, atol=1e-9)


# -- cost in passes, and recipe checks ------------------------------------------------------------------------

@pytest.mark.parametrize(
    "name, options, forwards, backwards",
    [
        ("vanilla", {}, 1, 1),
        ("fgsm_at", {}, 2, 2),
        ("fgm_at", {}, 2, 2),
        ("scal", {"detach_clean_view": True}, 2, 2),
        ("cat", {"detach_clean_view": True}, 2, 2),
        ("pgd_at", {"perturber": {"name": "pgd", "steps": 3}}, 4, 4),  # K attack passes + 1 training pass
        ("freelb", {"freelb": {"steps": 3}}, 3, 3),
        ("rar", {"freelb": {"steps": 3}}, 3, 3),
        ("smart", {}, 3, 3),
        ("carl", {"freelb": {"steps": 3}, "contrast": {"num_negatives": 1}}, 4, 3),  # + the clean pass (no graph yet)
    ],
)
def test_passes_per_step(name, options, forwards, backwards):
    model = tiny_classifier()
    objective = make_objective(name, model, num_train_examples=2, **options)
    with watch_encoder(model) as log:
        run_step(objective, {**BATCH, "index": torch.arange(2)}, model)
    assert (log.forwards, log.backward) == (forwards, backwards)


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("freelb", {"freelb": {"steps": 0}}, "'objective.freelb.steps' must be at least 1, got 0"),
        ("carl", {"freelb": {"eps": -0.1}}, "'objective.freelb.eps' must not be negative, got -0.1"),
        ("fgsm_at", {"perturber": {"name": "fgsm", "eps": -1e-3}}, "'objective.perturber.eps' must not be negative, got -0.001"),
        ("pgd_at", {"perturber": {"name": "pgd", "steps": 0}}, "'objective.perturber.steps' must be at least 1, got 0"),
        ("cat", {"contrast_weight": 1.5}, "'objective.contrast_weight' must be at least 0 and below 1"),
        ("cat", {"contrast_weight": 1.0}, "at 1 no CE is left"),
        ("cat", {"eps": -1e-3}, "'objective.eps' must not be negative"),
        ("scal", {"contrast_weight": -0.5}, "'objective.contrast_weight' must not be negative"),
        ("scal", {"perturber": "pgd"}, "'objective.perturber' must be a one-step perturber"),
        ("carl", {"contrast": {"num_negatives": 0}}, "'objective.contrast.num_negatives' must be at least 1, got 0"),
        ("carl", {"contrast": {"momentum": 1.5}}, "'objective.contrast.momentum' must be between 0 and 1"),
        ("carl", {"contrast_start_step": -1}, "'objective.contrast_start_step' must not be negative"),
        ("rar", {"reconstruction_weight": -1}, "'objective.reconstruction_weight' must not be negative"),
        ("smart", {"regularizer_weight": -1}, "'objective.regularizer_weight' must not be negative"),
    ],
)
def test_nonsensical_settings_fail_recipe_validation_naming_the_key(name, options, message):
    with pytest.raises(RecipeError) as info:
        load_recipe(None, data={"data": {"train": "sst2:train"}, "objective": {"name": name, **options}})
    assert message in str(info.value) and "\n" not in str(info.value)


# -- every objective learns ------------------------------------------------------------------------------------

SMALL_FREELB = {"init_mag": 0.01, "step_size": 0.005, "steps": 2}
SMALL_CONTRAST = {"contrast_weight": 0.1, "contrast": {"temperature": 0.5}}  # a random tiny encoder: a light contrast
LEARNERS = [
    ("vanilla", {}),
    ("fgsm_at", {}),
    ("fgm_at", {"perturber": {"name": "fgm", "eps": 0.01}}),
    ("pgd_at", {"perturber": {"name": "pgd", "eps": 0.01, "step_size": 0.005, "steps": 2}}),
    ("freelb", {"freelb": SMALL_FREELB}),
    ("smart", {}),
    ("scal", {"perturber": {"name": "fgm", "eps": 0.01}, **SMALL_CONTRAST}),
    ("cat", SMALL_CONTRAST),
    ("carl", {"freelb": SMALL_FREELB, "contrast": {"num_negatives": 8}, "contrast_start_step": 30}),
    ("rar", {"freelb": SMALL_FREELB}),
]


@pytest.mark.parametrize("name, options", LEARNERS)
def test_every_objective_fits_a_small_synthetic_task(tmp_path, name, options):
    torch.manual_seed(0)
    model = tiny_classifier(seed=0)
    data = presence_task()
    trainer = trainer_for(tmp_path, model, data, {"name": name, **options}, max_steps=60, batch_size=8, lr=3e-3)
    trainer.fit()
    batch = data.collate(list(range(len(data))))
    model.eval()
    with torch.no_grad():
        predictions = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.argmax(-1)
    assert (predictions == batch["labels"]).float().mean() >= 0.95


# -- the real encoder ---------------------------------------------------------------------------------------------

@pytest.mark.integration
def test_one_step_of_each_objective_on_minilm_and_real_sst2(tmp_path):
    from conftest import SHARED_DATA

    from advcl.modeling.loading import load_classifier

    hf, tokenizer, _ = load_classifier("all-MiniLM-L6-v2", ["neg", "pos"])
    model = EncoderClassifier(hf).train()
    rows = [json.loads(line) for line in (SHARED_DATA / "sst2" / "validation.jsonl").read_text().splitlines()[:12]]
    rows = [r for r in rows if r["label"] == 0][:2] + [r for r in rows if r["label"] == 1][:2]
    encoded = tokenizer([r["text"] for r in rows], padding=True, return_tensors="pt")
    batch = {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"],
             "labels": torch.tensor([r["label"] for r in rows]), "index": torch.arange(4)}
    if "token_type_ids" in encoded:
        batch["token_type_ids"] = encoded["token_type_ids"]
    weight = model.word_embeddings.weight.detach().clone()
    for name, options in [("fgsm_at", {}), ("fgm_at", {}), ("pgd_at", {}), ("freelb", {}), ("smart", {}), ("scal", {}),
                          ("cat", {}), ("carl", {"contrast": {"num_negatives": 1}}), ("rar", {})]:
        objective = make_objective(name, model, num_train_examples=4, **options)
        steps = 2 if name == "carl" else 1  # CARL's first step fills its banks, its second uses L_D
        for step in range(steps):
            out = run_step(objective, batch, model, step=step)
            assert torch.isfinite(out.loss), name
            assert model.word_embeddings.weight.grad.abs().sum() > 0, name
            grads(model, objective)
        if name == "carl":
            assert out.logs["contrast_on"] == 1.0
    assert torch.equal(model.word_embeddings.weight, weight)
