"""Shell completion for the options that take a recipe file, a registered component or a recipe key.

Each function is a Typer ``autocompletion`` callback, ``(incomplete) -> candidates``; the shell scripts in
completions/ (written by completions/generate.sh) call ``advcl`` back to run them. Component names come from
the plugin registry, so installed plugins complete too (built-ins only under ADVCL_DISABLE_PLUGIN_AUTOLOAD=1).
"""

from __future__ import annotations

import dataclasses
import glob
import os
import typing
import warnings


def recipe_files(incomplete: str) -> list[str]:
    """TOML files and folders that start with ``incomplete``; with nothing typed, the recipes in ./recipes."""
    pattern = incomplete + "*" if incomplete else os.path.join("recipes", "*.toml")
    found = sorted(glob.glob(pattern)) or sorted(glob.glob("*"))
    return [p + os.sep if os.path.isdir(p) else p for p in found if os.path.isdir(p) or p.endswith(".toml")]


def _registered(kind: str) -> list[str]:
    from advcl.plugins import registry

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a broken plugin must not print into the user's prompt
        return sorted(registry().components[kind])


def component_names(kind: str):
    """A callback completing the names of registered components of ``kind``."""

    def complete(incomplete: str) -> list[str]:
        return [name for name in _registered(kind) if name.startswith(incomplete)]

    return complete


def component_kinds(incomplete: str) -> list[str]:
    from advcl.hookspecs import KINDS

    return [kind for kind in KINDS if kind.startswith(incomplete)]


def _recipe_fields() -> dict[str, list[str] | None]:
    """``section.field`` of every recipe field, with its allowed values where they are a fixed set
    (``objective.name`` gets None: its values are the registered objectives, looked up only when asked for,
    since loading the registry imports torch)."""
    from advcl.config.schema import Recipe

    fields: dict[str, list[str] | None] = {"objective.name": None}
    for section in dataclasses.fields(Recipe):
        if section.name == "objective":
            continue
        hints = typing.get_type_hints(section.default_factory)
        for f in dataclasses.fields(section.default_factory):
            literal = typing.get_origin(hints[f.name]) is typing.Literal
            fields[f"{section.name}.{f.name}"] = list(typing.get_args(hints[f.name])) if literal else []
    return fields


def recipe_overrides(incomplete: str) -> list[str]:
    """``--set`` completion: ``section.key=`` for every recipe field, then the value where the choice is fixed
    (``objective.name=`` offers the registered objectives, ``model.pooling=`` cls and mean)."""
    fields = _recipe_fields()
    if "=" not in incomplete:
        return [f"{key}=" for key in fields if key.startswith(incomplete)]
    key, _, value = incomplete.partition("=")
    choices = fields.get(key, [])
    if choices is None:
        choices = _registered("objective")
    return [f"{key}={choice}" for choice in choices if choice.startswith(value)]
