"""advcl-supcon: the loss against eq. 2 written out, the objective on a tiny model, discovery through advcl."""

import itertools
import math

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from advcl import plugins
from advcl.api import ComponentSpec, EncoderClassifier, RecipeError, StepContext, build, create
from advcl_supcon.loss import SupConLoss


def eq2_by_hand(features, labels, temperature):
    """Khosla et al. 2020, eq. 2, one anchor and one positive at a time, averaged over anchors with positives."""
    z = torch.nn.functional.normalize(features.double(), dim=-1)
    n = len(z)
    terms = []
    for i in range(n):
        positives = [p for p in range(n) if p != i and labels[p] == labels[i]]
        if not positives:
            continue
        denominator = sum(math.exp(float(z[i] @ z[a]) / temperature) for a in range(n) if a != i)
        terms.append(-sum(math.log(math.exp(float(z[i] @ z[p]) / temperature) / denominator) for p in positives) / len(positives))
    return sum(terms) / len(terms)


@pytest.fixture(autouse=True)
def with_the_plugin(monkeypatch):
    """The registry as an installed advcl-supcon makes it (entry points loaded, whatever the environment says)."""
    monkeypatch.setattr(plugins, "_REGISTRY", plugins.load_registry(autoload=True))


def test_installed_plugin_is_discovered_with_its_version():
    reg = plugins.registry()
    for kind in ("loss", "objective"):
        found = reg.get(kind, "supcon")
        assert (found.plugin, found.version) == ("advcl-supcon", "0.1.0")
    assert not [b for b in reg.broken if b.plugin == "advcl-supcon"]


@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_loss_is_equation_2(temperature):
    torch.manual_seed(0)
    features, labels = torch.randn(7, 5), torch.tensor([0, 1, 0, 2, 1, 0, 3])  # class 2 and 3: no positive
    loss = SupConLoss(SupConLoss.Config(temperature=temperature))(features, labels)
    assert loss.item() == pytest.approx(eq2_by_hand(features, labels, temperature), rel=1e-5)


def test_clustered_features_score_lower_and_singletons_give_zero_with_a_graph():
    labels = torch.tensor([0, 0, 1, 1])
    clustered = torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0]])
    loss = SupConLoss()
    assert loss(clustered, labels) < loss(clustered[[0, 2, 1, 3]], labels)
    features = torch.randn(3, 4, requires_grad=True)
    alone = loss(features, torch.tensor([0, 1, 2]))
    alone.backward()
    assert alone.item() == 0.0 and torch.equal(features.grad, torch.zeros(3, 4))


def test_temperature_must_be_positive_and_the_error_names_the_path_it_was_read_from():
    with pytest.raises(RecipeError, match="'loss.temperature' must be above 0"):
        build(SupConLoss.Config, {"temperature": 0.0}, "loss")
    cls = plugins.registry().get("objective", "supcon").cls
    with pytest.raises(RecipeError, match=r"^'objective\.contrast\.temperature' must be above 0"):
        build(cls.Config, {"contrast": {"temperature": -1.0}}, "objective")


def test_objective_step_trains_encoder_and_projection_head():
    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    model = EncoderClassifier(BertForSequenceClassification(config), pooling="mean")
    cls = plugins.registry().get("objective", "supcon").cls
    spec = ComponentSpec("objective", "supcon", build(cls.Config, {"weight": 0.5, "projection_dim": 8}, "objective"))
    objective = create(spec, model=model, num_labels=2)
    batch = {
        "input_ids": torch.tensor([[2, 7, 15, 3], [2, 41, 8, 3], [2, 9, 9, 3], [2, 11, 3, 0]]),
        "attention_mask": torch.tensor([[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 0]]),
        "labels": torch.tensor([0, 1, 0, 1]),
    }
    out = objective.step(batch, model, StepContext(0, 1, backward=lambda loss: loss.backward()))
    assert out.loss.item() == pytest.approx(out.logs["ce"] + 0.5 * out.logs["supcon"], rel=1e-5)
    out.loss.backward()
    for module in (objective.head, model.hf.bert.embeddings):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in itertools.islice(module.parameters(), 2))
