"""Export a run (or model folder) for people who have never heard of advcl.

- ``hf``: a Hugging Face folder (safetensors + config + tokenizer); plain ``AutoModelForSequenceClassification``
  reproduces advcl's logits. Every format's tokenizer carries the run's ``model.max_length`` as its
  ``model_max_length``, so ``truncation=True`` cuts inputs where training did. A run whose classifier reads the pooled sentence vector
  (``model.classifier_input = "sentence"``) has no such folder and exports as ``onnx`` only.
- ``sentence-transformers``: the same folder plus the sentence-transformers module files, so that
  ``SentenceTransformer(DIR)`` encodes with the run's pooling and max length, as ``advcl embed`` does
  (and plain transformers still loads the classifier).
- ``onnx``: ``model.onnx`` with the tokenizer's inputs (``input_ids``, ``attention_mask`` and, for BERT-style
  tokenizers, ``token_type_ids``) and two outputs, ``logits`` and ``sentence_embedding`` (pooled as the run
  pools), dynamic in batch and length; beside it the tokenizer and config.json (label names).

Only the encoder and its classification head are exported: what an objective trains besides them (projection
heads, memory banks, in ``objective.safetensors``) stays in the run folder, and the result says so.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import torch
from safetensors import safe_open

from advcl.errors import BadInput
from advcl.runs import LoadedModel, load_model

FORMATS = ("hf", "sentence-transformers", "onnx")
# the formats that reproduce the logits of a run whose classifier reads the pooled vector (classifier_input = "sentence")
SENTENCE_CLASSIFIER_FORMATS = ("onnx",)
ONNX_FILE = "model.onnx"
ONNX_OUTPUTS = ("logits", "sentence_embedding")
ONNX_SINGLE_FILE_LIMIT = 1 << 30  # weights above 1 GiB go to model.onnx.data (protobuf caps a file at 2 GiB)


def export_model(model_path: str, output: Path, fmt: str = "hf", which: str = "best", overwrite: bool = False) -> dict:
    """Write ``output`` in format ``fmt`` (one of FORMATS), atomically; return what was written."""
    if fmt not in FORMATS:
        raise BadInput(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    taken = output.is_file() or (output.is_dir() and any(output.iterdir()))
    if taken and not overwrite:
        raise BadInput(f"output {output} already exists (pass --overwrite to replace it)")
    loaded = load_model(model_path, which)
    if fmt not in SENTENCE_CLASSIFIER_FORMATS and loaded.model.sentence_classifier is not None:
        raise BadInput(
            f"{loaded.source}: its classifier reads the pooled sentence vector (model.classifier_input = "
            f'"sentence"), which plain transformers cannot load from a --format {fmt} folder; the formats that '
            f"fit this run: {', '.join(SENTENCE_CLASSIFIER_FORMATS)} (--format {SENTENCE_CLASSIFIER_FORMATS[0]})"
        )
    # every format's tokenizer truncates where training did (``truncation=True`` stops at model_max_length), so
    # plain transformers, sentence-transformers and the onnx tokenizer see the inputs advcl saw
    loaded.tokenizer.model_max_length = loaded.max_length
    tmp = output.with_name(f".{output.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    WRITERS[fmt](loaded, tmp)
    if output.exists():
        shutil.rmtree(output) if output.is_dir() else output.unlink()
    os.rename(tmp, output)
    result = {"output": str(output), "source": loaded.source, "format": fmt, "labels": loaded.label_names,
              "pooling": loaded.pooling, "max_length": loaded.max_length, "left_out": objective_state(loaded.source)}
    if fmt == "onnx":
        result["onnx_inputs"] = _onnx_input_names(loaded.tokenizer)
        result["onnx_outputs"] = list(ONNX_OUTPUTS)
    return result


def objective_state(checkpoint: str) -> list[str]:
    """The top-level names of what the run's objective trained besides the model (heads, banks); [] if none."""
    extra = Path(checkpoint) / "objective.safetensors"
    if not extra.is_file():
        return []
    with safe_open(extra, "pt") as handle:
        return sorted({name.split(".")[0] for name in handle.keys()})


def write_hf(loaded: LoadedModel, folder: Path) -> None:
    loaded.model.hf.save_pretrained(folder, safe_serialization=True)
    loaded.tokenizer.save_pretrained(folder)


def write_sentence_transformers(loaded: LoadedModel, folder: Path) -> None:
    """The Hugging Face folder plus the module files sentence-transformers itself writes for
    Transformer(max_seq_length = the run's max_length) -> Pooling(the run's pooling). sentence-transformers 5
    reads the max length from the tokenizer's ``model_max_length``, which :func:`export_model` sets."""
    from sentence_transformers import SentenceTransformer, models

    write_hf(loaded, folder)
    transformer = models.Transformer(str(folder), max_seq_length=loaded.max_length)
    pooling = models.Pooling(loaded.model.hf.config.hidden_size, pooling_mode=loaded.pooling)
    with tempfile.TemporaryDirectory() as scratch:
        SentenceTransformer(modules=[transformer, pooling], device="cpu").save(scratch, create_model_card=False)
        for entry in Path(scratch).iterdir():  # its module files; the weights, config and tokenizer are ours
            if not (folder / entry.name).exists():
                shutil.move(str(entry), folder / entry.name)


class _OnnxGraph(torch.nn.Module):
    """The classifier as a function of tensors only: (ids, mask[, token types]) -> (logits, sentence embedding)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        return out.logits, out.sentence


def _onnx_input_names(tokenizer) -> list[str]:
    return [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in tokenizer.model_input_names]


@contextlib.contextmanager
def _quiet_torch_logs():
    """Silence the exporter's log lines (e.g. about optional torchvision operators) for the duration."""
    logger = logging.getLogger("torch")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def write_onnx(loaded: LoadedModel, folder: Path) -> None:
    """Trace with torch.export (the dynamo exporter; needs onnx and onnxscript) and write model.onnx."""
    try:
        import onnxscript  # noqa: F401  (the exporter's translator: fail here with one line, not deep inside torch)
    except ImportError:
        raise BadInput("--format onnx needs the packages onnx and onnxscript: pip install onnx onnxscript") from None
    names = _onnx_input_names(loaded.tokenizer)
    # batch 2 and two lengths: a size of 1 would be specialised into the graph as a constant
    example = loaded.tokenizer(["an example sentence to trace", "a second one"], return_tensors="pt", padding=True)
    inputs = tuple(example[name] for name in names)
    batch, length = torch.export.Dim("batch"), torch.export.Dim("length")
    weights = sum(p.numel() * p.element_size() for p in loaded.model.parameters())
    folder.mkdir(parents=True)
    model = loaded.model.float().eval()
    with warnings.catch_warnings(), _quiet_torch_logs(), contextlib.redirect_stdout(sys.stderr):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _OnnxGraph(model), inputs, str(folder / ONNX_FILE), dynamo=True, verbose=False,
            input_names=names, output_names=list(ONNX_OUTPUTS),
            dynamic_shapes={name: {0: batch, 1: length} for name in names},
            external_data=weights > ONNX_SINGLE_FILE_LIMIT,
        )
    loaded.model.hf.config.save_pretrained(folder)
    loaded.tokenizer.save_pretrained(folder)


WRITERS = {"hf": write_hf, "sentence-transformers": write_sentence_transformers, "onnx": write_onnx}
