"""Objectives that train on real adversarial text (TaiChi, ADA), against expectations computed independently:
TaiChi's loss and its ablations on a hand-made example by naive formulas; ADA's gradient as plain CE over the
union of clean and adversarial rows; data with ``adv_text`` flowing from an ``advcl perturb`` folder into batches;
the run saving the clean model; both objectives learning a small synthetic task; one-line errors for data
without adversarial text."""

import json
import math

import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from torch.nn import functional as F

from advcl.config.recipe import load_recipe
from advcl.config.validate import RecipeError
from advcl.data.batching import encode
from advcl.data.adversarial_rows import describe, keep_statuses
from advcl.data.catalogue import load_data
from advcl.data.dataset import Columns
from advcl.errors import BadInput
from advcl.losses.kl_divergence import KLDivergence
from advcl.losses.l2_contrast import L2Contrast
from advcl.modeling.encoder import EncoderOutput
from objective_helpers import assert_same_grads, dropout_free_classifier, grads, make_objective, presence_task
from objective_helpers import run_step, tiny_dataset, trainer_for
from tiny_models import tiny_tokenizer

# -- naive formulas, in plain Python floats -----------------------------------------------------------------


def softmax(logits):
    exps = [math.exp(v) for v in logits]
    return [e / sum(exps) for e in exps]


def ce_by_hand(logits, label):
    return -math.log(softmax(logits)[label])


def kl_by_hand(logits_p, logits_q):
    p, q = softmax(logits_p), softmax(logits_q)
    return sum(pc * math.log(pc / qc) for pc, qc in zip(p, q))


def ctr_by_hand(anchors, candidates, tau=1.0, normalize=True, reduction="mean"):
    """methods.md: −Σ_i log exp(−‖z_i − z'_i‖/τ) / Σ_{j≠i} exp(−‖z_i − z'_j‖/τ), on unit vectors if ``normalize``,
    divided by the batch size for ``reduction = "mean"``."""
    if normalize:
        anchors = [[v / math.hypot(*z) for v in z] for z in anchors]
        candidates = [[v / math.hypot(*c) for v in c] for c in candidates]
    total = 0.0
    for i, z in enumerate(anchors):
        positive = math.exp(-math.dist(z, candidates[i]) / tau)
        negatives = sum(math.exp(-math.dist(z, c) / tau) for j, c in enumerate(candidates) if j != i)
        total += -math.log(positive / negatives)
    return total / len(anchors) if reduction == "mean" else total


def mean(values):
    return sum(values) / len(values)


# -- the losses ------------------------------------------------------------------------------------------------

Z = [[1.0, 0.0, 2.0], [0.0, 1.0, -1.0]]  # a hand-made 2 x 3 batch of clean representations
Z_ADV = [[0.5, 0.5, 1.5], [1.0, 1.0, 0.0]]


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("tau", [1.0, 0.5])
def test_l2_contrast_on_a_hand_made_example(tau, normalize, reduction):
    contrast = L2Contrast(L2Contrast.Config(temperature=tau, normalize=normalize, reduction=reduction))
    loss = contrast(torch.tensor(Z), torch.tensor(Z_ADV))
    assert loss.item() == pytest.approx(ctr_by_hand(Z, Z_ADV, tau, normalize, reduction), rel=1e-6)
    # closer positives lower it: the sign of the paper's similarity is fixed
    nearer = [[0.9, 0.1, 1.9], [0.1, 0.9, -0.9]]
    assert contrast(torch.tensor(Z), torch.tensor(nearer)) < loss


def test_l2_contrast_is_bounded_below_on_unit_vectors_and_unbounded_as_printed():
    torch.manual_seed(0)
    z = torch.randn(8, 16)  # each positive equal to its anchor; the negatives pushed apart by scaling up
    bound = math.log(7) - 2.0  # each of the 8 terms ≥ log(n − 1) − 2/τ when every distance is ≤ 2
    printed = L2Contrast(L2Contrast.Config(normalize=False, reduction="sum"))
    for scale in (1.0, 1e2, 1e4):
        assert L2Contrast()(scale * z, scale * z).item() >= bound
    assert printed(1e2 * z, 1e2 * z).item() < -1e3 < bound  # as printed: lower and lower without limit
    assert printed(1e4 * z, 1e4 * z).item() < 100 * printed(1e2 * z, 1e2 * z).item() * 0.99


