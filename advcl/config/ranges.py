"""Range checks for numeric recipe fields, for a component ``Config`` to call from its ``__post_init__``.

``build`` constructs each Config with its validated values, so a check that raises here fails recipe
validation with a one-line :class:`RecipeError` naming the dotted key, in the words ``check_recipe`` uses.
A key without a dot is the field's name inside its own table: a component used at several places of a recipe
(a perturber under ``objective.perturber`` or ``objective.adversary.perturber``) names just the field and
``build`` puts the path it was read from in front.
"""

from __future__ import annotations

from advcl.config.validate import FieldRangeError


def at_least(key: str, value: float, low: float) -> None:
    if not value >= low:
        raise FieldRangeError(key, f"must be at least {low}, got {value}")


def at_most(key: str, value: float, high: float) -> None:
    if not value <= high:
        raise FieldRangeError(key, f"must be at most {high}, got {value}")


def not_negative(key: str, value: float) -> None:
    if not value >= 0:
        raise FieldRangeError(key, f"must not be negative, got {value}")


def positive(key: str, value: float) -> None:
    if not value > 0:
        raise FieldRangeError(key, f"must be above 0, got {value}")


def fraction(key: str, value: float, *, below_one: bool = False, why: str = "") -> None:
    """``0 ≤ value ≤ 1`` (``below_one``: ``value < 1``); ``why`` is appended to the message."""
    if not (0 <= value < 1 if below_one else 0 <= value <= 1):
        bounds = "at least 0 and below 1" if below_one else "between 0 and 1"
        raise FieldRangeError(key, f"must be {bounds}{f' ({why})' if why else ''}, got {value}")
