from __future__ import annotations

from advcl.cli.app import JSON_OPTION, app, print_json, print_table


@app.command(epilog="Examples:\n\n  ADVCL_DATA_DIR=/path/to/data advcl data\n\n  advcl data --json")
def data(as_json: bool = JSON_OPTION):
    """List the dataset catalogue and where each split resolves (local folder, hub id, or missing)."""
    from advcl.data.catalogue import catalogue_names, data_dir, meta_for, resolve

    rows = []
    for name in catalogue_names():
        meta = meta_for(name) or {}
        splits = meta.get("splits") or {}
        for split in splits or ["train"]:
            where = resolve(name, split)
            rows.append({"name": name, "task": meta.get("task", "?"), "split": split,
                         "rows": splits.get(split), "resolves_to": where.kind, "where": where.where})
    if as_json:
        print_json({"data_dir": str(data_dir()), "datasets": rows})
        return
    print_table(
        f"data catalogue (ADVCL_DATA_DIR={data_dir()})",
        ["name", "task", "split", "rows", "resolves to", "where"],
        [list(r.values()) for r in rows],
    )
