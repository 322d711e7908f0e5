"""Vanilla fine-tuning: ``L = CE(g(h), y)`` (docs/methods.md, "Supervised / Vanilla")."""

from __future__ import annotations

from dataclasses import dataclass

from advcl.config.validate import component
from advcl.hookspecs import hookimpl
from advcl.modeling.encoder import model_inputs
from advcl.objectives.base import Objective, StepOutput, create


class Vanilla(Objective):
    """Plain supervised fine-tuning: the classification loss on clean inputs, nothing else."""

    name = "vanilla"

    @dataclass
    class Config:
        loss: object = component("loss", "cross_entropy")

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.loss = create(config.loss)

    def step(self, batch, model, ctx):
        out = model(**model_inputs(batch))
        loss = self.loss(out.logits, batch["labels"])
        return StepOutput(loss, {"ce": loss.item()})


@hookimpl
def register_objectives(register):
    register(Vanilla)
