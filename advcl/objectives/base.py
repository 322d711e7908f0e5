"""What an objective is: one training method that turns a batch into a loss.

An objective is an ``nn.Module`` (so any heads it owns are trained and checkpointed with the model)
with a ``name``, a ``Config`` dataclass (its recipe options) and ``step(batch, model, ctx)``. It builds
its losses and perturbers by name through ``ctx``; it never touches the optimizer, devices or
checkpoints: the engine owns those.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from advcl.config.validate import ComponentSpec


@dataclass
class StepContext:
    """What the engine tells an objective about the current optimizer step.

    ``backward(loss)`` is for objectives that need several backward passes in one step (FreeLB, or a clean
    pass whose input gradient builds the perturbation): it scales for gradient accumulation (and mixed
    precision) exactly as the engine does. Parameter gradients accumulate over these passes; the loss the
    objective returns gets the final backward from the engine, and only that one is synchronised across
    processes in distributed training (the earlier ones run under DDP's no_sync).
    """

    step: int  # optimizer steps done before this one
    total_steps: int
    backward: Callable[[torch.Tensor], None]


@dataclass
class StepOutput:
    loss: torch.Tensor
    logs: dict[str, float] = field(default_factory=dict)


def create(spec: ComponentSpec, **kwargs):
    """Instantiate a resolved component spec: ``cls(config, **kwargs)``."""
    from advcl.plugins import registry

    return registry().get(spec.kind, spec.name).cls(spec.config, **kwargs)


class Objective(nn.Module):
    name: ClassVar[str]
    Config: ClassVar[type]
    needs_labels: ClassVar[bool] = True
    # trains on real adversarial text: batches carry adv_input_ids / adv_attention_mask (advcl.data.batching)
    needs_adversarial_text: ClassVar[bool] = False
    # a contrastive/representation term reads the pooled sentence vector (``EncoderOutput.sentence``); with labels,
    # the recipe check then wants the classifier to read that vector too (advcl.config.recipe.check_readout)
    contrasts_sentence: ClassVar[bool] = False
    # a contrastive term takes its negatives from the other rows of the batch: data.group_by_length = "auto"
    # then keeps random batches (length-grouped ones would hold easier negatives)
    in_batch_negatives: ClassVar[bool] = False

    def __init__(self, config, model: nn.Module | None = None, num_labels: int = 0, num_train_examples: int = 0):
        """``model`` is the EncoderClassifier being trained: read its sizes (hidden size, vocabulary,
        ``word_embeddings``) to build heads; do not keep parameters of it that the engine already trains."""
        super().__init__()
        self.config = config
        self.num_labels = num_labels
        self.num_train_examples = num_train_examples

    def step(self, batch: dict, model: nn.Module, ctx: StepContext) -> StepOutput:
        raise NotImplementedError