def test_l2_contrast_of_a_single_pair_is_zero():
    assert L2Contrast()(torch.tensor([Z[0]]), torch.tensor([Z_ADV[0]])).item() == 0.0  # no negative: no term


def test_kl_divergence_on_a_hand_made_example():
    p, q = [[2.0, -1.0, 0.5], [0.0, 0.3, 0.1]], [[0.1, 0.9, 0.0], [1.0, -0.5, 0.2]]
    loss = KLDivergence()(torch.tensor(p), torch.tensor(q))
    assert loss.item() == pytest.approx(mean([kl_by_hand(a, b) for a, b in zip(p, q)]), rel=1e-6)


# -- TaiChi on a hand-made example -----------------------------------------------------------------------------


class Lookup(nn.Module):
    """A stand-in encoder: the text whose first token is k has sentence vector ``sentences[k]`` and logits
    ``logits[k]``. Tokens 0, 1 are the clean texts x_1, x_2; tokens 2, 3 their adversarial twins x'_1, x'_2."""

    def __init__(self, sentences, logits):
        super().__init__()
        self.sentences = nn.Parameter(torch.tensor(sentences))
        self.logits = nn.Parameter(torch.tensor(logits))

    def forward(self, input_ids, attention_mask=None):
        rows = input_ids[:, 0]
        return EncoderOutput(self.logits[rows], None, self.sentences[rows])


CLEAN_MODEL = {"sentences": Z + Z_ADV, "logits": [[2.0, -1.0], [0.5, 0.3], [1.0, 0.0], [-0.5, 0.5]]}
ADV_MODEL = {"sentences": [[0.0, 2.0, 1.0], [1.0, -1.0, 0.0], [0.2, 1.5, 1.0], [0.0, 0.0, 1.0]],
             "logits": [[0.1, 0.9], [1.2, -0.3], [0.0, 2.0], [0.7, 0.7]]}
PAIR_BATCH = {"input_ids": torch.tensor([[0], [1]]), "attention_mask": torch.ones(2, 1, dtype=torch.long),
              "adv_input_ids": torch.tensor([[2], [3]]), "adv_attention_mask": torch.ones(2, 1, dtype=torch.long),
              "labels": torch.tensor([0, 1])}
GAMMA = 0.7


def taichi_terms_by_hand(ablation):
    """Every term of methods.md's TaiChi loss (and §4.1's single-model KL), from the tables above."""
    c, a, y = CLEAN_MODEL, ADV_MODEL, [0, 1]
    x, x_adv = [0, 1], [2, 3]
    terms = {
        "ce_clean": mean([ce_by_hand(c["logits"][x[i]], y[i]) for i in range(2)]),
        "ctr_clean": ctr_by_hand([c["sentences"][k] for k in x], [c["sentences"][k] for k in x_adv]),
        "ce_adv": mean([ce_by_hand(a["logits"][x_adv[i]], y[i]) for i in range(2)]),
        "ctr_adv": ctr_by_hand([a["sentences"][k] for k in x_adv], [a["sentences"][k] for k in x]),
        "kl_clean": mean([kl_by_hand(c["logits"][x[i]], a["logits"][x[i]]) for i in range(2)]),
        "kl_adv": mean([kl_by_hand(a["logits"][x_adv[i]], c["logits"][x_adv[i]]) for i in range(2)]),
        "kl": mean([kl_by_hand(c["logits"][x[i]], c["logits"][x_adv[i]]) for i in range(2)]),
    }
    kept = {
        "none": ["ce_clean", "ctr_clean", "ce_adv", "ctr_adv", "kl_clean", "kl_adv"],
        "no_kl": ["ce_clean", "ctr_clean"],
        "no_ctr": ["ce_clean", "ce_adv", "kl_clean", "kl_adv"],
        "no_adv": ["ce_clean", "ctr_clean", "kl"],
    }[ablation]
    return {k: terms[k] for k in kept}


