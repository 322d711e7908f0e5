"""The whole plugin surface: one hook per component kind.

A plugin module implements any of these with ``@hookimpl`` and calls ``register(ComponentClass)``
once per component. advcl's own components register through the very same hooks.
"""

import pluggy

hookspec = pluggy.HookspecMarker("advcl")
hookimpl = pluggy.HookimplMarker("advcl")

KINDS = ("perturber", "loss", "objective", "attack")


@hookspec
def register_perturbers(register):
    """Register embedding-space perturbers (FGSM, PGD, ...) by calling register(cls)."""


@hookspec
def register_losses(register):
    """Register losses (nn.Module classes on representations or logits) by calling register(cls)."""


@hookspec
def register_objectives(register):
    """Register training objectives (one training method each) by calling register(cls)."""


@hookspec
def register_attacks(register):
    """Register text-space attacks by calling register(cls)."""
