"""What the wiring tests share: references written out term by term in float64, and a check that a function of
several inputs has the reference's value and gradient with respect to every one of them."""

from __future__ import annotations

import math

import torch


def leaves(*shapes, seed: int = 0) -> list[torch.Tensor]:
    """Random float64 tensors that require grad, one per shape."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=generator, dtype=torch.float64).requires_grad_() for shape in shapes]


def cosine(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return (u * v).sum() / (u.norm() * v.norm())


def neg_log_share(own: torch.Tensor, candidates: list[torch.Tensor]) -> torch.Tensor:
    """``−log(e^own / Σ_c e^c)``, written out."""
    return -(own - torch.log(sum(torch.exp(c) for c in candidates)))


def assert_matches(function, reference, inputs: list[torch.Tensor], rtol: float = 1e-5, atol: float = 1e-7):
    """``function(*inputs)`` equals ``reference(*inputs)`` in value and in its gradient w.r.t. every input."""
    actual = function(*inputs)
    expected = reference(*inputs)
    assert actual.shape == expected.shape == ()
    assert math.isclose(actual.item(), expected.item(), rel_tol=rtol, abs_tol=atol), (actual.item(), expected.item())
    grads_actual = torch.autograd.grad(actual, inputs, allow_unused=True)
    grads_expected = torch.autograd.grad(expected, inputs, allow_unused=True)
    for i, (a, e) in enumerate(zip(grads_actual, grads_expected)):
        a = torch.zeros_like(inputs[i]) if a is None else a
        e = torch.zeros_like(inputs[i]) if e is None else e
        scale = float(e.abs().max())
        assert scale > 0 or float(a.abs().max()) == 0, f"input {i}: no gradient expected"
        assert torch.allclose(a.double(), e, rtol=rtol, atol=atol + rtol * scale), f"gradient w.r.t. input {i}"


def assert_grads_to_float32(actual: dict, expected: dict, rtol: float = 1e-5):
    """Gradients by name equal up to float32 rounding (the contrastive losses run in float32): each entry within
    ``rtol`` of itself or of its tensor's largest entry; every gradient the reference has must be non-zero."""
    assert actual.keys() == expected.keys()
    for name in expected:
        scale = float(expected[name].abs().max())
        assert torch.allclose(actual[name], expected[name], rtol=rtol, atol=rtol * scale + 1e-12), name


def close_to_scale(actual: torch.Tensor, expected: torch.Tensor, rtol: float = 1e-5) -> bool:
    """Equal up to ``rtol`` of each entry or of the largest entry (float32 rounding upstream)."""
    expected = expected.to(actual.dtype)
    return torch.allclose(actual, expected, rtol=rtol, atol=rtol * float(expected.abs().max()) + 1e-12)


class RngAtForwards:
    """Torch's RNG state just before and just after each forward of an encoder: a reference replays the dropout
    masks of forward i by restoring ``before[i]``."""

    def __init__(self, model):
        self.model, self.before, self.after = model, [], []

    def __enter__(self):
        self.handles = [  # around the whole model: its classifier's dropout draws after the encoder's
            self.model.register_forward_pre_hook(lambda *_: self.before.append(torch.get_rng_state())),
            self.model.register_forward_hook(lambda *_: self.after.append(torch.get_rng_state())),
        ]
        return self

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()


def wide_classifier(seed: int = 0, num_labels: int = 2, dropout: float = 0.0):
    """The tiny BERT initialised wide (std 0.3): its predictions differ from one text to the next (at the default
    0.02 every text gets nearly the same logits, and terms such as KL(p‖q) and KL(q‖p) then agree to rounding)."""
    from transformers import BertForSequenceClassification

    from advcl.modeling.encoder import EncoderClassifier
    from tiny_models import tiny_bert_config

    torch.manual_seed(seed)
    config = tiny_bert_config(num_labels=num_labels, initializer_range=0.3, hidden_dropout_prob=dropout,
                              attention_probs_dropout_prob=dropout)
    return EncoderClassifier(BertForSequenceClassification(config))
