"""Issue 16, plugins: any exception a plugin raises at import (SystemExit and KeyboardInterrupt included) lists it as
broken and the command goes on; a component without a dataclass Config, or with a field type a recipe cannot hold,
is broken at registration rather than a traceback when a recipe names it."""

from __future__ import annotations

import warnings

import pytest

from advcl import plugins
from test_plugins import GOOD, fake_entry_points

RAISES = "raise {exc}\n"
NO_CONFIG = GOOD.replace("@dataclass\n    class Config:\n        factor: float = 2.0", "pass")
ODD_FIELD = GOOD.replace("factor: float = 2.0", "factor: complex = 1j")
NOT_A_DATACLASS = GOOD.replace("@dataclass\n    class Config:", "class Config:")


@pytest.mark.parametrize("source, reason", [
    (RAISES.format(exc="SystemExit(0)"), "import failed: SystemExit"),
    (RAISES.format(exc="KeyboardInterrupt()"), "import failed: KeyboardInterrupt"),
    (RAISES.format(exc="GeneratorExit()"), "import failed: GeneratorExit"),
    (RAISES.format(exc="MemoryError()"), "import failed: MemoryError"),
    (NO_CONFIG, "has no dataclass Config"),
    (NOT_A_DATACLASS, "has no dataclass Config"),
    (ODD_FIELD, "field 'factor' has a type recipes cannot hold"),
])
def test_a_broken_plugin_is_listed_and_the_rest_loads(tmp_path, monkeypatch, source, reason):
    module = f"hostile_{abs(hash(source)) % 10**8}"
    fake_entry_points(tmp_path, monkeypatch, {module: source, "good_neighbour": GOOD.replace("doubled_ce", "nb_ce")})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        registry = plugins.load_registry(autoload=True)
    assert [b.plugin for b in registry.broken] == [f"advcl-{module}"]
    assert reason in registry.broken[0].reason
    assert "nb_ce" in registry.components["loss"] and "doubled_ce" not in registry.components["loss"]
    assert any(f"advcl-{module}" in str(w.message) for w in caught)
    assert "vanilla" in registry.components["objective"]  # the built-ins are all there
