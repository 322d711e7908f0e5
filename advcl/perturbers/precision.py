"""The input gradient that builds a perturbation, safe from float16 underflow (docs/methods.md, "Conventions").

A perturbation direction is ``∇_E L`` read off an input-only backward (``torch.autograd.grad``), which the
engine's GradScaler never sees. In float16 (autocast to float16, or a model cast to it) the activation
gradients of that backward fall below float16's smallest subnormal (2⁻²⁴ ≈ 6e-8) and flush to zero: δ would be
zero and adversarial training silently clean training. :func:`input_gradient` then differentiates
``SCALE·L`` instead, and divides the result back, so that it returns ``∇_E L`` itself. In float32 and bfloat16
(whose range is float32's) nothing is scaled: the gradient is exactly what ``torch.autograd.grad`` gives.
"""

from __future__ import annotations

import torch

# 2¹⁵, the scale range a GradScaler settles in for BERT-size models: the largest power of two at which the gradient
# of a mean cross-entropy at the logits (at most 1 in size, for a batch of one) stays below float16's max, 65504.
SCALE = 2.0**15


def runs_in_float16(inputs: torch.Tensor) -> bool:
    """Whether a computation on ``inputs`` runs in float16: they are float16, or autocast to float16 is on."""
    device = inputs.device.type
    autocast_half = torch.is_autocast_enabled(device) and torch.get_autocast_dtype(device) == torch.float16
    return inputs.dtype == torch.float16 or autocast_half


def input_gradient(loss: torch.Tensor, inputs: torch.Tensor, retain_graph: bool = False) -> torch.Tensor:
    """``∇_inputs loss`` (``torch.autograd.grad``); in float16 taken on ``SCALE·loss`` and divided back.

    An overflow of the scaled backward gives non-finite entries; they are zeroed (as
    :func:`advcl.perturbers.norms.ascent_direction` does), so δ stays finite. The division by a power of two is
    exact in the float32 gradient of the inputs that autocast leaves in float32 (the embedding lookups).
    """
    if not runs_in_float16(inputs):
        (grad,) = torch.autograd.grad(loss, inputs, retain_graph=retain_graph)
        return grad
    (grad,) = torch.autograd.grad(loss * SCALE, inputs, retain_graph=retain_graph)
    return torch.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0) / SCALE
