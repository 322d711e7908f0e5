"""Checkpoints: safetensors weights and optimizer state, JSON for the rest, written atomically.

A checkpoint is a folder ``checkpoints/step-NNNNNNN``. It is written under a temporary name and renamed
into place only when every file is complete and flushed, so a kill at any moment leaves the previous
checkpoints intact and the newest complete folder is always a valid place to resume from.
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
from safetensors.torch import load_file, save_file

from advcl.errors import RunFailed

PREFIX = "step-"


def checkpoint_name(step: int) -> str:
    return f"{PREFIX}{step:07d}"


def list_checkpoints(root: Path) -> list[Path]:
    """Complete checkpoints, oldest first (temporary folders are ignored)."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX) and (p / "state.json").is_file()]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX) :]))


def latest_checkpoint(root: Path) -> Path | None:
    found = list_checkpoints(root)
    return found[-1] if found else None


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


def rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i}"] = s
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    meta = {"python": random.getstate(), "numpy": [kind, keys.tolist(), pos, has_gauss, cached]}
    return tensors, meta


def restore_rng(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
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
    rng_states = rng_states or [rng_state()]
    tmp = root / f".tmp-{checkpoint_name(step)}-{os.getpid()}"
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
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        last = latest_checkpoint(root)
        kept = f"the last good checkpoint is {last}" if last else "no earlier checkpoint exists"
        what = "disk full" if exc.errno == errno.ENOSPC else f"{exc.strerror or exc}"
        raise RunFailed(f"could not write checkpoint for step {step} ({what}); {kept}") from None
    return final


def load_checkpoint(folder: Path, rank: int = 0) -> dict:
    """Everything a resume needs, from one checkpoint folder (``rank``: whose RNG state)."""
    optimizer = optimizer_from_files(
        load_file(folder / "optimizer.safetensors"), json.loads((folder / "optimizer.json").read_text())
    )
    extra = folder / "objective.safetensors"
    return {
        "model": load_file(folder / "model.safetensors"),
        "objective": load_file(extra) if extra.is_file() else {},
        "optimizer": optimizer,
        "rng": load_file(folder / f"rng-{rank}.safetensors"),
        "state": json.loads((folder / "state.json").read_text()),
    }


def prune_checkpoints(root: Path, keep: int, protect: set[str]) -> None:
    """Delete all but the ``keep`` newest checkpoints, never one named in ``protect``."""
    found = list_checkpoints(root)
    for folder in found[: max(len(found) - keep, 0)]:
        if folder.name not in protect:
            shutil.rmtree(folder, ignore_errors=True)
