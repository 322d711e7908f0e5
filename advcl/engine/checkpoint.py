"""Writing and reading a checkpoint's training state: safetensors weights and optimizer state, JSON for the rest.

The folder format (names, the newest complete one, pruning, reading a file with a one-line error) belongs to the run
folder, :mod:`advcl.runs.checkpoints`.

A checkpoint is a folder ``checkpoints/step-NNNNNNN``. It is written under a temporary name and renamed
into place only when every file is complete and flushed, so a kill at any moment leaves the previous
checkpoints intact and the newest complete folder is always a valid place to resume from.

A checkpoint is written only when every weight and optimizer tensor is finite (a step with an infinite learning
rate can leave a finite loss and NaN weights), so a checkpoint on disk is a good one. Reading one checks each
file and names the one that is missing, unreadable, of the wrong shape or non-finite (:class:`CorruptCheckpoint`);
a resume then falls back to the newest checkpoint that reads (:func:`set_aside`). Only folders named exactly
``step-NNNNNNN`` are checkpoints: a stray copy (``step-0000064 copy``) is ignored, and the temporary folders a
killed save leaves (``.tmp-step-*``) are removed on resume (:func:`remove_orphans`).
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import save_file

from advcl.errors import RunFailed
from advcl.runs.checkpoints import (
    TMP_PREFIX,
    CorruptCheckpoint,
    checkpoint_name,
    first_nonfinite,
    latest_checkpoint,
    read_json,
    read_tensors,
)

class NonFiniteState(RunFailed):
    """Weights or optimizer state became NaN/inf: such a state is never written as a checkpoint."""


def optimizer_to_files(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer state_dict into tensors (for safetensors) and JSON-able metadata."""
    tensors, scalars = {}, {}
    for param_id, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{param_id}.{key}"] = value.detach().contiguous().cpu()
            else:
                scalars[f"{param_id}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_files(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for flat, value in list(tensors.items()) + list(meta["scalars"].items()):
        param_id, key = flat.split(".", 1)
        state.setdefault(int(param_id), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def rng_state(device: torch.device | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """This process's random states: torch's CPU generator, the generator of the CUDA ``device`` it trains on (not
    every visible GPU's: a resume may see another number of them), Python's and NumPy's."""
    tensors = {"torch": torch.get_rng_state()}
    if device is not None and device.type == "cuda":
        tensors["cuda"] = torch.cuda.get_rng_state(device)
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    meta = {"python": random.getstate(), "numpy": [kind, keys.tolist(), pos, has_gauss, cached]}
    return tensors, meta


def restore_rng(tensors: dict[str, torch.Tensor], meta: dict, device: torch.device | None = None) -> None:
    """Undo :func:`rng_state`; the saved CUDA generator goes to the ``device`` this process now trains on."""
    torch.set_rng_state(tensors["torch"])
    if "cuda" in tensors and device is not None and device.type == "cuda":
        torch.cuda.set_rng_state(tensors["cuda"], device)
    version, internal, gauss = meta["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


def _write_json(path: Path, data) -> None:
    with path.open("w", encoding="utf-8") as handle:
        json.dump(data, handle)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(
    root: Path,
    step: int,
    model_state: dict[str, torch.Tensor],
    extra_state: dict[str, torch.Tensor],
    optimizer_state: dict,
    trainer_state: dict,
    rng_states: list[tuple[dict[str, torch.Tensor], dict]] | None = None,
) -> Path:
    """Write a complete checkpoint for ``step`` and rename it into place; return its folder.

    ``rng_states`` holds every process's RNG state (rank order); default: this process's.
    """
    final = root / checkpoint_name(step)
    if final.exists():
        return final
    for what, tensors in (("weights", model_state), ("objective state", extra_state),
                          ("optimizer state", optimizer_to_files(optimizer_state)[0])):
        bad = first_nonfinite(tensors)
        if bad is not None:
            last = latest_checkpoint(root)
            kept = f"the last good checkpoint {last.name} is kept" if last else "no checkpoint was written"
            raise NonFiniteState(f"the model's {what} became NaN or infinite at step {step} ({bad}), so it was not "
                                 f"saved: run stopped; {kept} (try a lower train.lr, or check the recipe)")
    rng_states = rng_states or [rng_state()]
    tmp = root / f"{TMP_PREFIX}{step:07d}-{os.getpid()}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        save_file({k: v.detach().contiguous().cpu() for k, v in model_state.items()}, tmp / "model.safetensors")
        if extra_state:
            save_file({k: v.detach().contiguous().cpu() for k, v in extra_state.items()}, tmp / "objective.safetensors")
        opt_tensors, opt_meta = optimizer_to_files(optimizer_state)
        save_file(opt_tensors, tmp / "optimizer.safetensors")
        for rank, (tensors, _) in enumerate(rng_states):
            save_file(tensors, tmp / f"rng-{rank}.safetensors")
        _write_json(tmp / "optimizer.json", opt_meta)
        rng_meta = [meta for _, meta in rng_states]
        _write_json(tmp / "state.json", {**trainer_state, "step": step, "rng": rng_meta})  # last: marks complete
        for f in tmp.iterdir():
            _fsync(f)
        os.rename(tmp, final)
        _fsync(root)
    except (OSError, SafetensorError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        last = latest_checkpoint(root)
        kept = f"the last good checkpoint is {last}" if last else "no earlier checkpoint exists"
        raise RunFailed(f"could not write checkpoint for step {step} ({write_error(exc)}); {kept}") from None
    return final


def write_error(exc: BaseException) -> str:
    """A write failure in a few words: 'disk full' for ENOSPC (safetensors reports it as text in its own error)."""
    if getattr(exc, "errno", None) == errno.ENOSPC or "No space left" in str(exc):
        return "disk full"
    text = getattr(exc, "strerror", None) or str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def load_checkpoint(folder: Path, rank: int = 0) -> dict:
    """Everything a resume needs, from one checkpoint folder (``rank``: whose RNG state); every file is checked
    and a bad one raises :class:`CorruptCheckpoint` naming it."""
    state = read_json(folder / "state.json")
    meta = read_json(folder / "optimizer.json")
    try:
        optimizer = optimizer_from_files(read_tensors(folder / "optimizer.safetensors"), meta)
        rng = state["rng"][rank]
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise CorruptCheckpoint(f"{folder}: state.json or optimizer.json lacks what a resume needs ({exc!r})") from None
    extra = folder / "objective.safetensors"
    return {
        "model": read_tensors(folder / "model.safetensors"),
        "objective": read_tensors(extra) if extra.is_file() else {},
        "optimizer": optimizer,
        "rng": read_tensors(folder / f"rng-{rank}.safetensors", finite=False),
        "rng_meta": rng,
        "state": state,
    }


