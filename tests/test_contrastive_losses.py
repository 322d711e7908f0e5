"""Contrastive and auxiliary losses against naive Python loops on small examples."""

import math

import pytest
import torch
from transformers.models.bert.modeling_bert import BertLMPredictionHead

from advcl.config.validate import build
from advcl.losses import infonce, memory_bank_contrast, nt_xent, symmetric_kl, token_reconstruction
from advcl.losses.infonce import InfoNCE
from advcl.losses.memory_bank_contrast import MemoryBankContrast
from advcl.losses.nt_xent import NTXent
from advcl.losses.symmetric_kl import SymmetricKL
from advcl.losses.token_reconstruction import TokenReconstruction
from tiny_models import tiny_bert_config, tiny_batch


def cos(u, v):
    dot = sum(a * b for a, b in zip(u, v))
    return dot / math.sqrt(sum(a * a for a in u)) / math.sqrt(sum(b * b for b in v))


def unit(u):
    length = math.sqrt(sum(a * a for a in u))
    return [a / length for a in u]


def softmax(row):
    exps = [math.exp(x) for x in row]
    return [e / sum(exps) for e in exps]


def rows(t):
    return t.double().tolist()


def test_infonce_matches_a_loop_over_anchors():
    torch.manual_seed(0)
    z, z_pos = torch.randn(5, 8), torch.randn(5, 8)
    tau = 0.05
    a, p = rows(z), rows(z_pos)
    expected = -sum(
        math.log(math.exp(cos(a[i], p[i]) / tau) / sum(math.exp(cos(a[i], p[k]) / tau) for k in range(5)))
        for i in range(5)
    ) / 5
    assert InfoNCE(InfoNCE.Config(temperature=tau))(z, z_pos).item() == pytest.approx(expected, rel=1e-4)


def test_nt_xent_matches_a_loop_over_all_2n_views():
    torch.manual_seed(1)
    z1, z2 = torch.randn(4, 6), torch.randn(4, 6)
    tau = 0.1
    views = rows(z1) + rows(z2)
    n2 = len(views)
    total = 0.0
    for i in range(n2):
        j = (i + 4) % n2
        denominator = sum(math.exp(cos(views[i], views[k]) / tau) for k in range(n2) if k != i)
        total += -math.log(math.exp(cos(views[i], views[j]) / tau) / denominator)
    assert NTXent(NTXent.Config(temperature=tau))(z1, z2).item() == pytest.approx(total / n2, rel=1e-4)


def test_symmetric_kl_matches_the_definition_and_is_symmetric():
    torch.manual_seed(2)
    logits_p, logits_q = torch.randn(3, 4), torch.randn(3, 4)
    expected = 0.0
    for lp, lq in zip(rows(logits_p), rows(logits_q)):
        p, q = softmax(lp), softmax(lq)
        expected += sum(pc * math.log(pc / qc) for pc, qc in zip(p, q))
        expected += sum(qc * math.log(qc / pc) for pc, qc in zip(p, q))
    loss = SymmetricKL()
    assert loss(logits_p, logits_q).item() == pytest.approx(expected / 3, rel=1e-5)
    assert loss(logits_q, logits_p).item() == pytest.approx(expected / 3, rel=1e-5)
    assert loss(logits_p, logits_p).item() == pytest.approx(0.0, abs=1e-7)


def test_memory_bank_update_is_momentum_then_renormalise():
    torch.manual_seed(3)
    bank = MemoryBankContrast(MemoryBankContrast.Config(momentum=0.5), num_examples=6, dim=3)
    first, first_adv = torch.randn(2, 3), torch.randn(2, 3)
    second, second_adv = torch.randn(2, 3), torch.randn(2, 3)
    indices = torch.tensor([4, 1])
    bank.update(indices, first, first_adv, torch.tensor([1, 0]))
    bank.update(indices, second, second_adv, torch.tensor([1, 0]))
    for stored, olds, news in ((bank.bank_orig, first, second), (bank.bank_adv, first_adv, second_adv)):
        for slot, old, new in zip(indices.tolist(), rows(olds), rows(news)):
            old_row = unit(old)  # the first write of an empty (zero) row
            expected = unit([0.5 * o + 0.5 * n for o, n in zip(old_row, unit(new))])
            assert stored[slot].tolist() == pytest.approx(expected, abs=1e-6)
        for untouched in (0, 2, 3, 5):
            assert stored[untouched].tolist() == [0.0, 0.0, 0.0]
    assert bank.bank_labels.tolist() == [-1, 0, -1, -1, 1, -1]


