"""The masked LM a run trained with objective ``mlm`` (docs/methods.md, "Unsupervised / Masked-LM head"), read from
its run folder: the encoder from its last checkpoint's ``model.safetensors``, the head from
``objective.safetensors``, assembled by :func:`advcl.modeling.mlm.masked_lm_from_weights`. RobustSentEmbed's
generator and the BAE / BERT-Attack recipes load theirs through :func:`load_masked_lm`, which takes a Hugging Face
masked-LM folder as well."""

from __future__ import annotations

import tomllib
from pathlib import Path

from safetensors.torch import load_file

from advcl.errors import BadInput
from advcl.modeling.mlm import load_hf_masked_lm, masked_lm_from_weights
from advcl.runs import RunFolder


def load_masked_lm(path: str | Path):
    """``(masked LM in eval mode, tokenizer)`` from an ``mlm`` run folder or a Hugging Face masked-LM folder.

    A run folder gives its *last* checkpoint: its selection metric (if any) says nothing about its fills.
    Anything else is a one-line :class:`BadInput`.
    """
    if RunFolder.is_run(path):
        return _from_mlm_run(RunFolder(path))
    return load_hf_masked_lm(path)


def _from_mlm_run(run: RunFolder):
    from advcl.modeling.loading import load_tokenizer

    objective = tomllib.loads(run.config.read_text(encoding="utf-8")).get("objective", {})
    if objective.get("name") != "mlm":
        name = objective.get("name")
        raise BadInput(f"run {run.path} was trained with objective '{name}', not 'mlm': it has no masked-LM head")
    tokenizer = load_tokenizer(str(run.model_dir))
    if tokenizer.mask_token_id != objective["mask_token_id"]:
        raise BadInput(
            f"run {run.path} masked with token id {objective['mask_token_id']} but its tokenizer's mask token is "
            f"{tokenizer.mask_token_id}: retrain it with objective.mask_token_id = {tokenizer.mask_token_id}"
        )
    checkpoint = run.checkpoint("last")
    model = masked_lm_from_weights(run.model_dir, load_file(checkpoint / "model.safetensors"),
                                   load_file(checkpoint / "objective.safetensors"),
                                   objective["head"]["layer_norm_eps"], str(run.path), str(checkpoint))
    return model, tokenizer
