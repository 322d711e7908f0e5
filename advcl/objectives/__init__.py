"""Training objectives: one method each; see :mod:`advcl.objectives.base` for the protocol."""
