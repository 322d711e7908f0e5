"""What the objective tests share: building an objective by name,
running one step under the engine's backward contract, watching what the encoder is asked to do, and training
through the engine's Trainer on a small synthetic task."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch
from transformers import BertForSequenceClassification

from advcl import plugins
from advcl.config.recipe import load_recipe
from advcl.config.validate import ComponentSpec, build
from advcl.data.batching import EncodedDataset
from advcl.engine.trainer import Trainer
from advcl.modeling.encoder import EncoderClassifier
from advcl.objectives.base import StepContext, StepOutput, create
from advcl.runs import RunFolder
from tiny_models import tiny_bert_config


def make_objective(name: str, model, num_train_examples: int = 0, num_labels: int = 2, **options):
    """The objective ``name`` built as the engine builds it, from recipe-style ``options``."""
    cls = plugins.registry().get("objective", name).cls
    spec = ComponentSpec("objective", name, build(cls.Config, options, "objective"))
    return create(spec, model=model, num_labels=num_labels, num_train_examples=num_train_examples)


def dropout_free_classifier(seed: int = 0, num_labels: int = 2) -> EncoderClassifier:
    """The tiny BERT without dropout, so that a step in train mode can be recomputed exactly."""
    torch.manual_seed(seed)
    config = tiny_bert_config(num_labels=num_labels, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return EncoderClassifier(BertForSequenceClassification(config))


@dataclass
class Calls:
    backward: int = 0


def run_step(objective, batch, model, step: int = 0, calls: Calls | None = None) -> StepOutput:
    """One step under the engine's contract: ``ctx.backward`` for the objective's own passes, then the engine's
    backward of the returned loss (plain backwards here: one micro-batch, no loss scaling)."""
    calls = calls if calls is not None else Calls()

    def backward(loss):
        calls.backward += 1
        loss.backward()

    out = objective.step(batch, model, StepContext(step=step, total_steps=step + 1, backward=backward))
    backward(out.loss)
    return out


def grads(*modules) -> dict[str, torch.Tensor]:
    """Every parameter's gradient (zeros where it got none), by name, then clear them."""
    found = {}
    for i, module in enumerate(modules):
        for name, param in module.named_parameters():
            found[f"{i}.{name}"] = torch.zeros_like(param) if param.grad is None else param.grad.clone()
            param.grad = None
    return found


def assert_same_grads(actual: dict, expected: dict, rtol=1e-7, atol=1e-10):
    assert actual.keys() == expected.keys()
    for name in expected:
        assert torch.allclose(actual[name], expected[name], rtol=rtol, atol=atol), name


@dataclass
class EncoderLog:
    """What the encoder saw: the ``inputs_embeds`` of every forward (lookups when given ids), backward traversals."""

    embeds: list[torch.Tensor] = field(default_factory=list)
    backward: int = 0

    @property
    def forwards(self) -> int:
        return len(self.embeds)


@contextlib.contextmanager
def watch_encoder(model):
    """Record each forward's input embeddings and count backward traversals of the encoder (through its first layer)."""
    log = EncoderLog()
    embeddings = model.hf.base_model.embeddings

    def on_forward(module, args, kwargs):
        given = kwargs.get("inputs_embeds")
        log.embeds.append((given if given is not None else module.word_embeddings(kwargs["input_ids"])).detach().clone())

    def on_backward(module, grad_input, grad_output):
        log.backward += 1

    handles = [
        embeddings.register_forward_pre_hook(on_forward, with_kwargs=True),
        model.hf.base_model.encoder.layer[0].register_full_backward_hook(on_backward),
    ]
    try:
        yield log
    finally:
        for handle in handles:
            handle.remove()


def tiny_dataset(ids: list[list[int]], labels: list[int]) -> EncodedDataset:
    return EncodedDataset(input_ids=ids, token_type_ids=None, labels=labels, pad_token_id=0)


def trainer_for(tmp_path, model, data, objective: dict, **train) -> Trainer:
    """The engine's Trainer over ``data``, no evaluation; ``train`` overrides the recipe's [train] table."""
    recipe = load_recipe(None, data={
        "run": {"name": "t", "output_dir": str(tmp_path)},
        "data": {"train": "in-memory"},
        "train": {"epochs": 0, "max_steps": 1, "batch_size": len(data), "warmup_ratio": 0.0, "log_every": 1000,
                  "eval_every": 100_000, "save_every": 100_000, **train},
        "objective": objective,
    })
    objective = create(recipe.objective, model=model, num_labels=2, num_train_examples=len(data))
    run = RunFolder(tmp_path / "t")
    run.path.mkdir()
    return Trainer(recipe, run, model, objective, train_data=data, validate=None, device=torch.device("cpu"))


def presence_task(n=24):
    """Sentences of 4-8 random tokens after a [CLS]-like 2; the label: whether token 11 occurs."""
    generator = torch.Generator().manual_seed(0)
    ids = []
    for i in range(n):
        row = torch.randint(12, 100, (int(torch.randint(4, 9, (1,), generator=generator)),), generator=generator)
        if i % 2:
            row[int(torch.randint(len(row), (1,), generator=generator))] = 11
        ids.append([2, *row.tolist()])
    return tiny_dataset(ids, [i % 2 for i in range(n)])
