"""FGSM / FGM / PGD adversarial training: recipes resolve, and a few steps lower the loss of a tiny model."""

import pytest
import torch
from torch.nn import functional as F

from advcl import plugins
from advcl.config.validate import build
from advcl.objectives.base import StepContext
from advcl.objectives.embedding_at import FGMTraining, FGSMTraining, PGDTraining
from tiny_models import tiny_classifier


def toy_batch():
    """Eight padded sentences; the label is whether token 11 occurs."""
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(12, 100, (8, 7), generator=generator)
    ids[::2, 3] = 11
    lengths = torch.tensor([7, 5, 6, 7, 4, 7, 5, 6])
    mask = (torch.arange(7) < lengths[:, None]).long()
    return {"input_ids": ids * mask, "attention_mask": mask, "labels": torch.tensor([1, 0] * 4)}


def clean_ce(model, batch):
    model.eval()
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    model.train()
    return F.cross_entropy(logits, batch["labels"]).item()


@pytest.mark.parametrize(
    "cls, perturber",
    [
        (FGSMTraining, {"name": "fgsm", "eps": 0.01}),
        (FGMTraining, {"name": "fgm", "eps": 0.5}),
        (PGDTraining, {"name": "pgd", "eps": 0.5, "step_size": 0.2, "steps": 2}),
    ],
)
def test_a_few_adversarial_steps_lower_the_loss(cls, perturber):
    config = build(cls.Config, {"perturber": perturber}, "objective")
    objective = cls(config, num_labels=2)
    model = tiny_classifier(seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch = toy_batch()
    before = clean_ce(model, batch)
    logs = []
    for step in range(8):
        out = objective.step(batch, model, StepContext(step=step, total_steps=8, backward=lambda loss: loss.backward()))
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        logs.append(out.logs)
    assert clean_ce(model, batch) < before
    assert logs[-1]["ce"] + logs[-1]["ce_adv"] < logs[0]["ce"] + logs[0]["ce_adv"]


def test_each_objective_defaults_to_its_own_perturber():
    for cls, name in ((FGSMTraining, "fgsm"), (FGMTraining, "fgm"), (PGDTraining, "pgd")):
        assert build(cls.Config, {}, "objective").perturber.name == name
    assert plugins.registry().get("objective", "pgd_at").cls is PGDTraining