@pytest.mark.parametrize("ablation", ["none", "no_kl", "no_ctr", "no_adv"])
def test_taichi_loss_and_each_ablation_on_a_hand_made_example(ablation):
    clean_model = Lookup(**CLEAN_MODEL)
    objective = make_objective("taichi", clean_model, ablation=ablation, kl_weight=GAMMA)
    two_models = ablation in ("none", "no_ctr")
    assert (objective.adversarial_model is not None) == two_models
    if two_models:
        assert torch.equal(objective.adversarial_model.sentences, clean_model.sentences)  # same initialisation
        objective.adversarial_model.load_state_dict({k: torch.tensor(v) for k, v in ADV_MODEL.items()})
    out = objective.step(PAIR_BATCH, clean_model, ctx=None)
    expected = taichi_terms_by_hand(ablation)
    assert out.logs.keys() == expected.keys()  # each ablation drops exactly its terms
    for name, value in expected.items():
        assert out.logs[name] == pytest.approx(value, rel=1e-5), name
    total = sum(GAMMA * v if name.startswith("kl") else v for name, v in expected.items())
    assert out.loss.item() == pytest.approx(total, rel=1e-5)
    out.loss.backward()
    assert clean_model.logits.grad.abs().sum() > 0
    if two_models:
        assert objective.adversarial_model.logits.grad.abs().sum() > 0  # f_adv is trained by the same loss


def test_taichi_settings_are_validated_naming_the_key():
    base = {"data": {"train": "sst2:train"}}
    with pytest.raises(RecipeError, match="'objective.kl_weight' must not be negative"):
        load_recipe(None, data={**base, "objective": {"name": "taichi", "kl_weight": -1}})
    with pytest.raises(RecipeError, match="'objective.ablation' must be one of"):
        load_recipe(None, data={**base, "objective": {"name": "taichi", "ablation": "no_ce"}})


# -- ADA -------------------------------------------------------------------------------------------------------


def test_ada_gradient_is_that_of_cross_entropy_over_the_union_with_the_clean_labels():
    model = dropout_free_classifier(seed=3)
    clean = [[2, 7, 15, 7, 33, 3], [2, 41, 8, 3]]
    adversarial = [[2, 9, 3], [2, 41, 8, 12, 13, 14, 3]]  # other widths than their clean rows
    data = tiny_dataset(clean, [0, 1])
    data.adversarial = tiny_dataset(adversarial, None)
    batch = data.collate([0, 1])
    objective = make_objective("ada", model)
    out = run_step(objective, batch, model)
    actual = grads(model)

    union = tiny_dataset(clean + adversarial, [0, 1, 0, 1])  # D_clean ∪ D_adv, the clean labels
    rows = union.collate([0, 1, 2, 3])
    loss = F.cross_entropy(model(input_ids=rows["input_ids"], attention_mask=rows["attention_mask"]).logits,
                           rows["labels"])
    loss.backward()
    assert out.loss.item() == pytest.approx(loss.item(), rel=1e-5)
    assert_same_grads(actual, grads(model), rtol=1e-4, atol=1e-7)


# -- data: an advcl perturb folder into batches ----------------------------------------------------------------


def perturbed_folder(folder, rows=48, source="sst2:validation"):
    """A dataset folder in the layout `advcl perturb` writes: text, adv_text, label, attack, status + meta.json."""
    from conftest import SHARED_DATA

    name, split = source.split(":")
    meta = json.loads((SHARED_DATA / name / "meta.json").read_text())
    lines = (SHARED_DATA / name / f"{split}.jsonl").read_text().splitlines()[:rows]
    folder.mkdir(parents=True)
    out = []
    for n, line in enumerate(lines):
        row = json.loads(line)
        status = ("successful", "failed", "skipped")[n % 3]
        adv = row["text"] if status == "skipped" else "quite " + row["text"].replace(" the ", " this ")
        out.append(json.dumps({"text": row["text"], "adv_text": adv, "label": row["label"], "attack": "pwws",
                               "status": status}))
    (folder / "train.jsonl").write_text("\n".join(out) + "\n")
    (folder / "meta.json").write_text(json.dumps({"name": folder.name, "task": meta["task"], "labels": meta["labels"],
                                                  "splits": {"train": rows}, "hub": None}))
    return folder


