"""Embedding-space perturbers: given a loss as a function of the input embeddings, return a perturbation δ.

See :mod:`advcl.perturbers.base` for the protocol and :mod:`advcl.perturbers.norms` for the shared norms,
directions and projections. FreeLB (a training procedure, not a one-shot attack) and CAT's perturbation of
the word-embedding matrix are reusable functions in :mod:`advcl.perturbers.freelb` and
:mod:`advcl.perturbers.matrix`.
"""