def filled_bank(num_examples=40, dim=4, num_negatives=8, seed=4):
    torch.manual_seed(seed)
    bank = MemoryBankContrast(MemoryBankContrast.Config(num_negatives=num_negatives), num_examples=num_examples, dim=dim)
    labels = torch.randint(3, (num_examples,))
    indices = torch.arange(num_examples)
    bank.update(indices, torch.randn(num_examples, dim), torch.randn(num_examples, dim), labels)
    return bank, labels


def test_sampled_negatives_are_distinct_written_rows_with_another_label():
    bank, labels = filled_bank(num_examples=40, num_negatives=8)
    bank.bank_labels[35:] = -1  # not written yet
    anchors = torch.tensor([0, 1, 2, 0, 2])
    for _ in range(20):
        negatives = bank.sample_negatives(anchors)
        assert negatives.shape == (5, 8)
        for anchor_label, row in zip(anchors.tolist(), negatives.tolist()):
            assert len(set(row)) == 8
            assert all(n < 35 and labels[n].item() != anchor_label for n in row)


def test_negatives_shrink_to_the_smallest_candidate_pool():
    bank, labels = filled_bank(num_examples=40, num_negatives=1000)
    anchors = torch.tensor([0, 1])
    pool = min(int((labels != a).sum()) for a in anchors)
    assert bank.sample_negatives(anchors).shape == (2, pool)


def test_memory_bank_contrast_matches_a_loop_with_the_exact_softmax():
    bank, _ = filled_bank()
    tau = bank.config.temperature
    reps, reps_adv, labels = torch.randn(3, 4), torch.randn(3, 4), torch.tensor([0, 1, 2])
    negatives = bank.sample_negatives(labels)
    orig, adv = rows(bank.bank_orig), rows(bank.bank_adv)

    def h(a, b):
        return math.exp(sum(x * y for x, y in zip(a, b)) / tau)

    expected = 0.0
    for r, r_adv, negs in zip(rows(reps), rows(reps_adv), negatives.tolist()):
        r, r_adv = unit(r), unit(r_adv)
        expected -= math.log(h(r_adv, r) / (h(r_adv, r) + sum(h(r_adv, orig[n]) for n in negs)))
        expected -= math.log(h(r, r_adv) / (h(r, r_adv) + sum(h(r, adv[n]) for n in negs)))
    assert bank(reps, reps_adv, labels, negatives).item() == pytest.approx(expected / 3, rel=1e-4)


def test_memory_bank_contrast_needs_negatives_with_another_label():
    bank = MemoryBankContrast(num_examples=3, dim=2)
    bank.update(torch.tensor([0, 1]), torch.randn(2, 2), torch.randn(2, 2), torch.tensor([1, 1]))
    with pytest.raises(ValueError, match="another label"):
        bank(torch.randn(1, 2), torch.randn(1, 2), torch.tensor([1]))


def test_token_reconstruction_is_a_tied_mlm_head_ce_over_real_tokens():
    torch.manual_seed(5)
    config = tiny_bert_config()
    batch = tiny_batch()
    ids, mask = batch["input_ids"], batch["attention_mask"]
    word_embeddings = torch.randn(100, 32, requires_grad=True)
    rar = TokenReconstruction(hidden_size=32, embedding_size=32, vocab_size=100)
    torch.nn.init.normal_(rar.bias)
    head = BertLMPredictionHead(config)  # transformers' own MLM head, given the same weights
    head.transform.dense.load_state_dict(rar.dense.state_dict())
    head.transform.LayerNorm.load_state_dict(rar.norm.state_dict())
    head.decoder.weight.data.copy_(word_embeddings.detach())
    head.bias.data.copy_(rar.bias.detach())
    states = torch.randn(2, 6, 32)

    with torch.no_grad():
        scores = head(states)
    expected, count = 0.0, 0
    for b in range(2):
        for t in range(6):
            if mask[b, t]:
                probs = softmax(scores[b, t].double().tolist())
                expected -= math.log(probs[ids[b, t]])
                count += 1
    loss = rar(states, ids, mask, word_embeddings)
    assert loss.item() == pytest.approx(expected / count, rel=1e-5)

    other_padding = ids.masked_fill(~mask.bool(), 55)
    assert rar(states, other_padding, mask, word_embeddings).item() == pytest.approx(loss.item(), rel=1e-6)
    loss.backward()
    assert word_embeddings.grad.abs().sum() > 0  # the decoder is W itself


@pytest.mark.parametrize(
    "module, cls",
    [
        (infonce, InfoNCE),
        (nt_xent, NTXent),
        (symmetric_kl, SymmetricKL),
        (memory_bank_contrast, MemoryBankContrast),
        (token_reconstruction, TokenReconstruction),
    ],
)
def test_each_loss_registers_itself_with_a_buildable_config(module, cls):
    registered = []
    module.register_losses(registered.append)
    assert registered == [cls]
    assert build(cls.Config, {}) == cls.Config()
