"""The stable plugin surface: everything a plugin author imports from advcl, in one module.

A plugin imports from ``advcl.api`` only; every other advcl module is internal and may move between releases
(docs/plugins.md is the guide, ``plugins/`` holds two complete examples, and a test fails if one of them reaches
past this module). What is here:

- ``hookimpl``: the marker for the ``register_*`` hook functions (``advcl.hookspecs`` lists the hooks).
- Component base classes and what the engine hands them: :class:`Objective` with :class:`StepContext` and
  :class:`StepOutput`; :class:`Perturber` / :class:`OneStepPerturber` with ``LossFn`` and ``loss_gradient``;
  :class:`Loss`, the constructor a loss module shares.
- Building components from a recipe: ``component(kind, default)`` declares a Config field naming another
  component, ``create(spec, **kwargs)`` instantiates the resolved :class:`ComponentSpec`, ``build`` validates a
  Config from a dict exactly as a recipe table is validated, and :class:`RecipeError` is the one-line error.
- Range checks for a Config's ``__post_init__``: ``at_least``, ``at_most``, ``not_negative``, ``positive``,
  ``fraction``. Pass the field's bare name (``positive("temperature", ...)``): ``build`` prefixes the path the
  table was read from, so the error names ``loss.temperature`` or ``objective.contrast.temperature`` as the
  recipe spells it.
- The model an objective trains: :class:`EncoderClassifier` (``.logits`` and the pooled ``.sentence`` of its
  :class:`EncoderOutput`) and ``model_inputs(batch)``, the batch keys it takes.
- Embedding-space norms (docs/methods.md, "Perturbers"): ``Norm``, ``Scope``, ``token_mask``, ``p_norm``,
  ``l2_norm``, ``normalised``, ``ascent_direction``, ``ascent_step``, ``project``, ``random_in_ball``.
"""

from advcl.config.ranges import at_least, at_most, fraction, not_negative, positive
from advcl.config.validate import ComponentSpec, RecipeError, build, component
from advcl.hookspecs import hookimpl
from advcl.losses.base import Loss
from advcl.modeling.encoder import EncoderClassifier, EncoderOutput, model_inputs
from advcl.objectives.base import Objective, StepContext, StepOutput, create
from advcl.perturbers.base import LossFn, OneStepPerturber, Perturber, loss_gradient
from advcl.perturbers.norms import (
    Norm,
    Scope,
    ascent_direction,
    ascent_step,
    l2_norm,
    normalised,
    p_norm,
    project,
    random_in_ball,
    token_mask,
)

__all__ = [
    "ComponentSpec",
    "EncoderClassifier",
    "EncoderOutput",
    "Loss",
    "LossFn",
    "Norm",
    "Objective",
    "OneStepPerturber",
    "Perturber",
    "RecipeError",
    "Scope",
    "StepContext",
    "StepOutput",
    "ascent_direction",
    "ascent_step",
    "at_least",
    "at_most",
    "build",
    "component",
    "create",
    "fraction",
    "hookimpl",
    "l2_norm",
    "loss_gradient",
    "model_inputs",
    "normalised",
    "not_negative",
    "p_norm",
    "positive",
    "project",
    "random_in_ball",
    "token_mask",
]
