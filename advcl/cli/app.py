"""The Typer app and the output helpers every command shares (results on stdout, the rest on stderr)."""

from __future__ import annotations

import json
import warnings

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    name="advcl",
    help="Contrastive adversarial training for Transformer text encoders.\n\n"
    "Exit status: 0 ok, 1 failed run, 2 bad input, 130 interrupted (checkpoint saved).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)

stdout = Console()


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings (a broken plugin, a library's deprecation) reach the user as one line on stderr."""
    return f"warning: {message}\n"


warnings.formatwarning = _one_line_warning


def print_json(data) -> None:
    print(json.dumps(data, indent=2, default=str))


def print_table(title: str, columns: list[str], rows: list[list]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*[f"{v:.4f}" if isinstance(v, float) else str(v) for v in row])
    stdout.print(table)


JSON_OPTION = typer.Option(False, "--json", help="Print the result as JSON on stdout.")
