"""STS evaluation (SimCSE protocol): Spearman and the "all" setting against scipy, score-range checks."""

import json
import random

import numpy as np
import pytest
import torch
from scipy.stats import rankdata, spearmanr

from advcl.data.catalogue import load_data
from advcl.data.readers import DataError
from advcl.embedding import embed_texts
from advcl.evaluation.sts import average_ranks, embed_sentences, spearman, sts_spearman, sts_suite, load_sts
from advcl.modeling.encoder import EncoderClassifier
from tiny_models import tiny_bert, tiny_tokenizer

WORDS = "a the man woman dog cat plays eats runs sleeps on in red blue small big house park ball guitar".split()


@pytest.fixture(scope="module")
def tiny():
    return EncoderClassifier(tiny_bert(), "mean"), tiny_tokenizer()


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9)))


def sts_rows(n: int, seed: int, subsets: list[str] | None = None) -> list[dict]:
    """Random pairs with scores in [0, 5] (one decimal, so some tie); subsets assigned in blocks."""
    rng = random.Random(seed)
    rows = [{"sentence1": sentence(rng), "sentence2": sentence(rng), "score": round(rng.uniform(0, 5), 1)}
            for _ in range(n)]
    for i, row in enumerate(rows):
        if subsets:
            row["subset"] = subsets[i * len(subsets) // n]
    return rows


def write_split(folder, name: str, split: str, rows: list[dict], meta: dict, blank_line_at: int = 0):
    (folder / name).mkdir(exist_ok=True)
    (folder / name / "meta.json").write_text(json.dumps({"name": name, "task": "sts", **meta}))
    lines = [json.dumps(row) for row in rows]
    if blank_line_at:
        lines.insert(blank_line_at - 1, "")
    path = folder / name / f"{split}.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def toy_data(tmp_path, monkeypatch):
    """sts12 (three subsets, top-level score_range) and stsb (hub.score_range, like the shipped metas); no sickr."""
    write_split(tmp_path, "sts12", "test", sts_rows(30, 1, ["MSRpar", "MSRvid", "OnWN"]),
                {"score_range": [0, 5], "splits": {"test": 30}})
    write_split(tmp_path, "stsb", "test", sts_rows(20, 2), {"splits": {"test": 20}, "hub": {
        "path": "sentence-transformers/stsb", "score_range": [0, 5]}})
    monkeypatch.setenv("ADVCL_DATA_DIR", str(tmp_path))
    return tmp_path


def reference_cosines(model, tokenizer, rows: list[dict]) -> np.ndarray:
    """Cosines computed independently: embed_texts in source order, then numpy."""
    a = embed_texts(model, tokenizer, [r["sentence1"] for r in rows], 64, 7, "cpu").double().numpy()
    b = embed_texts(model, tokenizer, [r["sentence2"] for r in rows], 64, 7, "cpu").double().numpy()
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_average_ranks_share_tied_positions():
    assert average_ranks([10, 30, 20, 20, 10, 20]).tolist() == [1.5, 6, 4, 4, 1.5, 4]


@pytest.mark.parametrize("seed", range(4))
def test_spearman_and_ranks_match_scipy_with_ties(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 5, 50).astype(float)  # many ties
    y = 0.3 * x + rng.normal(size=50).round(1)  # ties too, correlated with x
    assert average_ranks(y) == pytest.approx(rankdata(y))
    assert spearman(x, y) == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)
    z = rng.normal(size=50)  # no ties
    assert spearman(z, y) == pytest.approx(spearmanr(z, y).statistic, abs=1e-12)


def test_spearman_of_a_constant_side_is_zero():
    assert spearman([1.0, 1.0, 1.0], [0.1, 0.5, 0.2]) == 0.0


def test_length_ordered_embedding_matches_source_order(tiny):
    model, tokenizer = tiny
    texts = [sentence(random.Random(i)) for i in range(11)]
    model.train()
    ordered = embed_sentences(model, tokenizer, texts, 64, 3, "cpu")
    assert model.training  # the mode is restored
    assert torch.allclose(ordered, embed_texts(model, tokenizer, texts, 64, 3, "cpu"), atol=1e-5)


def test_all_setting_concatenates_subsets_and_matches_scipy(tiny, toy_data):
    model, tokenizer = tiny
    result = sts_suite(model, tokenizer, 64, 8, "cpu", tasks=("sts12:test", "stsb:test", "sickr:test"))
    rows = [json.loads(line) for line in (toy_data / "sts12" / "test.jsonl").read_text().splitlines()]
    cosines, gold = reference_cosines(model, tokenizer, rows), np.array([r["score"] for r in rows])
    sts12 = result["tasks"]["sts12:test"]
    assert sts12["spearman"] == pytest.approx(100 * spearmanr(cosines, gold).statistic, abs=1e-6)
    assert sts12["pairs"] == 30
    subsets = np.array([r["subset"] for r in rows])
    expected = {name: 100 * spearmanr(cosines[subsets == name], gold[subsets == name]).statistic
                for name in ("MSRpar", "MSRvid", "OnWN")}
    assert sts12["subsets"] == pytest.approx(expected, abs=1e-6)
    # "all" is one Spearman over the concatenation, not the mean of the subsets' (SentEval's "mean")
    assert abs(sts12["spearman"] - np.mean(list(expected.values()))) > 1
    assert "subsets" not in result["tasks"]["stsb:test"]
    assert result["average"] == pytest.approx((sts12["spearman"] + result["tasks"]["stsb:test"]["spearman"]) / 2)
    assert result["pooling"] == "mean"
    assert list(result["skipped"]) == ["sickr:test"] and "not in the data folder" in result["skipped"]["sickr:test"]


def test_sts_spearman_for_model_selection_restores_the_mode(tiny, toy_data):
    model, tokenizer = tiny
    dataset = load_sts("stsb:test").dataset
    model.train()
    value = sts_spearman(model, tokenizer, dataset, 64, 8, "cpu")
    assert model.training
    rows = [json.loads(line) for line in (toy_data / "stsb" / "test.jsonl").read_text().splitlines()]
    expected = 100 * spearmanr(reference_cosines(model, tokenizer, rows), [r["score"] for r in rows]).statistic
    assert value == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("name,meta", [
    ("stsb", {"hub": {"path": "sentence-transformers/stsb", "score_range": [0, 5]}}),
    ("sts13", {"score_range": [0, 5]}),
])
@pytest.mark.parametrize("reader", [load_sts, load_data])  # the suite, and training's validation split
def test_score_outside_the_declared_range_names_file_and_line(tmp_path, monkeypatch, name, meta, reader):
    rows = sts_rows(5, 3)
    rows[2]["score"] = 5.5  # the third row, on line 4 after a blank line 2
    path = write_split(tmp_path, name, "test", rows, meta, blank_line_at=2)
    monkeypatch.setenv("ADVCL_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError) as error:
        reader(f"{name}:test")
    message = str(error.value)
    assert message == f"{path}:4: score 5.5 is outside the range [0, 5] that {name}'s meta.json declares"


def test_a_classification_dataset_is_not_an_sts_set():
    with pytest.raises(DataError, match="not an STS one"):
        load_sts("trec:test")
