"""Export a run (or model folder) as a plain Hugging Face folder: safetensors + config + tokenizer."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from advcl.errors import BadInput
from advcl.runs import load_model


def export_hf(model_path: str, output: Path, which: str = "best", overwrite: bool = False) -> dict:
    taken = output.is_file() or (output.is_dir() and any(output.iterdir()))
    if taken and not overwrite:
        raise BadInput(f"output {output} already exists (pass --overwrite to replace it)")
    loaded = load_model(model_path, which)
    tmp = output.with_name(f".{output.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    loaded.model.hf.save_pretrained(tmp, safe_serialization=True)
    loaded.tokenizer.save_pretrained(tmp)
    if output.exists():
        shutil.rmtree(output) if output.is_dir() else output.unlink()
    os.rename(tmp, output)
    return {"output": str(output), "source": loaded.source, "format": "hf", "labels": loaded.label_names}