def test_a_perturbed_folder_loads_with_its_adversarial_texts_into_batches(tmp_path):
    folder = perturbed_folder(tmp_path / "adv" / "sst2_pwws")
    rows = [json.loads(line) for line in (folder / "train.jsonl").read_text().splitlines()]
    data = load_data(f"{folder}:train", Columns(adv_text="adv_text"))
    assert data.label_names == ["negative", "positive"]  # from the folder's meta.json
    assert data.texts == [r["text"] for r in rows] and data.adv_texts == [r["adv_text"] for r in rows]
    assert data.labels == [r["label"] for r in rows]
    picked = data.sample(10, 1)  # subsets keep each row's twin
    assert [rows[data.texts.index(t)]["adv_text"] for t in picked.texts] == picked.adv_texts
    assert load_data(f"{folder}:train").adv_texts is None  # clean columns only unless asked

    tokenizer = tiny_tokenizer()
    batch = encode(data, tokenizer, 64).collate([4, 0])
    for row, i in enumerate([4, 0]):
        n = int(batch["adv_attention_mask"][row].sum())
        assert batch["adv_input_ids"][row, :n].tolist() == tokenizer(rows[i]["adv_text"])["input_ids"]
        assert batch["adv_input_ids"][row, n:].eq(tokenizer.pad_token_id).all()
        assert batch["labels"][row] == rows[i]["label"]


def test_data_without_adversarial_text_is_a_one_line_error_naming_the_column(tmp_path):
    plain = tmp_path / "plain.jsonl"
    plain.write_text(json.dumps({"text": "a fine film", "label": 1}) + "\n")
    for spec, columns in [("sst2:validation", Columns(adv_text="adv_text")),
                          (str(plain), Columns(adv_text="adv_text")),
                          (str(plain), Columns(adv_text="perturbed"))]:
        with pytest.raises(BadInput) as info:
            load_data(spec, columns)
        message = str(info.value)
        assert f"missing column '{columns.adv_text}'" in message and "advcl perturb" in message
        assert "\n" not in message
    with pytest.raises(BadInput, match=r"dataset folder .*nowhere not found: no .*meta.json \(`advcl perturb"):
        load_data(f"{tmp_path / 'nowhere'}:train")


def test_the_successful_attacks_are_kept_by_default_and_the_others_counted(tmp_path):
    folder = perturbed_folder(tmp_path / "adv" / "sst2_pwws", rows=12)  # statuses cycle successful, failed, skipped
    rows = [json.loads(line) for line in (folder / "train.jsonl").read_text().splitlines()]
    data = load_data(f"{folder}:train", Columns(adv_text="adv_text", adv_status="status"))
    assert data.adv_statuses == [r["status"] for r in rows]
    kept, summary = keep_statuses(data, ["successful"])
    successful = [r for r in rows if r["status"] == "successful"]
    assert kept.texts == [r["text"] for r in successful] and kept.adv_texts == [r["adv_text"] for r in successful]
    assert kept.labels == [r["label"] for r in successful] and set(kept.adv_statuses) == {"successful"}
    assert summary == {"used": {"successful": 4}, "dropped": {"failed": 4, "skipped": 4}}
    kept, summary = keep_statuses(data, ["successful", "failed"])
    assert kept.texts == [r["text"] for r in rows if r["status"] != "skipped"]
    assert summary == {"used": {"successful": 4, "failed": 4}, "dropped": {"skipped": 4}}
    assert describe(summary) == "adversarial rows: 4 successful, 4 failed used; 4 skipped dropped (data.adv_statuses)"
    unfiltered = load_data(f"{folder}:train", Columns(adv_text="adv_text"))  # data.adv_status_column = ""
    assert keep_statuses(unfiltered, ["successful"]) == (unfiltered, {"used": {"unknown": 12}, "dropped": {}})


def test_no_row_with_a_wanted_status_is_a_one_line_error_before_the_run_folder(tmp_path, tiny_model_dir):
    from advcl.engine.session import start_training

    folder = perturbed_folder(tmp_path / "adv" / "sst2_pwws", rows=6)
    lines = (folder / "train.jsonl").read_text().splitlines()
    (folder / "train.jsonl").write_text("\n".join(l for l in lines if '"successful"' not in l) + "\n")
    recipe = load_recipe(None, data={
        "run": {"name": "r", "output_dir": str(tmp_path / "runs")}, "model": {"name": str(tiny_model_dir)},
        "data": {"train": f"{folder}:train"}, "objective": {"name": "ada"},
    })
    with pytest.raises(BadInput) as info:
        start_training(recipe)
    message = str(info.value)
    assert "\n" not in message and "no row has an attack status in data.adv_statuses = ['successful']" in message
    assert "2 failed, 2 skipped" in message
    assert not (tmp_path / "runs" / "r").exists()


