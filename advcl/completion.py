"""Shell completion for the options that take a recipe file, a data split or file, a registered component, a
fixed choice or a recipe key.

Each function is a Typer ``autocompletion`` callback, ``(incomplete) -> candidates``; the shell scripts in
completions/ (written by completions/generate.sh) call ``advcl`` back to run them. Component names come from
the plugin registry, so installed plugins complete too (built-ins only under ADVCL_DISABLE_PLUGIN_AUTOLOAD=1).

Bash splits the words of a command line at the characters of ``COMP_WORDBREAKS`` (``=`` and ``:`` among them
by default), so ``--set model.pooling=me`` reaches ``advcl`` as ``model.pooling``, ``=``, ``me`` and
``--data sst2:tr`` as ``sst2``, ``:``, ``tr``. :class:`WordbreakBashComplete` joins such pieces back into the
word advcl will see and answers with what readline replaces: the part of each candidate after the word's last
break (``mean`` for ``model.pooling=me`` and for ``model.pooling=``). Where COMP_WORDBREAKS leaves ``=`` and ``:``
out, the words arrive whole and the candidates go back whole.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import typing
import warnings
from importlib import resources
from pathlib import Path

from typer._completion_classes import BashComplete

from advcl.runtime.atomic import write_text

WORDBREAKS = "=:"  # the characters of bash's default COMP_WORDBREAKS that occur inside advcl's arguments


def _paths(incomplete: str, suffixes: tuple[str, ...]) -> list[str]:
    """Files ending in one of ``suffixes`` and folders (with a trailing separator) that start with ``incomplete``."""
    found = sorted(glob.glob(os.path.expanduser(incomplete) + "*"))
    return [p + os.sep if os.path.isdir(p) else p for p in found
            if os.path.isdir(p) or p.lower().endswith(suffixes)]


def recipe_files(incomplete: str) -> list[str]:
    """TOML files and folders that start with ``incomplete``, from the current folder. With nothing typed:
    ./recipes/*.toml where there is such a folder, else the TOML files and folders here."""
    if not incomplete and os.path.isdir("recipes"):
        return sorted(glob.glob(os.path.join("recipes", "*.toml")))
    return _paths(incomplete, (".toml",))


def choices(*values: str):
    """A callback completing a fixed set of values (``--checkpoint best|last``, ``--device``, ...)."""

    def complete(incomplete: str) -> list[str]:
        return [value for value in values if value.startswith(incomplete)]

    return complete


def _splits(meta: dict, folder: Path | None) -> list[str]:
    splits = set(meta.get("splits") or {}) if isinstance(meta.get("splits"), dict) else set()
    if folder is not None:
        splits |= {p.stem for p in folder.glob("*.jsonl")}
    return sorted(splits)


def _catalogue_splits() -> list[str]:
    """``name:split`` of every dataset the catalogue knows: its built-in entries and the folders of
    ``$ADVCL_DATA_DIR`` with a meta.json (read here without advcl.data, which imports torch)."""
    entries = {name: (meta, None) for name, meta in json.loads(
        resources.files("advcl.data").joinpath("catalogue.json").read_text()).items()}
    for meta_file in Path(os.environ.get("ADVCL_DATA_DIR", "data")).glob("*/meta.json"):
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a broken meta.json is named when the split is used, not in the prompt
        if isinstance(meta, dict):
            entries[meta_file.parent.name] = (meta, meta_file.parent)
    return [f"{name}:{split}" for name, (meta, folder) in sorted(entries.items()) for split in _splits(meta, folder)]


def data_specs(incomplete: str) -> list[str]:
    """``--data``: catalogue splits (``sst2:validation``), data files (csv, tsv, jsonl, json, parquet) and
    folders; a dataset folder (one with a meta.json, like ``advcl perturb --output``'s) offers its splits."""
    from advcl.data.readers import FILE_SUFFIXES

    folder, colon, _ = incomplete.rpartition(":")
    if colon and (Path(folder) / "meta.json").is_file():
        meta = json.loads((Path(folder) / "meta.json").read_text(encoding="utf-8"))
        return [f"{folder}:{s}" for s in _splits(meta, Path(folder)) if f"{folder}:{s}".startswith(incomplete)]
    found = [spec for spec in _catalogue_splits() if spec.startswith(incomplete)]
    for path in _paths(incomplete, FILE_SUFFIXES):
        found.append(path)
        folder = path.rstrip(os.sep)
        if path.endswith(os.sep) and os.sep in folder and (Path(folder) / "meta.json").is_file():
            found.append(folder + ":")  # a dataset folder is named with a separator (else: a catalogue name)
    return found


