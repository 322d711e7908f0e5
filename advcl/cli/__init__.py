"""The ``advcl`` command line: one module per command in this package, all registered on one Typer app."""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
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
    from rich.markup import escape

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # advcl says what matters itself
    try:
        app()
    except AdvclError as exc:
        from advcl.engine.distributed import launched_topology
        from advcl.engine.progress import stderr

        if launched_topology().is_main:  # under torchrun every process fails alike; one says why
            stderr.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except Exception as exc:
        from advcl.engine.distributed import launched_topology, lost_peer

        topology = launched_topology()
        if not (topology.distributed and lost_peer(exc)):
            raise
        # another process stopped first (an error it reported, a crash, a kill): its own output says why; the
        # others stop at once, and rank 0 alone says so, in one line
        if topology.is_main:
            from advcl.engine.progress import stderr

            # "[gloo/.../pair.cc:537] Connection closed by peer [127.0.0.1]:4242. This is typically ..." -> its gist
            reason = re.sub(r"^\[[^\]]*\]\s*", "", str(exc).strip().splitlines()[0] if str(exc).strip() else "")
            reason = reason.split(". ")[0].rstrip(".") or type(exc).__name__
            stderr.print(f"[bold red]error:[/] another process stopped, so all {topology.world_size} stopped "
                         f"({escape(reason)}); the first to fail says why (torchrun's summary names it)",
                         highlight=False, soft_wrap=True)
        sys.exit(1)
    finally:
        from advcl.engine.distributed import shutdown

        shutdown()
