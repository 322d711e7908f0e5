from __future__ import annotations

from advcl.cli.app import JSON_OPTION, app, print_json, print_table


@app.command(epilog="Examples:\n\n  advcl plugins\n\n  advcl plugins --json | jq '.components[].name'")
def plugins(as_json: bool = JSON_OPTION):
    """List every registered component (kind, name, plugin, version) and any broken plugin."""
    import warnings

    from advcl.plugins import registry

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # broken plugins are listed below instead
        reg = registry()
    components = [{"kind": c.kind, "name": c.name, "plugin": c.plugin, "version": c.version} for c in reg.all()]
    broken = [{"plugin": b.plugin, "version": b.version, "reason": b.reason} for b in reg.broken]
    if as_json:
        print_json({"components": components, "broken": broken})
        return
    print_table("components", ["kind", "name", "plugin", "version"], [list(c.values()) for c in components])
    if broken:
        print_table("broken plugins", ["plugin", "version", "reason"], [list(b.values()) for b in broken])
