"""Range checks for numeric recipe fields, for a component ``Config`` to call from its ``__post_init__``.

``build`` constructs each Config with its validated values, so a check that raises here fails recipe
validation with a one-line :class:`RecipeError` naming the dotted key, in the words ``check_recipe`` uses.
"""

from __future__ import annotations

from advcl.config.validate import RecipeError


def at_least(key: str, value: float, low: float) -> None:
    if not value >= low:
        raise RecipeError(f"'{key}' must be at least {low}, got {value}")


def not_negative(key: str, value: float) -> None:
    if not value >= 0:
        raise RecipeError(f"'{key}' must not be negative, got {value}")


def positive(key: str, value: float) -> None:
    if not value > 0:
        raise RecipeError(f"'{key}' must be above 0, got {value}")


def fraction(key: str, value: float, *, below_one: bool = False, why: str = "") -> None:
    """``0 ≤ value ≤ 1`` (``below_one``: ``value < 1``); ``why`` is appended to the message."""
    if not (0 <= value < 1 if below_one else 0 <= value <= 1):
        bounds = "at least 0 and below 1" if below_one else "between 0 and 1"
        raise RecipeError(f"'{key}' must be {bounds}{f' ({why})' if why else ''}, got {value}")
