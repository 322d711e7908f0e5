from __future__ import annotations

import typer

from advcl.cli.app import JSON_OPTION, app, print_json, print_table

resources_app = typer.Typer(
    help="Offline resources for text attacks: build them once, check what is there.", no_args_is_help=True
)
app.add_typer(resources_app, name="resources")

OUTPUT_OPTION = typer.Option(
    None, "--output", "-o",
    help="Resources folder [default: $ADVCL_RESOURCES, else ~/.cache/advcl/attack-resources].",
)


@resources_app.command(
    epilog="Examples:\n\n  advcl resources build\n\n  advcl resources build --output /data/attack-resources --force\n\n"
    "  advcl resources build --only wordnet,stopwords   # enough for pwws and deepwordbug",
)
def build(
    output: str = OUTPUT_OPTION,
    force: bool = typer.Option(False, "--force", help="Rebuild resources that are already present."),
    wordnet_dir: str = typer.Option("/usr/share/wordnet", help="Where Debian's wordnet-base installed WordNet."),
    only: str = typer.Option("", "--only", help="Comma-separated resources to build (like wordnet,stopwords) "
                             "[default: all]."),
    as_json: bool = JSON_OPTION,
):
    """Prepare everything offline attacks need, in one folder (a few minutes, once).

    WordNet 3.0 copied from Debian's wordnet packages (plus its lexnames file); NLTK stopwords, universal tagset
    and POS tagger from $ADVCL_DATA_DIR/nltk (the tagger converted for nltk ≥ 3.9); and counter-fitted word
    vectors (Mrkšić et al. 2016) built from GloVe 6B-50d and the constraints in $ADVCL_DATA_DIR/lexical, in the
    layout TextAttack's recipes read. The shipped MiniLM stands in for the Universal Sentence Encoder.
    """
    from pathlib import Path

    from advcl.attacks.resources import build as build_resources
    from advcl.attacks.resources import resources_dir, status
    from advcl.data.catalogue import data_dir
    from advcl.runtime.progress import stderr

    folder = Path(output).expanduser() if output else resources_dir()
    names = tuple(n.strip() for n in only.split(",") if n.strip())
    done = build_resources(folder, data_dir(), force, Path(wordnet_dir), names,
                           log=lambda m: stderr.print(m, highlight=False))
    rows = status(folder)
    for row in rows:
        row["built"] = done.get(row["name"], "")
    if as_json:
        print_json({"folder": str(folder), "resources": rows})
        return
    print_table(f"attack resources in {folder}", ["resource", "status", "this run", "where"],
                [[r["name"], r["status"], r["built"], shorter(r["where"], folder)] for r in rows])


@resources_app.command(name="status", epilog="Examples:\n\n  advcl resources status\n\n  advcl resources status --json")
def status_(output: str = OUTPUT_OPTION, as_json: bool = JSON_OPTION):
    """List each attack resource as present or missing, with where it was looked for."""
    from pathlib import Path

    from advcl.attacks.resources import resources_dir, status

    folder = Path(output).expanduser() if output else resources_dir()
    rows = status(folder)
    if as_json:
        print_json({"folder": str(folder), "resources": rows})
        return
    print_table(f"attack resources in {folder}", ["resource", "status", "where"],
                [[r["name"], r["status"], shorter(r["where"], folder)] for r in rows])


def shorter(where: str, folder) -> str:
    """A path inside the folder relative to it (the table's title names the folder); anything else as is."""
    from pathlib import Path

    path = Path(where)
    return str(path.relative_to(folder)) if path.is_relative_to(folder) else where
