"""Per-example predictions of ``advcl eval``, the input of significance tests between two runs.

One JSON object per line, in evaluation order: ``{"text": ..., ["text_pair": ...,] "label": NAME,
"prediction": NAME}``. A run folder keeps them as ``predictions/<data>.jsonl`` and lists them in report.json under
``"evaluations"``, keyed by the ``--data`` string, beside the clean metrics.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from advcl.data.dataset import TextDataset
from advcl.errors import BadInput
from advcl.runtime.atomic import atomic_path


def file_name(data: str) -> str:
    """``sst2:validation`` -> ``sst2_validation.jsonl``; any data string gives a safe file name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", data).strip("_.") + ".jsonl"


def write_predictions(path: Path, dataset: TextDataset, predictions: torch.Tensor, label_names: list[str]) -> None:
    """Write atomically: to a temporary file beside ``path``, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as handle:
        for i, (label, prediction) in enumerate(zip(dataset.labels, predictions.tolist())):
            row = {"text": dataset.texts[i]}
            if dataset.pairs is not None:
                row["text_pair"] = dataset.pairs[i]
            row |= {"label": label_names[label], "prediction": label_names[prediction]}
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


@dataclass
class PairedPredictions:
    """Two systems' predictions on the same examples, as class indices over the union of their label names."""

    labels: torch.Tensor
    a: torch.Tensor
    b: torch.Tensor
    num_classes: int


def read_predictions(path: Path) -> list[dict]:
    if not path.is_file():
        raise BadInput(f"predictions file not found: {path} (run advcl eval on the run again)")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def pair_predictions(path_a: Path, path_b: Path) -> PairedPredictions:
    """Line up two prediction files; refuse files that are not the same examples with the same labels."""
    rows_a, rows_b = read_predictions(path_a), read_predictions(path_b)
    same = len(rows_a) == len(rows_b) and all(
        (ra["text"], ra.get("text_pair"), ra["label"]) == (rb["text"], rb.get("text_pair"), rb["label"])
        for ra, rb in zip(rows_a, rows_b)
    )
    if not same:
        raise BadInput(f"{path_a} and {path_b} are not predictions on the same evaluation set")
    names = sorted({r[key] for r in rows_a + rows_b for key in ("label", "prediction")})
    index = {name: i for i, name in enumerate(names)}

    def column(rows, key):
        return torch.tensor([index[r[key]] for r in rows], dtype=torch.long)

    return PairedPredictions(column(rows_a, "label"), column(rows_a, "prediction"), column(rows_b, "prediction"), len(names))
