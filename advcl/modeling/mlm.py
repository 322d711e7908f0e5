"""Masked language models: BERT's token masking, a generator's edits for replaced-token detection, and loading.

- :func:`mask_tokens`: BERT's corruption (Devlin et al. 2019, §3.1 "Task #1"): of each sentence's ``m``
  maskable positions (the real tokens other than the first and the last: never [CLS], [SEP] or padding),
  exactly ``max(1, round(rate·m))`` are selected, as BERT's reference data pipeline does; of those, 80 %
  become [MASK], 10 % a random token and 10 % stay as they are. The ``mlm`` objective trains on this.
- :func:`replace_tokens`: ELECTRA's generator step (Clark et al. 2020, §2; RobustSentEmbed, Rafiei Asl et al.
  2024, §3.2): ``x' = Mask(x)`` (every selected position becomes [MASK]), ``x'' = G(x')`` by sampling the
  masked LM at the masked positions, and the replaced-token labels ``x''_j ≠ x_j``: a sample that equals the
  original token is *not* a replacement.
- :func:`load_hf_masked_lm`: ``(masked LM, tokenizer)`` from a Hugging Face masked-LM folder, and
  :func:`masked_lm_from_weights`: a BERT masked LM from an encoder's weights and the ``mlm`` objective's head. No
  pretrained masked LM exists offline (docs/methods.md, "Unsupervised / Masked-LM head"): the ``mlm`` objective
  is how one gets made, for RobustSentEmbed's generator and for BAE / BERT-Attack;
  :func:`advcl.runs.masked_lm.load_masked_lm` reads one from its run folder (or a Hugging Face folder).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from advcl.errors import BadInput

# The ``mlm`` objective's head (a TokenReconstruction held as ``head``) -> BertForMaskedLM's names.
# The decoder weight is W itself and the decoder bias is ``cls.predictions.bias``: both tied, not stored.
BERT_HEAD_KEYS = {
    "head.dense.weight": "cls.predictions.transform.dense.weight",
    "head.dense.bias": "cls.predictions.transform.dense.bias",
    "head.norm.weight": "cls.predictions.transform.LayerNorm.weight",
    "head.norm.bias": "cls.predictions.transform.LayerNorm.bias",
    "head.bias": "cls.predictions.bias",
}
TIED_KEYS = {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"}
TRAIN_ONE = "train one with `advcl train --recipe recipes/mlm_head_sentences.toml`"


def maskable_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """(batch, length) bool: real tokens other than each row's first and last ([CLS] and [SEP]); right padding."""
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    lengths = attention_mask.sum(1, keepdim=True)
    return (positions >= 1) & (positions < lengths - 1)


def select_positions(attention_mask: torch.Tensor, rate: float) -> torch.Tensor:
    """(batch, length) bool: ``max(1, round(rate·m))`` of each row's ``m`` maskable positions, uniformly at random."""
    maskable = maskable_positions(attention_mask)
    available = maskable.sum(1, keepdim=True)
    counts = (available * rate).round().clamp(min=1).minimum(available)
    keys = torch.rand(attention_mask.shape, device=attention_mask.device).masked_fill(~maskable, 2.0)
    return keys.argsort(1).argsort(1) < counts


