"""The ``advcl`` command line: one module per command, all registered on one Typer app."""

from __future__ import annotations

import os
import sys

from advcl.cli.app import app
from advcl.cli import train, evaluate, embed, export, plugins, data  # noqa: F401  (registers commands)
from advcl.errors import AdvclError


def main() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # advcl says what matters itself
    try:
        app()
    except AdvclError as exc:
        from advcl.engine.progress import stderr

        stderr.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
