"""The Typer app and the output helpers every command shares (results on stdout, the rest on stderr)."""

from __future__ import annotations

import json
import typing
import warnings
from typing import Literal

import typer
from rich.console import Console
from typer.core import TyperOption
from rich.table import Table

from advcl.completion import choices, install_bash_wordbreaks

install_bash_wordbreaks()  # bash splits `--set key=value` and `--data name:split` at = and :
app = typer.Typer(
    name="advcl",
    help="Contrastive adversarial training for Transformer text encoders.\n\n"
    "Exit status: 0 ok, 1 failed run, 2 bad input, 130 interrupted (checkpoint saved).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)



def _flag_type(self, ctx):
    """What `--help` prints in an option's type column: nothing for an on/off flag (Typer prints ``<bool>``, as if
    the flag took a value), the value's type otherwise."""
    return None if self.is_flag else _value_type(self, ctx)


_value_type, TyperOption.display_type_rich = TyperOption.display_type_rich, _flag_type

stdout = Console()
UNLIMITED_WIDTH = 1 << 20  # columns of a table printed to a pipe: as wide as its widest row


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
    # a terminal wraps cells to its width; a pipe or a file gets every cell whole (rich would cut them at 80 columns)
    (stdout if stdout.is_terminal else Console(width=UNLIMITED_WIDTH)).print(table)


JSON_OPTION = typer.Option(False, "--json", help="Print the result as JSON on stdout.")

Checkpoint = Literal["best", "last"]  # which checkpoint of a run folder a command loads


def _checkpoint_choice(value: str) -> str:
    """Refuse a --checkpoint other than best or last, in one line (exit 2), before the command starts."""
    if value not in typing.get_args(Checkpoint):
        from advcl.errors import BadInput

        raise BadInput(f"--checkpoint must be {' or '.join(typing.get_args(Checkpoint))}, got {value!r}")
    return value


# Typer would turn the Literal itself into click's choice, whose refusal is a usage box; advcl's is one line
CHECKPOINT_OPTION = typer.Option("best", help="Which checkpoint of a run folder: best or last.",
                                 callback=_checkpoint_choice, autocompletion=choices(*typing.get_args(Checkpoint)))