def mask_tokens(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, mask_token_id: int, vocab_size: int, rate: float = 0.15
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(corrupted ids, selected)``: BERT's 80/10/10 masking, drawn from torch's global RNG (seeded runs repeat it).

    ``selected`` (bool, like ``input_ids``) marks the positions to predict; 80 % of them become
    ``mask_token_id``, 10 % a token drawn uniformly from the vocabulary, 10 % keep their token.
    """
    selected = select_positions(attention_mask, rate)
    roll = torch.rand(input_ids.shape, device=input_ids.device)
    random_ids = torch.randint(vocab_size, input_ids.shape, device=input_ids.device)
    corrupted = torch.where(selected & (roll >= 0.8) & (roll < 0.9), random_ids, input_ids)
    return corrupted.masked_fill(selected & (roll < 0.8), mask_token_id), selected


@torch.no_grad()
def replace_tokens(
    masked_lm: nn.Module, mask_token_id: int, inputs: dict, rate: float = 0.15
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x'', replaced)``: mask ``rate`` of each sentence, sample the masked LM there, label what changed.

    ``inputs`` holds ``input_ids``, ``attention_mask`` and optionally ``token_type_ids``. ``replaced`` is
    ``x''_j ≠ x_j`` (bool): exactly the positions whose sampled token differs from the original.
    """
    input_ids, attention_mask = inputs["input_ids"], inputs["attention_mask"]
    selected = select_positions(attention_mask, rate)
    masked = input_ids.masked_fill(selected, mask_token_id)
    masked_lm.to(input_ids.device)
    logits = masked_lm(**{**inputs, "input_ids": masked}).logits[selected]
    samples = torch.multinomial(logits.float().softmax(-1), 1).squeeze(-1)
    edited = input_ids.masked_scatter(selected, samples)
    return edited, edited != input_ids


def load_hf_masked_lm(path: str | Path):
    """``(masked LM in eval mode, tokenizer)`` from a Hugging Face masked-LM folder; anything else is a one-line
    :class:`BadInput`."""
    from transformers import AutoModelForMaskedLM

    from advcl.modeling.loading import _reason, load_tokenizer

    folder = Path(path)
    if not (folder / "config.json").is_file():
        what = "has no config.json" if folder.is_dir() else "does not exist"
        raise BadInput(
            f"masked LM {path} {what}: give an mlm run folder ({TRAIN_ONE}) or a Hugging Face masked-LM folder"
        )
    try:
        model, info = AutoModelForMaskedLM.from_pretrained(folder, output_loading_info=True)
    except Exception as exc:
        raise BadInput(f"could not load a masked LM from {folder}: {_reason(exc)}") from None
    if info["missing_keys"]:
        raise BadInput(
            f"{folder} has no trained masked-LM head ({len(info['missing_keys'])} weights missing, such as "
            f"{info['missing_keys'][0]}): {TRAIN_ONE} and give its run folder"
        )
    return model.eval(), load_tokenizer(str(folder))


def masked_lm_from_weights(config_dir: Path, encoder: dict, head: dict, layer_norm_eps: float, run: str,
                           checkpoint: str):
    """A BERT masked LM in eval mode: the architecture of ``config_dir``, the encoder weights ``encoder`` (an
    :class:`~advcl.modeling.encoder.EncoderClassifier`'s state, the pooler left out) and the ``mlm`` objective's
    head ``head`` (a TokenReconstruction, renamed by :data:`BERT_HEAD_KEYS`; its decoder is tied to the word
    embeddings). ``run`` and ``checkpoint`` name where the weights come from in a one-line :class:`BadInput`."""
    from transformers import AutoConfig, AutoModelForMaskedLM

    model = AutoModelForMaskedLM.from_config(AutoConfig.from_pretrained(config_dir))
    if not hasattr(model, "cls"):
        raise BadInput(
            f"run {run}: masked-LM heads trained by advcl load into BERT-architecture models only, "
            f"not {model.config.model_type}"
        )
    prefix = model.base_model_prefix + "."
    state = {k: v for k, v in encoder.items() if k.startswith(prefix) and ".pooler." not in k}
    state |= {BERT_HEAD_KEYS[k]: v for k, v in head.items() if k in BERT_HEAD_KEYS}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = sorted(set(missing) - TIED_KEYS)
    if missing or unexpected:
        raise BadInput(
            f"checkpoint {checkpoint} does not fit a masked LM (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    transform = model.cls.predictions.transform  # TokenReconstruction's exact GELU and LayerNorm ε
    transform.transform_act_fn = nn.GELU()
    transform.LayerNorm.eps = layer_norm_eps
    return model.eval()