def test_a_user_file_without_a_status_column_names_the_switch(tmp_path):
    plain = tmp_path / "adv.jsonl"
    plain.write_text(json.dumps({"text": "a fine film", "adv_text": "a fine movie", "label": 1}) + "\n")
    with pytest.raises(BadInput) as info:
        load_data(str(plain), Columns(adv_text="adv_text", adv_status="status"))
    assert "missing column 'status' of attack statuses" in str(info.value)
    assert 'data.adv_status_column = ""' in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("statuses, message", [
    ([], "'data.adv_statuses' is empty"),
    (["successful", "won"], "'data.adv_statuses' holds 'won'; the statuses are successful, failed, skipped"),
])
def test_adv_statuses_are_checked_with_the_recipe(statuses, message):
    with pytest.raises(RecipeError, match=message):
        load_recipe(None, data={"data": {"train": "x", "adv_statuses": statuses}, "objective": {"name": "ada"}})
    assert load_recipe(None, data={"data": {"train": "x"}}).data.adv_statuses == ["successful"]


@pytest.mark.parametrize("name", ["taichi", "ada"])
def test_training_on_data_without_adversarial_text_stops_at_startup(tmp_path, tiny_model_dir, name):
    from advcl.engine.session import start_training

    recipe = load_recipe(None, data={
        "run": {"name": "r", "output_dir": str(tmp_path)}, "model": {"name": str(tiny_model_dir)},
        "data": {"train": "sst2:validation"}, "objective": {"name": name},
    })
    with pytest.raises(BadInput, match=r"missing column 'adv_text' of adversarial text.*advcl perturb"):
        start_training(recipe)
    assert not (tmp_path / "r").exists()


# -- the run: the clean model is the one saved -----------------------------------------------------------------


def test_a_taichi_run_saves_the_clean_model_and_keeps_the_adversarial_one_in_its_state(tmp_path, tiny_model_dir):
    from advcl.runtime.distributed import world
    from advcl.engine.session import _build, run_folder_for
    from advcl.export import export_model
    from advcl.runs import load_model

    folder = perturbed_folder(tmp_path / "adv" / "sst2_pwws", rows=48)  # 16 successful, 16 failed, 16 skipped
    recipe = load_recipe(None, data={
        "run": {"name": "taichi", "output_dir": str(tmp_path / "runs"), "device": "cpu"},
        # mixed_readout: the architecture's head classifies, so that the hf export below applies
        "model": {"name": str(tiny_model_dir), "pooling": "mean", "max_length": 32, "mixed_readout": True},
        "data": {"train": f"{folder}:train", "validation": "sst2:validation", "max_eval_examples": 16},
        "train": {"epochs": 1, "batch_size": 8, "lr": 1e-3, "warmup_ratio": 0.0, "log_every": 1},
        "objective": {"name": "taichi"},
    })
    run = run_folder_for(recipe)
    trainer = _build(recipe, run, True, torch.device("cpu"), world())
    trainer.fit()
    clean, adversarial = trainer.model.eval(), trainer.objective.adversarial_model.eval()
    report = run.read_report()  # the successful attacks trained (the default data.adv_statuses), and it says so
    assert report["adversarial_rows"] == {"used": {"successful": 16}, "dropped": {"failed": 16, "skipped": 16}}
    assert report["train_examples"] == 16 and report["status"] == "completed"

    logged = [json.loads(line) for line in run.metrics.read_text().splitlines()]
    assert {"ce_clean", "ctr_clean", "ce_adv", "ctr_adv", "kl_clean", "kl_adv"} <= logged[0].keys()
    tokenizer = tiny_tokenizer()
    batch = tokenizer(["a moving and funny film", "dull , lifeless"], padding=True, return_tensors="pt")
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    with torch.no_grad():
        expected = clean(**inputs).logits
        assert not torch.allclose(adversarial(**inputs).logits, expected)  # the two models did drift apart
        loaded = load_model(str(run.path), "last")
        assert torch.allclose(loaded.model(**inputs).logits, expected, atol=1e-6)
        assert loaded.pooling == "mean"
        exported = export_model(str(run.path), tmp_path / "hf", "hf", "last")
        assert exported["left_out"] == ["adversarial_model"]
        from transformers import AutoModelForSequenceClassification

        plain = AutoModelForSequenceClassification.from_pretrained(tmp_path / "hf").eval()
        assert torch.allclose(plain(**inputs).logits, expected, atol=1e-6)

    last = run.checkpoint("last")
    state = load_file(last / "objective.safetensors")
    for name, value in adversarial.state_dict().items():
        assert torch.equal(state[f"adversarial_model.{name}"], value), name
    resumed = _build(recipe, run, False, torch.device("cpu"), world())
    resumed.restore(last)
    for name, value in adversarial.state_dict().items():
        assert torch.equal(resumed.objective.adversarial_model.state_dict()[name], value), name


