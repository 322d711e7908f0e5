"""Embedding-space robustness (docs/methods.md, "Evaluation protocols"; CARL Tables 4-5).

For each ε, PGD-K (a registered perturber, ``pgd`` by default) perturbs the input embeddings ``E = W[input_ids]``
to maximise the cross-entropy of the true label; we report

- accuracy under attack: an example counts as correct only if it is classified correctly both clean and at
  ``E + δ`` (δ = 0 lies in every ε-ball, so a clean mistake is already a successful attack; this keeps
  accuracy under attack ≤ clean accuracy, as the worst case over the ball must be);
- the mean cosine distance ``1 − cos(h, h_adv)`` and the mean euclidean distance ``‖h − h_adv‖₂`` between the
  clean and adversarial pooled sentence representations, over all examples (CARL's Table 4 prints the cosine
  *similarity*, ``1 −`` our cosine distance).

ε = 0 means no attack (δ = 0). The attack differentiates with respect to δ only, with every parameter frozen
for the duration, so no ``.grad`` is written and ``requires_grad`` flags come back as they were. The random start
is seeded per batch inside a forked RNG: the same data, batch size and device give the same numbers, whatever
other ε are evaluated alongside, and the caller's RNG state is untouched.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from advcl.data.batching import EncodedDataset, length_sorted_batches
from advcl.errors import BadInput
from advcl.modeling.encoder import EncoderOutput, model_inputs
from advcl.perturbers.base import Perturber

DEFAULT_EPS = (0.02, 0.075, 0.1)  # CARL's grid (Table 5)
STEP_SIZE_FACTOR = 2.5  # default α = 2.5·ε/K (Madry et al. 2018): K steps can cross the ball and move along its edge
NORMS = ("l2", "linf")
ATTACK_OPTIONS = ("eps", "step_size", "steps", "norm")  # what a perturber must take to serve as the attack


@dataclass(frozen=True)
class AttackSettings:
    """The attack run at every ε: a registered perturber with PGD's options; checked on construction."""

    attack: str = "pgd"
    steps: int = 10
    step_size: float | None = None  # None: STEP_SIZE_FACTOR·ε/steps (= ε/4 at 10 steps)
    norm: str = "l2"
    seed: int = 0

    def __post_init__(self):
        if self.steps < 1:
            raise BadInput(f"the attack needs steps >= 1, got {self.steps}")
        if self.step_size is not None and not (math.isfinite(self.step_size) and self.step_size > 0):
            raise BadInput(f"the attack's step size must be a number > 0, got {self.step_size}")
        if self.norm not in NORMS:
            raise BadInput(f"the attack's norm must be {' or '.join(NORMS)}, got {self.norm!r}")
        self.perturber_class()  # an unknown or unsuitable name fails now, before any model is loaded

    def perturber_class(self) -> type[Perturber]:
        from advcl.plugins import registry

        cls = registry().get("perturber", self.attack).cls  # unknown: BadInput naming the closest ones
        options = {f.name for f in dataclasses.fields(cls.Config)}
        if not options.issuperset(ATTACK_OPTIONS):
            raise BadInput(
                f"perturber '{self.attack}' cannot be the robustness attack: it needs the options "
                f"{', '.join(ATTACK_OPTIONS)} (like 'pgd'), and it has {', '.join(sorted(options))}"
            )
        return cls

    def step_size_for(self, eps: float) -> float:
        return self.step_size if self.step_size is not None else STEP_SIZE_FACTOR * eps / self.steps

    def perturber(self, eps: float) -> Perturber | None:
        """The attack at radius ``eps``; None at ε = 0 (the ball is {0})."""
        check_eps(eps)
        if eps == 0:
            return None
        cls = self.perturber_class()
        return cls(cls.Config(eps=eps, step_size=self.step_size_for(eps), steps=self.steps, norm=self.norm))


def check_eps(eps: float) -> float:
    if not (math.isfinite(eps) and eps >= 0):
        raise BadInput(f"ε must be a finite number >= 0, got {eps}")
    return eps


def parse_eps(text: str) -> list[float]:
    """``"0.02,0.075,0.1"`` -> ``[0.02, 0.075, 0.1]``, each checked."""
    try:
        values = [float(item) for item in text.split(",")]
    except ValueError:
        raise BadInput(f"ε must be a comma-separated list of numbers such as 0.02,0.075,0.1, got {text!r}") from None
    return [check_eps(value) for value in values]


def adversarial_delta(model, embeds, inputs: dict, labels, perturber: Perturber | None) -> torch.Tensor:
    """δ for the embeddings ``embeds`` of one batch, ascending the summed CE of ``labels`` (zeros if no perturber).

    ``inputs`` are the batch's other model inputs (attention_mask, token_type_ids). The summed CE makes each
    example's gradient its own, whatever the batch size.
    """
    if perturber is None:
        return torch.zeros_like(embeds)

    def loss_fn(perturbed):
        return F.cross_entropy(model(inputs_embeds=perturbed, **inputs).logits, labels, reduction="sum")

    return perturber(loss_fn, embeds, inputs["attention_mask"])


