"""Every loss against a reference written out term by term (loops over anchors and candidates, float64), in value
and in its gradient with respect to every input; temperatures ≠ 1 and asymmetric inputs so that a swapped argument,
an inverted temperature, a wrong reduction or a missing term changes the result (issue 12)."""

import pytest
import torch
from torch.nn import functional as F

from advcl.losses.cross_entropy import CrossEntropy
from advcl.losses.infonce import InfoNCE
from advcl.losses.kl_divergence import KLDivergence
from advcl.losses.l2_contrast import L2Contrast
from advcl.losses.memory_bank_contrast import MemoryBankContrast
from advcl.losses.multi_positive_infonce import MultiPositiveInfoNCE
from advcl.losses.nt_xent import NTXent
from advcl.losses.symmetric_kl import SymmetricKL
from advcl.losses.token_reconstruction import TokenReconstruction
from wiring_helpers import assert_matches, cosine, leaves, neg_log_share

N, DIM = 5, 6


def test_infonce_is_each_anchors_share_of_its_own_positive_among_all_positives():
    tau = 0.3

    def reference(a, p):
        terms = [neg_log_share(cosine(a[i], p[i]) / tau, [cosine(a[i], p[k]) / tau for k in range(N)])
                 for i in range(N)]
        return sum(terms) / N

    assert_matches(InfoNCE(InfoNCE.Config(temperature=tau)), reference, leaves((N, DIM), (N, DIM)))


def test_nt_xent_anchors_every_view_once_against_all_other_views():
    tau = 0.3

    def reference(z1, z2):
        views = list(z1) + list(z2)
        terms = []
        for i in range(2 * N):
            pair = (i + N) % (2 * N)
            others = [cosine(views[i], views[k]) / tau for k in range(2 * N) if k != i]
            terms.append(neg_log_share(cosine(views[i], views[pair]) / tau, others))
        return sum(terms) / (2 * N)

    assert_matches(NTXent(NTXent.Config(temperature=tau)), reference, leaves((N, DIM), (N, DIM), seed=1))


@pytest.mark.parametrize("views", [1, 2, 3])
def test_multi_positive_infonce_counts_row_i_of_every_view_as_a_positive(views):
    tau = 0.2

    def reference(anchors, *all_views):
        terms = []
        for i in range(N):
            positives = [cosine(anchors[i], v[i]) / tau for v in all_views]
            everything = [cosine(anchors[i], v[k]) / tau for v in all_views for k in range(N)]
            terms.append(-(torch.log(sum(torch.exp(s) for s in positives)) - torch.log(sum(torch.exp(s) for s in everything))))
        return sum(terms) / N

    loss = MultiPositiveInfoNCE(MultiPositiveInfoNCE.Config(temperature=tau))
    assert_matches(loss, reference, leaves(*[(N, DIM)] * (views + 1), seed=2))


def test_multi_positive_infonce_refuses_a_view_without_a_row_per_anchor():
    anchors, view = torch.randn(4, 3), torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"one row per anchor \(4\): got \[4, 3\]"):
        MultiPositiveInfoNCE()(anchors, view, view[:3])


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_l2_contrast_pulls_the_own_candidate_and_leaves_it_out_of_the_denominator(normalize, reduction):
    tau = 0.7

    def reference(a, c):
        if normalize:
            a, c = a / a.norm(dim=1, keepdim=True), c / c.norm(dim=1, keepdim=True)
        terms = [neg_log_share(-(a[i] - c[i]).norm() / tau, [-(a[i] - c[j]).norm() / tau for j in range(N) if j != i])
                 for i in range(N)]
        return sum(terms) / (N if reduction == "mean" else 1)

    loss = L2Contrast(L2Contrast.Config(temperature=tau, normalize=normalize, reduction=reduction))
    assert_matches(loss, reference, leaves((N, DIM), (N, DIM), seed=3))


def test_l2_contrast_of_a_single_pair_is_zero():
    assert L2Contrast()(torch.randn(1, 4), torch.randn(1, 4)).item() == 0.0


def kl_by_hand(logits_p, logits_q):
    terms = []
    for lp, lq in zip(logits_p, logits_q):
        p, q = torch.exp(lp) / torch.exp(lp).sum(), torch.exp(lq) / torch.exp(lq).sum()
        terms.append(sum(p[c] * (torch.log(p[c]) - torch.log(q[c])) for c in range(len(p))))
    return sum(terms) / len(terms)


def test_kl_divergence_is_kl_of_the_first_distribution_from_the_second():
    assert_matches(KLDivergence(), kl_by_hand, leaves((N, 3), (N, 3), seed=4))


def test_symmetric_kl_adds_both_directions():
    assert_matches(SymmetricKL(), lambda p, q: kl_by_hand(p, q) + kl_by_hand(q, p), leaves((N, 3), (N, 3), seed=5))


def test_cross_entropy_with_label_smoothing_puts_s_over_c_on_every_class():
    labels, s, classes = torch.tensor([0, 2, 1, 2, 0]), 0.2, 3

    def reference(logits):
        terms = []
        for row, y in zip(logits, labels):
            log_probs = row - torch.log(torch.exp(row).sum())
            target = [s / classes + (1 - s if c == y else 0.0) for c in range(classes)]
            terms.append(-sum(t * lp for t, lp in zip(target, log_probs)))
        return sum(terms) / len(terms)

    loss = CrossEntropy(CrossEntropy.Config(label_smoothing=s))
    assert_matches(lambda logits: loss(logits, labels), reference, leaves((N, classes), seed=6))