# -- both learn ------------------------------------------------------------------------------------------------


def with_adversarial_twins(data):
    """Each row's twin: one token other than the label's token 11 (and the leading 2) replaced by a random one."""
    generator = torch.Generator().manual_seed(1)
    twins = []
    for ids in data.input_ids:
        free = [i for i in range(1, len(ids)) if ids[i] != 11]
        twin = list(ids)
        twin[free[int(torch.randint(len(free), (1,), generator=generator))]] = int(
            torch.randint(12, 100, (1,), generator=generator))
        twins.append(twin)
    data.adversarial = tiny_dataset(twins, None)
    return data


@pytest.mark.parametrize("name, options, steps", [
    ("taichi", {}, 150), ("taichi", {"ablation": "no_adv"}, 150), ("ada", {}, 60),
])
def test_taichi_and_ada_fit_a_small_synthetic_task(tmp_path, name, options, steps):
    from tiny_models import tiny_classifier

    model = tiny_classifier(seed=0)
    model.pooling = "mean"  # TaiChi's z (as its recipes set)
    data = with_adversarial_twins(presence_task())
    trainer = trainer_for(tmp_path, model, data, {"name": name, **options}, max_steps=steps, batch_size=8, lr=3e-3)
    trainer.fit()
    model.eval()
    for rows in (data, data.adversarial):
        batch = rows.collate(list(range(len(rows))))
        with torch.no_grad():
            predicted = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.argmax(-1)
        assert (predicted == torch.tensor(data.labels)).float().mean() >= 0.95


# -- as a user drives it: advcl perturb, then a recipe naming its folder ----------------------------------------


def test_a_recipe_trains_taichi_on_the_folder_advcl_perturb_wrote(tmp_path, tiny_model_dir):
    from conftest import run_cli, write_tiny_recipe

    from advcl.attacks import resources
    from advcl.data.catalogue import data_dir

    env = {resources.RESOURCES_ENV: str(tmp_path / "resources")}
    resources.build(tmp_path / "resources", data_dir(), only=("stopwords",), log=lambda m: None)  # deepwordbug's
    adv = tmp_path / "runs" / "adv" / "sst2_dwb"
    done = run_cli("perturb", "--attack", "deepwordbug", "--model", str(tiny_model_dir), "--data", "sst2:validation",
                   "--output", str(adv), "-n", "12", "--json", env=env)
    assert done.returncode == 0, done.stderr
    statuses = [json.loads(line)["status"] for line in (adv / "validation.jsonl").read_text().splitlines()]
    recipe = write_tiny_recipe(tmp_path, tiny_model_dir, data={"train": f"{adv}:validation", "max_train_examples": 0,
                                                                "adv_statuses": ["successful", "skipped"]},
                               train={"epochs": 1, "batch_size": 4},
                               model={"pooling": "mean", "classifier_input": "sentence"}, objective={"name": "taichi"})
    done = run_cli("train", "--recipe", str(recipe), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    used = {s: statuses.count(s) for s in ("successful", "skipped") if s in statuses}
    assert report["adversarial_rows"] == {"used": used, "dropped": {"failed": statuses.count("failed")}
                                          if "failed" in statuses else {}}
    assert report["status"] == "completed" and report["train_examples"] == sum(used.values())
    assert report["step"] == -(-sum(used.values()) // 4)

    plain = write_tiny_recipe(tmp_path, tiny_model_dir, run={"name": "ada"}, objective={"name": "ada"})  # no adv_text
    done = run_cli("train", "--recipe", str(plain))
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "missing column 'adv_text' of adversarial text" in done.stderr and "advcl perturb" in done.stderr
