"""What an evaluation was run on: a whole split or a seeded random sample of it, and the key it is kept under.

A run folder's report.json keeps each evaluation (``"evaluations"``, ``"robustness"``, ``"sts"``, ...) under a key
that says what was evaluated: the ``--data`` string for the whole split (``sst2:validation``) and
``DATA@N`` for a seeded random sample of N examples (``sst2:validation@20``, ``advcl eval --max-examples 20``).
A sample therefore never replaces a full evaluation, and ``advcl report`` only pairs predictions made on the same
sample. Each entry also carries ``"sample": {"examples", "of", "seed"}``.
"""

from __future__ import annotations

SAMPLE_SEED = 0  # the seed of every --max-examples sample, so that two runs are sampled identically


def sample_info(evaluated: int, total: int, seed: int = SAMPLE_SEED) -> dict:
    """``{"examples": evaluated, "of": total, "seed": seed}`` (``seed`` is None for a whole split)."""
    return {"examples": evaluated, "of": total, "seed": seed if evaluated < total else None}


def sample_key(name: str, evaluated: int, total: int) -> str:
    """``name`` for a whole split, ``name@evaluated`` for a sample of it."""
    return name if evaluated >= total else f"{name}@{evaluated}"


def describe_sample(entry: dict) -> str:
    """``all 872``, ``random 20 of 872 (seed 0)``, or (an entry written before samples were recorded)
    ``20 examples``."""
    sample = entry.get("sample")
    if sample is None:
        return f"{entry.get('examples', '?')} examples"
    if sample["seed"] is None:
        return f"all {sample['of']}"
    return f"random {sample['examples']} of {sample['of']} (seed {sample['seed']})"
