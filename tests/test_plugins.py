"""Plugin discovery: built-ins through the same hooks, entry points, broken plugins, unknown names."""

import sys
import textwrap
from types import SimpleNamespace

import pytest

from advcl import plugins
from advcl.errors import BadInput

GOOD = textwrap.dedent(
    """
    from dataclasses import dataclass
    from torch import nn
    from advcl.hookspecs import hookimpl

    class Doubled(nn.Module):
        name = "doubled_ce"

        @dataclass
        class Config:
            factor: float = 2.0

        def __init__(self, config=None):
            super().__init__()
            self.config = config or self.Config()

    @hookimpl
    def register_losses(register):
        register(Doubled)
    """
)


def fake_entry_points(tmp_path, monkeypatch, modules: dict[str, str]):
    """Install modules on sys.path and expose each as an ``advcl`` entry point of its own distribution."""
    eps = []
    for name, source in modules.items():
        (tmp_path / f"{name}.py").write_text(source)

        def load(name=name):
            __import__(name)
            return sys.modules[name]

        dist = SimpleNamespace(name=f"advcl-{name}", version="1.2.3", requires=None)
        eps.append(SimpleNamespace(name=name, value=name, load=load, dist=dist))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(plugins.metadata, "entry_points", lambda group: eps if group == "advcl" else [])


def test_builtins_register_through_the_hooks():
    reg = plugins.load_registry(autoload=False)
    names = {(c.kind, c.name) for c in reg.all()}
    assert {("objective", "vanilla"), ("loss", "cross_entropy")} <= names
    assert all(c.version for c in reg.all())


def test_third_party_entry_point_is_discovered(tmp_path, monkeypatch):
    fake_entry_points(tmp_path, monkeypatch, {"good_plugin": GOOD})
    reg = plugins.load_registry(autoload=True)
    found = reg.get("loss", "doubled_ce")
    assert (found.plugin, found.version) == ("advcl-good_plugin", "1.2.3")
    assert not reg.broken


def test_autoload_env_var_disables_third_party(tmp_path, monkeypatch):
    fake_entry_points(tmp_path, monkeypatch, {"good_plugin2": GOOD})
    monkeypatch.setenv(plugins.AUTOLOAD_ENV, "1")
    reg = plugins.load_registry()
    assert "doubled_ce" not in reg.components["loss"]
    monkeypatch.setenv(plugins.AUTOLOAD_ENV, "0")
    assert "doubled_ce" in plugins.load_registry().components["loss"]


def test_broken_plugins_are_listed_and_the_rest_works(tmp_path, monkeypatch):
    fake_entry_points(
        tmp_path,
        monkeypatch,
        {
            "explodes_on_import": "raise RuntimeError('boom')",
            "registers_a_taken_name": GOOD.replace('"doubled_ce"', '"vanilla"').replace("register_losses", "register_objectives"),
            "good_plugin3": GOOD,
        },
    )
    with pytest.warns(UserWarning, match="explodes_on_import 1.2.3 is broken"):
        reg = plugins.load_registry(autoload=True)
    reasons = {b.plugin: b.reason for b in reg.broken}
    assert reasons["advcl-explodes_on_import"] == "import failed: RuntimeError: boom"
    assert "objective 'vanilla' is already registered by advcl.objectives.vanilla" in reasons["advcl-registers_a_taken_name"]
    assert reg.get("objective", "vanilla").plugin == "advcl.objectives.vanilla"  # the first registration wins
    assert "doubled_ce" in reg.components["loss"]


def test_unknown_name_lists_the_closest():
    reg = plugins.load_registry(autoload=False)
    with pytest.raises(BadInput, match=r"unknown objective 'vanila' \(did you mean 'vanilla'\? registered: .*vanilla"):
        reg.get("objective", "vanila")