def test_token_reconstruction_is_the_cross_entropy_of_the_original_tokens_at_real_positions():
    torch.manual_seed(0)
    head = TokenReconstruction(hidden_size=4, embedding_size=3, vocab_size=7).double()
    with torch.no_grad():
        for param in head.parameters():
            param.normal_(0, 0.7)
    ids = torch.tensor([[1, 4, 6, 2], [3, 5, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])

    def reference(states, weight):
        terms = []
        for b in range(2):
            for t in range(4):
                if mask[b, t]:
                    hidden = F.gelu(states[b, t] @ head.dense.weight.T + head.dense.bias)
                    hidden = (hidden - hidden.mean()) / torch.sqrt(hidden.var(unbiased=False) + head.norm.eps)
                    hidden = hidden * head.norm.weight + head.norm.bias
                    scores = weight @ hidden + head.bias
                    terms.append(neg_log_share(scores[ids[b, t]], list(scores)))
        return sum(terms) / len(terms)

    assert_matches(lambda s, w: head(s, ids, mask, w), reference, leaves((2, 4, 4), (7, 3), seed=7))


# -- CARL's memory banks ---------------------------------------------------------------------------------

def unit(x):
    return x / x.norm(dim=-1, keepdim=True)


def test_memory_bank_update_mixes_m_of_the_old_row_with_1_minus_m_of_the_new_one_in_each_bank():
    m = 0.3
    bank = MemoryBankContrast(MemoryBankContrast.Config(momentum=m), num_examples=6, dim=DIM).double()
    first, first_adv, second, second_adv = (t.detach() for t in leaves(*[(3, DIM)] * 4, seed=8))
    bank.update(torch.tensor([4, 1, 2]), first, first_adv, torch.tensor([2, 0, 1]))
    assert torch.allclose(bank.bank_orig[[4, 1, 2]], unit(first))
    assert torch.allclose(bank.bank_adv[[4, 1, 2]], unit(first_adv))
    assert bank.bank_labels.tolist() == [-1, 0, 1, -1, 2, -1]
    assert bank.bank_orig[[0, 3, 5]].abs().sum() == 0
    bank.update(torch.tensor([1, 3, 4]), second, second_adv, torch.tensor([0, 1, 2]))
    assert torch.allclose(bank.bank_orig[1], unit(m * unit(first[1]) + (1 - m) * unit(second[0])))
    assert torch.allclose(bank.bank_adv[4], unit(m * unit(first_adv[0]) + (1 - m) * unit(second_adv[2])))
    assert torch.allclose(bank.bank_orig[3], unit(second[1])) and torch.allclose(bank.bank_adv[3], unit(second_adv[1]))
    assert torch.allclose(bank.bank_orig[2], unit(first[2]))  # not written this time


def test_memory_bank_writes_a_repeated_index_once_from_its_first_occurrence():
    bank = MemoryBankContrast(num_examples=4, dim=DIM).double()
    reps, reps_adv = (t.detach() for t in leaves((3, DIM), (3, DIM), seed=9))
    bank.update(torch.tensor([2, 0, 2]), reps, reps_adv, torch.tensor([1, 0, 1]))
    assert torch.allclose(bank.bank_orig[2], unit(reps[0])) and torch.allclose(bank.bank_adv[2], unit(reps_adv[0]))


def test_memory_bank_samples_distinct_written_rows_of_other_labels():
    bank = MemoryBankContrast(MemoryBankContrast.Config(num_negatives=3), num_examples=8, dim=DIM)
    bank.bank_labels[:] = torch.tensor([0, 1, 1, 0, -1, 1, 0, 1])
    torch.manual_seed(0)
    seen = set()
    for _ in range(20):
        negatives = bank.sample_negatives(torch.tensor([0, 1]))
        assert negatives.shape == (2, 3)
        assert len(set(negatives[0].tolist())) == 3 and set(negatives[0].tolist()) <= {1, 2, 5, 7}
        assert set(negatives[1].tolist()) == {0, 3, 6}  # only three written rows of label 0
        seen |= set(negatives[0].tolist())
    assert seen == {1, 2, 5, 7}  # every candidate is drawn some time
    bank.config.num_negatives = 5
    assert bank.sample_negatives(torch.tensor([0, 1])).shape == (2, 3)  # capped by the scarcest anchor
    bank.bank_labels[:] = torch.tensor([0, 0, -1, -1, -1, -1, -1, -1])
    with pytest.raises(ValueError, match="no stored example with another label"):
        bank.sample_negatives(torch.tensor([0]))


def test_memory_bank_loss_contrasts_each_view_with_the_other_and_the_other_banks_rows():
    tau = 0.2
    bank = MemoryBankContrast(MemoryBankContrast.Config(temperature=tau), num_examples=6, dim=DIM)  # float32, as trained
    rows, rows_adv = (t.detach() for t in leaves((6, DIM), (6, DIM), seed=10))
    bank.update(torch.arange(6), rows.float(), rows_adv.float(), torch.tensor([0, 1, 0, 1, 0, 1]))
    labels = torch.tensor([0, 1, 0])
    negatives = torch.tensor([[1, 3], [4, 2], [5, 1]])

    def reference(reps, reps_adv):
        terms = []
        for i in range(3):
            r, a = unit(reps[i]), unit(reps_adv[i])
            pos = (r * a).sum() / tau
            terms.append(neg_log_share(pos, [pos] + [(a * bank.bank_orig[j].double()).sum() / tau for j in negatives[i]]))
            terms.append(neg_log_share(pos, [pos] + [(r * bank.bank_adv[j].double()).sum() / tau for j in negatives[i]]))
        return sum(terms) / 3

    assert_matches(lambda r, a: bank(r, a, labels, negatives), reference, leaves((3, DIM), (3, DIM), seed=11))
