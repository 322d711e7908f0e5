"""Turn plain TOML data into typed dataclasses, naming the offending key on any mistake.

Types understood: bool, int, float (ints accepted), str, Literal[...], list[T], nested dataclasses and
component references (fields made with :func:`component`): a name, or a table with ``name`` and the
component's own options, validated against that component's ``Config``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from dataclasses import dataclass
from typing import Any, Literal

from advcl.errors import BadInput


class RecipeError(BadInput):
    """A recipe or override that does not fit the schema."""


# The largest integer any recipe field takes: counts and sizes beyond it overflow torch's int64 arithmetic, and
# none is meaningful (a run of 2**40 steps never ends). NaN and ±inf are refused in every float field.
INT_LIMIT = 2**40


@dataclass
class ComponentSpec:
    """A resolved reference to a registered component and its validated options."""

    kind: str
    name: str
    config: Any

    def to_dict(self) -> dict:
        return {"name": self.name, **to_dict(self.config)}


def component(kind: str, default: str):
    """A dataclass field that names a component of ``kind`` (``"fgm"`` or ``{name = "fgm", eps = 1.0}``)."""
    return dataclasses.field(default=default, metadata={"component": kind})


def _type_name(tp) -> str:
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if typing.get_origin(tp) is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _check(value, tp, where: str):
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
    elif origin is list:
        if isinstance(value, list):
            (item_tp,) = typing.get_args(tp)
            return [_check(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    elif origin is dict:
        if isinstance(value, dict):
            return dict(value)
    elif dataclasses.is_dataclass(tp):
        if isinstance(value, tp):  # a default
            return value
        if isinstance(value, dict):
            return build(tp, value, where)
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            if abs(value) > INT_LIMIT:
                raise RecipeError(f"'{where}' = {value} is out of range (at most {INT_LIMIT:,} in size)")
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise RecipeError(f"'{where}' must be a finite number, got {value}")
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    else:  # pragma: no cover - a schema bug
        raise TypeError(f"unsupported type {tp} for {where}")
    raise RecipeError(f"'{where}' must be {_type_name(tp)}, got {value!r}")


class FieldRangeError(RecipeError):
    """A recipe value outside its field's range; ``key`` is dotted, or a bare field name that ``build`` prefixes."""

    def __init__(self, key: str, requirement: str):
        super().__init__(f"'{key}' {requirement}")
        self.key, self.requirement = key, requirement


def resolve_component(kind: str, value, where: str, registry=None, default_name: str = "") -> ComponentSpec:
    """Validate a component reference against the registry and the component's Config.

    A table without ``name`` keeps the field's default component and sets its options.
    """
    from advcl.plugins import registry as default_registry

    registry = registry or default_registry()
    if isinstance(value, ComponentSpec):
        return value
    if isinstance(value, str):
        name, options = value, {}
    elif isinstance(value, dict) and isinstance(value.get("name", default_name), str):
        options = {k: v for k, v in value.items() if k != "name"}
        name = value.get("name", default_name)
    else:
        raise RecipeError(f"'{where}' must be a {kind} name or a table with a 'name', got {value!r}")
    try:
        cls = registry.get(kind, name).cls
    except BadInput as exc:
        raise RecipeError(f"'{where}': {exc}") from None
    return ComponentSpec(kind, name, build(cls.Config, options, where, registry))


def build(cls, data: dict, where: str = "", registry=None):
    """Build dataclass ``cls`` from ``data``; ``where`` is the dotted prefix used in messages."""
    prefix = f"{where}." if where else ""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.6)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
            if key in getattr(cls, "renamed", {}):  # a field a release replaced: say by what
                hint = f" ({cls.renamed[key]})"
            raise RecipeError(f"unknown recipe key '{prefix}{key}'{hint}")
    values = {}
    for name, f in fields.items():
        key = prefix + name
        kind = f.metadata.get("component")
        if name in data:
            raw = data[name]
        elif f.default is not dataclasses.MISSING:
            raw = f.default
        elif f.default_factory is not dataclasses.MISSING:
            raw = f.default_factory()
        else:
            raise RecipeError(f"missing required recipe key '{key}'")
        if kind:
            values[name] = resolve_component(kind, raw, key, registry, f.default)
        else:
            values[name] = _check(raw, hints[name], key)
    try:
        return cls(**values)
    except FieldRangeError as exc:
        if "." in exc.key or not prefix:
            raise
        raise FieldRangeError(prefix + exc.key, exc.requirement) from None


def to_dict(obj) -> Any:
    """Dataclasses (and component specs) back to plain TOML-ready data."""
    if isinstance(obj, ComponentSpec):
        return obj.to_dict()
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj
