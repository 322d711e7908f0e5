"""The ``advcl`` command line: one module per command in this package, all registered on one Typer app."""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys

from advcl.cli.app import app
from advcl.errors import AdvclError

COMMAND_ORDER = ("train", "perturb", "embed", "attack", "eval", "export", "report")

for _module in pkgutil.iter_modules(__path__):  # every module registers its command(s) on import
    if _module.name != "app":
        importlib.import_module(f"{__name__}.{_module.name}")


def _order(command) -> tuple[int, str]:
    name = command.name or command.callback.__name__
    return (COMMAND_ORDER.index(name) if name in COMMAND_ORDER else len(COMMAND_ORDER), name)


app.registered_commands.sort(key=_order)


def main() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # advcl says what matters itself
    try:
        app()
    except AdvclError as exc:
        from advcl.engine.distributed import launched_topology
        from advcl.engine.progress import stderr

        if launched_topology().is_main:  # under torchrun every process fails alike; one says why
            stderr.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    finally:
        from advcl.engine.distributed import shutdown

        shutdown()
