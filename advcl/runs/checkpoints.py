"""The checkpoint folders of a run: ``RUN/checkpoints/step-NNNNNNN``, their names, the newest complete one,
pruning, and reading their files with a one-line :class:`CorruptCheckpoint` naming a bad one.

Only folders named exactly ``step-NNNNNNN`` holding ``state.json`` are checkpoints: a stray copy (``step-0000064
copy``) is ignored, and the temporary folders a killed save leaves (``.tmp-step-*``) are removed on resume
(:func:`remove_orphans`); a corrupt one is renamed out of the way (:func:`set_aside`). What a checkpoint holds and
how it is written (training state, atomically) is :mod:`advcl.engine.checkpoint`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from advcl.errors import BadInput

PREFIX = "step-"
NAME = re.compile(r"step-(\d{7,})")
TMP_PREFIX = ".tmp-" + PREFIX


class CorruptCheckpoint(BadInput):
    """A checkpoint file that is missing, unreadable, of the wrong shape or holds NaN/inf; the message names it."""


def checkpoint_name(step: int) -> str:
    return f"{PREFIX}{step:07d}"


def list_checkpoints(root: Path) -> list[Path]:
    """Complete checkpoints, oldest first (temporary folders are ignored)."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if NAME.fullmatch(p.name) and p.is_dir() and (p / "state.json").is_file()]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX) :]))


def latest_checkpoint(root: Path) -> Path | None:
    found = list_checkpoints(root)
    return found[-1] if found else None


def first_nonfinite(tensors: dict[str, torch.Tensor]) -> str | None:
    """The name of the first floating-point tensor holding NaN or ±inf, or None."""
    for name, tensor in tensors.items():
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and not torch.isfinite(tensor).all():
            return name
    return None


def read_tensors(path: Path, finite: bool = True) -> dict[str, torch.Tensor]:
    """A safetensors file, or :class:`CorruptCheckpoint` naming it (missing, cut short, bad header, NaN/inf)."""
    if not path.is_file():
        raise CorruptCheckpoint(f"{path} is missing")
    try:
        tensors = load_file(path)
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CorruptCheckpoint(f"{path} is not a readable safetensors file ({str(exc).splitlines()[0]})") from None
    bad = first_nonfinite(tensors) if finite else None
    if bad is not None:
        raise CorruptCheckpoint(f"{path} holds NaN or infinite values (in {bad}): not a usable checkpoint")
    return tensors


def read_json(path: Path, kind: type = dict):
    """A JSON file of the given top-level type, or :class:`CorruptCheckpoint` naming it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CorruptCheckpoint(f"{path} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptCheckpoint(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(data, kind):
        raise CorruptCheckpoint(f"{path} is not a JSON {kind.__name__}")
    return data


def set_aside(folder: Path) -> Path:
    """Rename a corrupt checkpoint out of the way (``step-NNNNNNN.corrupt``), so that the step is saved afresh
    and the folder stays for inspection; return its new path."""
    target, n = folder.with_name(folder.name + ".corrupt"), 1
    while target.exists():
        n += 1
        target = folder.with_name(f"{folder.name}.corrupt{n}")
    os.rename(folder, target)
    return target


def remove_orphans(root: Path) -> list[str]:
    """Delete the temporary folders of checkpoint saves that a kill interrupted; return their names."""
    if not root.is_dir():
        return []
    orphans = [p for p in root.iterdir() if p.name.startswith(TMP_PREFIX) and p.is_dir()]
    for path in orphans:
        shutil.rmtree(path, ignore_errors=True)
    return [p.name for p in orphans]


def prune_checkpoints(root: Path, keep: int, protect: set[str]) -> None:
    """Delete all but the ``keep`` newest checkpoints, never one named in ``protect``."""
    found = list_checkpoints(root)
    for folder in found[: max(len(found) - keep, 0)]:
        if folder.name not in protect:
            shutil.rmtree(folder, ignore_errors=True)
