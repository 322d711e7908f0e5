"""The ``advcl`` command line: one module per command in this package, all registered on one Typer app.

Start-up stays light (``advcl --help`` and a shell-completion request import neither torch nor transformers):
each command imports what it needs inside its function. Ctrl-C at any moment of start-up or of a command
that does not handle it itself ends with one line and exit status 130, never a traceback (advcl.interrupts).
"""

from __future__ import annotations

import os
import signal
import sys

from advcl.interrupts import install_stop_now, stop_now

_previous_handler = install_stop_now()  # Ctrl-C while the commands below are imported: nothing to save yet

import importlib  # noqa: E402
import pkgutil  # noqa: E402
import re  # noqa: E402

from advcl.cli.app import app  # noqa: E402
from advcl.errors import AdvclError, Interrupted  # noqa: E402

COMMAND_ORDER = ("train", "perturb", "embed", "attack", "eval", "export", "report")

for _module in pkgutil.iter_modules(__path__):  # every module registers its command(s) on import
    if _module.name != "app":
        importlib.import_module(f"{__name__}.{_module.name}")


def _order(command) -> tuple[int, str]:
    name = command.name or command.callback.__name__
    return (COMMAND_ORDER.index(name) if name in COMMAND_ORDER else len(COMMAND_ORDER), name)


app.registered_commands.sort(key=_order)

if _previous_handler is not None:  # importing this package (tests, scripts) leaves the caller's handler
    signal.signal(signal.SIGINT, _previous_handler)


def _interrupted(exc: BaseException | None) -> bool:
    """Whether ``exc`` is, or was raised while handling, a KeyboardInterrupt (Typer turns one into exit 130)."""
    while exc is not None:
        if isinstance(exc, KeyboardInterrupt):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _distributed():
    """advcl.runtime.distributed where a command has imported it, else None: importing it imports torch, which
    --help, completion and a bad option never need."""
    return sys.modules.get("advcl.runtime.distributed")


def main() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # advcl says what matters itself
    install_stop_now()  # until a command that keeps its work (training, attacks) takes Ctrl-C over
    try:
        app()
    except KeyboardInterrupt:
        stop_now()
    except SystemExit as exc:
        if exc.code == 130 and _interrupted(exc):  # a second Ctrl-C while training saves a checkpoint
            stop_now()
        raise
    except AdvclError as exc:
        from rich.markup import escape

        from advcl.runtime.progress import stderr

        distributed = _distributed()
        # under torchrun every process fails alike; one says why
        if distributed.launched_topology().is_main if distributed else os.environ.get("RANK", "0") == "0":
            # a clean Ctrl-C (work saved, exit 130) is not an error: its message says what stopped and how to go on
            prefix = "" if isinstance(exc, Interrupted) else "[bold red]error:[/] "
            stderr.print(f"{prefix}{escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except Exception as exc:
        distributed = _distributed()
        if distributed is None:
            raise
        topology = distributed.launched_topology()
        if not (topology.distributed and distributed.lost_peer(exc)):
            raise
        # another process stopped first (an error it reported, a crash, a kill): its own output says why; the
        # others stop at once, and rank 0 alone says so, in one line
        if topology.is_main:
            from rich.markup import escape

            from advcl.runtime.progress import stderr

            # "[gloo/.../pair.cc:537] Connection closed by peer [127.0.0.1]:4242. This is typically ..." -> its gist
            reason = re.sub(r"^\[[^\]]*\]\s*", "", str(exc).strip().splitlines()[0] if str(exc).strip() else "")
            reason = reason.split(". ")[0].rstrip(".") or type(exc).__name__
            stderr.print(f"[bold red]error:[/] another process stopped, so all {topology.world_size} stopped "
                         f"({escape(reason)}); the first to fail says why (torchrun's summary names it)",
                         highlight=False, soft_wrap=True)
        sys.exit(1)
    finally:
        distributed = _distributed()
        if distributed is not None:
            distributed.shutdown()