def representation_distances(clean: torch.Tensor, adversarial: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per example: cosine distance ``1 − cos`` and euclidean distance between two (batch, dim) representations."""
    clean, adversarial = clean.float(), adversarial.float()
    cosine = 1 - F.cosine_similarity(clean, adversarial, dim=-1)
    return cosine, torch.linalg.vector_norm(clean - adversarial, dim=-1)


@contextlib.contextmanager
def frozen(model):
    """Every parameter with ``requires_grad=False`` inside; the original flags restored on exit."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


@dataclass
class AttackedBatch:
    """One batch of :func:`attacked_batches`: the clean pass and, per perturber, δ and the pass at ``E + δ``."""

    indices: list[int]
    labels: torch.Tensor
    attention_mask: torch.Tensor
    clean: EncoderOutput
    attacks: list[tuple[torch.Tensor, EncoderOutput]]


@torch.no_grad()
def attacked_batches(
    model, data: EncodedDataset, perturbers: Sequence[Perturber | None], settings: AttackSettings, batch_size: int,
    device, progress=None,
) -> Iterator[AttackedBatch]:
    """The attack of every perturber on each batch of ``data`` (δ seeded by ``settings.seed`` and the batch's number).

    Batches hold rows of similar length, longest first (:func:`~advcl.data.batching.length_sorted_batches`);
    ``AttackedBatch.indices`` says which rows.

    Shared by :func:`robustness` and ``advcl perturb --space embedding``, so that both see the same δ. Until the
    generator finishes (or is closed) the model is in eval mode with every parameter frozen and the RNG is a fork;
    then the model gets its ``requires_grad`` flags and train/eval mode back, and the caller's RNG state is as it was.
    """
    device = torch.device(device)
    batches = length_sorted_batches(data.lengths(), batch_size)
    task = progress.add_task("attacking", total=len(batches) * len(perturbers)) if progress else None
    was_training = model.training
    model.eval()
    try:
        with frozen(model), torch.random.fork_rng(devices=[] if device.type == "cpu" else [device]):
            for number, indices in enumerate(batches):
                batch = {k: v.to(device) for k, v in data.collate(indices).items()}
                inputs, labels = model_inputs(batch), batch["labels"]
                embeds = model.word_embeddings(inputs.pop("input_ids"))
                clean = model(inputs_embeds=embeds, **inputs)
                attacks = []
                for perturber in perturbers:
                    torch.manual_seed(settings.seed * 1_000_003 + number)
                    delta = adversarial_delta(model, embeds, inputs, labels, perturber)
                    attacks.append((delta, model(inputs_embeds=embeds + delta, **inputs)))
                    if progress:
                        progress.advance(task)
                yield AttackedBatch(indices, labels, inputs["attention_mask"], clean, attacks)
    finally:
        model.train(was_training)
        if progress:
            progress.remove_task(task)


def robustness(
    model,
    data: EncodedDataset,
    eps: Sequence[float],
    settings: AttackSettings,
    batch_size: int,
    device,
    progress=None,
) -> dict:
    """Clean accuracy, and accuracy / mean cosine and euclidean distance under attack at each ε.

    Leaves the model's weights, ``requires_grad`` flags, ``.grad`` and train/eval mode as it found them.
    """
    perturbers = [settings.perturber(e) for e in eps]
    clean_correct = 0
    totals = [{"correct": 0, "cosine": 0.0, "euclidean": 0.0} for _ in eps]
    for batch in attacked_batches(model, data, perturbers, settings, batch_size, device, progress):
        correct = batch.clean.logits.argmax(-1) == batch.labels
        clean_correct += correct.sum().item()
        for (_, adversarial), total in zip(batch.attacks, totals):
            cosine, euclidean = representation_distances(batch.clean.sentence, adversarial.sentence)
            total["correct"] += (correct & (adversarial.logits.argmax(-1) == batch.labels)).sum().item()
            total["cosine"] += cosine.sum().item()
            total["euclidean"] += euclidean.sum().item()
    n = len(data)
    return {
        "attack": settings.attack,
        "norm": settings.norm,
        "steps": settings.steps,
        "seed": settings.seed,
        "examples": n,
        "clean_accuracy": clean_correct / n,
        "results": [
            {
                "eps": e,
                "step_size": settings.step_size_for(e),
                "accuracy": total["correct"] / n,
                "cosine_distance": total["cosine"] / n,
                "euclidean_distance": total["euclidean"] / n,
            }
            for e, total in zip(eps, totals)
        ],
    }
