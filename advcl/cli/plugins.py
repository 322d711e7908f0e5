from __future__ import annotations

import typer

from advcl.cli.app import JSON_OPTION, app, print_json, print_table
from advcl.completion import component_kinds


@app.command(
    epilog="Examples:\n\n  advcl plugins\n\n  advcl plugins --kind objective\n\n"
    "  advcl plugins --json | jq '.components[].name'\n\n"
    "  ADVCL_DISABLE_PLUGIN_AUTOLOAD=1 advcl plugins   # the built-ins only"
)
def plugins(
    kind: str = typer.Option(None, "--kind", "-k", help="Only this kind: perturber, loss, objective or attack.",
                             autocompletion=component_kinds),
    as_json: bool = JSON_OPTION,
):
    """List every registered component (kind, name, plugin, version) and any broken plugin, with the reason."""
    import warnings

    from advcl.errors import BadInput
    from advcl.hookspecs import KINDS
    from advcl.plugins import registry

    if kind is not None and kind not in KINDS:
        raise BadInput(f"--kind must be one of {', '.join(KINDS)}, got {kind!r}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # broken plugins are listed below instead
        reg = registry()
    components = [
        {"kind": c.kind, "name": c.name, "plugin": c.plugin, "version": c.version}
        for c in reg.all() if kind in (None, c.kind)
    ]
    broken = [{"plugin": b.plugin, "version": b.version, "reason": b.reason} for b in reg.broken]
    if as_json:
        print_json({"components": components, "broken": broken})
        return
    print_table("components", ["kind", "name", "plugin", "version"], [list(c.values()) for c in components])
    if broken:
        print_table("broken plugins", ["plugin", "version", "reason"], [list(b.values()) for b in broken])