def _cache_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "advcl" / "completion.json"


def _fingerprint() -> str:
    """What the registered names depend on: advcl's own modules (their newest change), the installed packages
    that declare advcl plugins (name and version), and the autoload switch. Reading it imports no torch."""
    from importlib import metadata

    package = Path(__file__).parent
    newest = max(p.stat().st_mtime_ns for p in package.rglob("*.py"))
    plugins = sorted({f"{ep.dist.name}=={ep.dist.version}" if ep.dist else ep.value
                      for ep in metadata.entry_points(group="advcl")})
    return json.dumps([newest, plugins, os.environ.get("ADVCL_DISABLE_PLUGIN_AUTOLOAD", "")])


def _registered_names() -> dict[str, list[str]]:
    """Every registered component's name by kind, plus ``robust``: the perturbers the robustness attack accepts
    (those with PGD's options). Loading the registry imports torch (seconds), so the names are kept in
    ``$XDG_CACHE_HOME/advcl/completion.json`` and reused while the fingerprint above is unchanged."""
    cache, fingerprint = _cache_file(), _fingerprint()
    try:
        kept = json.loads(cache.read_text(encoding="utf-8"))
        if kept.get("fingerprint") == fingerprint:
            return kept["names"]
    except (OSError, ValueError, AttributeError, KeyError):
        pass  # no cache yet, or one from another version: rebuild it
    from advcl.evaluation.robustness import ATTACK_OPTIONS
    from advcl.plugins import registry

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a broken plugin must not print into the user's prompt
        components = registry().components
    names = {kind: sorted(found) for kind, found in components.items()}
    names["robust"] = sorted(name for name, component in components["perturber"].items()
                             if {f.name for f in dataclasses.fields(component.cls.Config)}.issuperset(ATTACK_OPTIONS))
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        write_text(cache, json.dumps({"fingerprint": fingerprint, "names": names}))
    except OSError:
        pass  # a read-only home: complete without the cache
    return names


def robust_perturbers(incomplete: str) -> list[str]:
    """``--robust``: the registered perturbers the robustness attack accepts (those with PGD's options)."""
    return [name for name in _registered_names()["robust"] if name.startswith(incomplete)]


def _registered(kind: str) -> list[str]:
    return _registered_names()[kind]


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


class WordbreakBashComplete(BashComplete):
    """Typer's bash completion, with the words bash split at ``=`` or ``:`` joined back (module docstring)."""

    def get_completion_args(self) -> tuple[list[str], str]:
        args, incomplete = super().get_completion_args()
        pieces = [*args, incomplete]
        words: list[str] = []
        glue = False  # the previous piece ended in a word break: this one continues the same word
        for piece in pieces:
            breaks = bool(piece) and all(c in WORDBREAKS for c in piece)
            # an empty piece follows a space (at a break bash puts the cursor on the break itself): a new word
            if words and (breaks or (glue and piece)):
                words[-1] += piece
            else:
                words.append(piece)
            glue = breaks
        # readline replaces only the text after the word's last break: candidates drop what comes before it
        word = words[-1]
        self.typed = max(word.rfind(c) for c in WORDBREAKS) + 1 if word != incomplete else 0
        return words[:-1], word

    def format_completion(self, item) -> str:
        return item.value[self.typed:]


def install_bash_wordbreaks() -> None:
    """Make Typer answer bash with :class:`WordbreakBashComplete` (Typer registers its completion classes when
    the app starts, from the names of typer._completion_classes)."""
    import typer._completion_classes

    typer._completion_classes.BashComplete = WordbreakBashComplete
