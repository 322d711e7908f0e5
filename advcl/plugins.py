"""Plugin discovery on pluggy: built-ins and entry points of group ``advcl``, loaded the same way.

Set ``ADVCL_DISABLE_PLUGIN_AUTOLOAD=1`` to load the built-ins only. A third-party plugin is reported as
broken (with the reason) and the rest keeps working when its entry point is malformed, its distribution's
``Requires-Dist`` on advcl excludes this version, it fails to import (any exception, SystemExit and
KeyboardInterrupt included), it registers a component without a dataclass ``Config`` or with a field type a
recipe cannot hold, or it registers a name already taken (built-ins load first, so they keep their names). docs/plugins.md is the plugin author's guide.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import os
import typing
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Literal

import pluggy
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from advcl import __version__, hookspecs
from advcl.errors import BadInput

ENTRY_POINT_GROUP = "advcl"
DISTRIBUTION = "advcl"  # the name a plugin's Requires-Dist uses
AUTOLOAD_ENV = "ADVCL_DISABLE_PLUGIN_AUTOLOAD"

BUILTIN_MODULES = (
    "advcl.perturbers.fgsm",
    "advcl.perturbers.fgm",
    "advcl.perturbers.pgd",
    "advcl.perturbers.smart",
    "advcl.losses.cross_entropy",
    "advcl.losses.infonce",
    "advcl.losses.nt_xent",
    "advcl.losses.symmetric_kl",
    "advcl.losses.memory_bank_contrast",
    "advcl.losses.token_reconstruction",
    "advcl.losses.multi_positive_infonce",
    "advcl.losses.replaced_token_detection",
    "advcl.losses.l2_contrast",
    "advcl.losses.kl_divergence",
    "advcl.objectives.vanilla",
    "advcl.objectives.embedding_at",
    "advcl.objectives.freelb",
    "advcl.objectives.smart",
    "advcl.objectives.scal",
    "advcl.objectives.cat",
    "advcl.objectives.carl",
    "advcl.objectives.rar",
    "advcl.objectives.simcse",
    "advcl.objectives.uscal",
    "advcl.objectives.robustsentembed",
    "advcl.objectives.mlm",
    "advcl.objectives.ada",
    "advcl.objectives.taichi",
    "advcl.attacks.recipes",
)

_HOOK_OF_KIND = {
    "perturber": "register_perturbers",
    "loss": "register_losses",
    "objective": "register_objectives",
    "attack": "register_attacks",
}


def config_problem(config) -> str | None:
    """Why a component's ``Config`` cannot be read from a recipe (not a dataclass, a field of a type
    :func:`advcl.config.validate.build` does not read), or None."""
    if not dataclasses.is_dataclass(config) or not isinstance(config, type):
        return "has no dataclass Config"
    try:
        hints = typing.get_type_hints(config)
    except Exception as exc:  # an annotation naming something that does not exist
        return f"Config annotations cannot be read ({type(exc).__name__}: {exc})"
    for f in dataclasses.fields(config):
        if not f.metadata.get("component") and not _readable(hints.get(f.name)):
            return f"Config field '{f.name}' has a type recipes cannot hold ({hints.get(f.name)!r})"
    return None


def _readable(tp) -> bool:
    origin = typing.get_origin(tp)
    if tp in (Any, bool, int, float, str) or origin in (Literal, dict) or dataclasses.is_dataclass(tp):
        return True
    return origin is list and _readable(typing.get_args(tp)[0])


@dataclass(frozen=True)
class Component:
    """One registered component: its class, and which plugin (and version) provided it."""

    kind: str
    name: str
    cls: type
    plugin: str
    version: str


@dataclass(frozen=True)
class BrokenPlugin:
    plugin: str
    version: str
    reason: str


@dataclass
class Registry:
    """Every component by kind and name, plus the plugins that could not be loaded."""

    components: dict[str, dict[str, Component]] = field(
        default_factory=lambda: {kind: {} for kind in hookspecs.KINDS}
    )
    broken: list[BrokenPlugin] = field(default_factory=list)

    def add(self, kind: str, cls: type, plugin: str, version: str) -> None:
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise TypeError(f"{cls!r} has no string attribute 'name'")
        problem = config_problem(getattr(cls, "Config", None))
        if problem:
            raise TypeError(f"{kind} '{name}' {problem}")
        taken = self.components[kind].get(name)
        if taken is not None:
            raise ValueError(
                f"{kind} '{name}' is already registered by {taken.plugin} {taken.version}"
            )
        self.components[kind][name] = Component(kind, name, cls, plugin, version)

    def get(self, kind: str, name: str) -> Component:
        found = self.components[kind].get(name)
        if found is None:
            raise BadInput(unknown_name_message(kind, name, sorted(self.components[kind])))
        return found

    def all(self) -> list[Component]:
        return [c for kind in hookspecs.KINDS for c in self.components[kind].values()]


def unknown_name_message(kind: str, name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    listing = f"registered: {', '.join(known)}" if known else "none is registered"
    return f"unknown {kind} '{name}' ({hint + ' ' if hint else ''}{listing})"


def _plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("advcl")
    pm.add_hookspecs(hookspecs)
    return pm


def _register_from(registry: Registry, plugin, plugin_name: str, version: str) -> str | None:
    """Call one plugin's hooks and add what it registers; return why it failed, or None.

    A plugin registers all of its components or none of them.
    """
    pm = _plugin_manager()
    try:
        pm.register(plugin, name=plugin_name)
    except Exception as exc:  # a malformed hookimpl
        return f"invalid hooks: {exc}"
    pending: list[tuple[str, type]] = []
    for kind, hook_name in _HOOK_OF_KIND.items():
        try:
            getattr(pm.hook, hook_name)(register=lambda cls, _kind=kind: pending.append((_kind, cls)))
        except BaseException as exc:  # SystemExit or KeyboardInterrupt raised by a plugin is its failure too
            return f"{hook_name} failed: {type(exc).__name__}: {exc}"
    trial = Registry({kind: dict(named) for kind, named in registry.components.items()})
    try:
        for kind, cls in pending:
            trial.add(kind, cls, plugin_name, version)
    except (TypeError, ValueError) as exc:
        return str(exc)
    registry.components = trial.components
    return None


def unmet_advcl_requirement(dist) -> str | None:
    """Why this advcl cannot host ``dist`` (its ``Requires-Dist: advcl ...`` excludes this version), or None."""
    for line in dist.requires or []:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue  # not ours to judge; pip reports it
        if canonicalize_name(requirement.name) != DISTRIBUTION:
            continue
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue  # an optional extra's requirement
        if not requirement.specifier.contains(__version__, prereleases=True):
            return f"requires advcl{requirement.specifier}, but advcl {__version__} is installed"
    return None


def _load_entry_point(registry: Registry, ep) -> BrokenPlugin | None:
    """Check, import and register one entry point; what went wrong, or None."""
    version = ep.dist.version if ep.dist is not None else "?"
    plugin_name = ep.dist.name if ep.dist is not None else ep.name
    if metadata.EntryPoint.pattern.match(ep.value) is None:
        failure = f"malformed entry point '{ep.name} = {ep.value}' (expected 'module' or 'module:attribute')"
    else:
        failure = unmet_advcl_requirement(ep.dist) if ep.dist is not None else None
    if failure is None:
        try:
            module = ep.load()
        except BaseException as exc:  # a plugin's SystemExit(0) or KeyboardInterrupt must not end the command
            failure = f"import failed: {type(exc).__name__}: {exc}"
        else:
            failure = _register_from(registry, module, plugin_name, version)
    return BrokenPlugin(plugin_name, version, failure) if failure else None


def load_registry(autoload: bool | None = None) -> Registry:
    """Register the built-ins, then (unless disabled) every installed ``advcl`` entry point."""
    registry = Registry()
    for module_name in BUILTIN_MODULES:
        failure = _register_from(registry, importlib.import_module(module_name), module_name, __version__)
        if failure:  # a built-in that cannot register is a bug, not a user problem
            raise RuntimeError(f"built-in plugin {module_name}: {failure}")
    if autoload is None:
        autoload = os.environ.get(AUTOLOAD_ENV, "") in ("", "0", "false")
    if autoload:
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            broken = _load_entry_point(registry, ep)
            if broken:
                registry.broken.append(broken)
                warnings.warn(f"advcl plugin {broken.plugin} {broken.version} is broken: {broken.reason}", stacklevel=2)
    return registry


_REGISTRY: Registry | None = None


def registry() -> Registry:
    """The process-wide registry, loaded on first use."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = load_registry()
    return _REGISTRY
