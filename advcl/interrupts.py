"""Ctrl-C in the command line: exit 130 with one line at once, except where a command saves its work first.

While ``advcl`` starts (imports torch, transformers, a model) there is nothing to save, and a
KeyboardInterrupt raised inside a half-done import is swallowed or turned into another error by the libraries
on the way (ImportError of a "partially initialized module", an exit status of 0). So :func:`main` in
advcl.cli makes SIGINT end the process directly (:func:`stop_now`); the loops that keep finished work (the
attack loop) run under :func:`raising_keyboard_interrupt`, and the trainer installs its own handler.
"""

from __future__ import annotations

import os
import signal
import sys
from contextlib import contextmanager

MESSAGE = "interrupted (Ctrl-C)"


def stop_now(signum=None, frame=None) -> None:
    """Exit 130 with one line on stderr, skipping interpreter clean-up (which may trip over modules that a
    Ctrl-C left half-imported)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed pipe must not stop the exit
            pass
    os.write(2, (MESSAGE + "\n").encode())
    os._exit(130)


def install_stop_now():
    """Make SIGINT call :func:`stop_now`; returns the previous handler (None outside the main thread, where
    signal handlers cannot be set)."""
    try:
        return signal.signal(signal.SIGINT, stop_now)
    except ValueError:
        return None


@contextmanager
def raising_keyboard_interrupt():
    """Within the block Ctrl-C raises KeyboardInterrupt, for code that catches it to keep finished work."""
    try:
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
