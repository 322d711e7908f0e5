"""Sentence embeddings of a text file, written as .npy, .safetensors or .jsonl."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from advcl.data.batching import encode, length_sorted_batches
from advcl.data.dataset import TextDataset
from advcl.data.readers import DataError
from advcl.data.tasks import UNLABELED
from advcl.errors import BadInput
from advcl.modeling.encoder import model_inputs
from advcl.runtime.atomic import atomic_path

OUTPUT_SUFFIXES = (".npy", ".safetensors", ".jsonl")


def read_lines(path: Path) -> list[str]:
    """One sentence per line; an empty line is an error naming it."""
    if not path.is_file():
        raise DataError(f"input file not found: {path}")
    try:
        lines = path.read_bytes().decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not valid UTF-8") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise DataError(f"{path}:{number}: empty line (one sentence per line)")
    if not lines:
        raise DataError(f"{path}: no sentences")
    return lines


@torch.no_grad()
def embed_texts(model, tokenizer, texts: list[str], max_length: int, batch_size: int, device, normalize=False, progress=None):
    """One sentence vector per text, in the order given; batches are formed longest first (less padding)."""
    data = encode(TextDataset("input", UNLABELED, texts), tokenizer, max_length)
    model.eval()
    chunks = []
    batches = length_sorted_batches(data.lengths(), batch_size)
    task = progress.add_task("embedding", total=len(batches)) if progress else None
    for indices in batches:
        batch = {k: v.to(device) for k, v in data.collate(indices).items()}
        sentence = model(**model_inputs(batch)).sentence.float()
        if normalize:
            sentence = torch.nn.functional.normalize(sentence, dim=-1)
        chunks.append(sentence.cpu())
        if progress:
            progress.advance(task)
    ordered = torch.cat(chunks)
    embeddings = torch.empty_like(ordered)
    embeddings[[i for indices in batches for i in indices]] = ordered
    return embeddings


def check_output_path(path: Path) -> None:
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise BadInput(f"output {path} must end in {', '.join(OUTPUT_SUFFIXES)}")
    if not path.parent.exists():
        raise BadInput(f"output folder {path.parent} does not exist")


def write_embeddings(path: Path, texts: list[str], embeddings: torch.Tensor) -> None:
    """Write atomically: to a temporary file beside ``path``, then rename."""
    from safetensors.torch import save_file

    suffix = path.suffix.lower()
    with atomic_path(path) as tmp:
        if suffix == ".npy":
            np.save(tmp, embeddings.numpy())
        elif suffix == ".safetensors":
            save_file({"embeddings": embeddings.contiguous()}, tmp)
        else:
            with tmp.open("w", encoding="utf-8") as handle:
                for text, vector in zip(texts, embeddings.tolist()):
                    handle.write(json.dumps({"text": text, "embedding": vector}) + "\n")
