"""The catalogue, user files with column mapping, batching, and errors that name the file and line."""

import json

import pytest
import torch

from advcl.data.batching import encode, epoch_batches
from advcl.data.catalogue import load_data, resolve
from advcl.data.dataset import Columns
from advcl.data.readers import DataError
from advcl.data.tasks import CLASSIFICATION, PAIR_CLASSIFICATION, SIMILARITY


def test_catalogue_split_loads_with_label_names():
    data = load_data("sst2:validation")
    assert len(data) == 872 and data.task is CLASSIFICATION
    assert data.label_names == ["negative", "positive"]
    assert set(data.labels) == {0, 1}
    first = json.loads((resolve("sst2", "validation").where and open(resolve("sst2", "validation").where).readline()))
    assert data.texts[0] == first["text"] and data.labels[0] == first["label"]


def test_pair_and_sts_data_load():
    rte = load_data("rte:validation")
    assert rte.task is PAIR_CLASSIFICATION and rte.pairs is not None and len(rte.pairs) == len(rte) == 277
    sts = load_data("stsb:validation")
    assert sts.task is SIMILARITY and len(sts) == 1500
    assert all(isinstance(s, float) and 0 <= s <= 5 for s in sts.labels)


def test_resolution_local_hub_missing(tmp_path, monkeypatch):
    assert resolve("sst2", "train").kind == "local"
    monkeypatch.setenv("ADVCL_DATA_DIR", str(tmp_path))
    assert resolve("sst2", "train").kind == "hub" and "nyu-mll/glue" in resolve("sst2", "train").where
    assert resolve("hwu64", "train").kind == "missing"
    with pytest.raises(DataError, match="dataset hwu64:train not found: looked for .*hwu64/train.jsonl"):
        load_data("hwu64:train")
    with pytest.raises(DataError, match=r"sst2:train not found: no .*\(set ADVCL_DATA_DIR\) and the hub copy nyu-mll/glue"):
        load_data("sst2:train")


def test_unknown_dataset_suggests_close_names():
    with pytest.raises(DataError, match="unknown dataset 'sst' \\(did you mean sst2"):
        load_data("sst:train")
    with pytest.raises(DataError, match="must be a catalogue name with a split"):
        load_data("sst2")


def test_seeded_subset_is_reproducible():
    data = load_data("sst2:validation")
    a, b = data.sample(50, 3), data.sample(50, 3)
    assert a.texts == b.texts and len(a) == 50 and a.texts != data.sample(50, 4).texts
    assert data.sample(0, 3) is data


def _write(path, text):
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("d.csv", "review,stars\ngood film,pos\nbad film,neg\n"),
        ("d.tsv", "review\tstars\ngood film\tpos\nbad film\tneg\n"),
        ("d.jsonl", '{"review": "good film", "stars": "pos"}\n{"review": "bad film", "stars": "neg"}\n'),
    ],
)
def test_user_files_with_column_mapping(tmp_path, name, content):
    data = load_data(_write(tmp_path / name, content), Columns("review", "", "stars"))
    assert data.texts == ["good film", "bad film"]
    assert data.label_names == ["neg", "pos"] and data.labels == [1, 0]


def test_parquet_user_file(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"q": ["a?", "b?"], "a": ["yes", "no"], "y": [1, 0]}), path)
    data = load_data(str(path), Columns("q", "a", "y"))
    assert data.task is PAIR_CLASSIFICATION and data.pairs == ["yes", "no"] and data.labels == [1, 0]


def test_integer_labels_and_given_label_names(tmp_path):
    path = _write(tmp_path / "d.jsonl", '{"text": "a", "label": 2}\n{"text": "b", "label": 0}\n')
    assert load_data(path).label_names == ["0", "1", "2"]
    with pytest.raises(DataError, match=r"d.jsonl:1: label 2 in column 'label' is outside the label set \(0..1 or neg, pos\)"):
        load_data(path, label_names=["neg", "pos"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"text": "ok", "label": 0}\n{"txt": "x", "label": 1}\n', r"d.jsonl:2: missing column 'text' \(columns: txt, label\)"),
        ('{"text": "ok", "label": 0}\n{"text": "  ", "label": 1}\n', "d.jsonl:2: empty text in column 'text'"),
        ('{"text": "ok", "label": 0}\n{"text": "x"}\n', "d.jsonl:2: missing column 'label'"),
        ('{"text": "ok", "label": 0}\n{"text": "x", "label": 1\n', "d.jsonl:2: not valid JSON"),
        (b'{"text": "ok", "label": 0}\n{"text": "caf\xe9", "label": 1}\n', "d.jsonl:2: not valid UTF-8"),
        ('{"text": "ok", "label": 0}\n{"text": "x", "label": 5}\n', "d.jsonl:2: label 5 in column 'label' is outside the label set"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, content, message):
    path = _write(tmp_path / "d.jsonl", content)
    with pytest.raises(DataError, match=message):
        load_data(path, label_names=["neg", "pos"])


def test_bad_csv_row_names_its_line(tmp_path):
    path = _write(tmp_path / "d.csv", "text,label\nfine,0\n,1\n")
    with pytest.raises(DataError, match="d.csv:3: empty text in column 'text'"):
        load_data(path)


def test_missing_and_unsupported_files(tmp_path):
    with pytest.raises(DataError, match="data file not found"):
        load_data(str(tmp_path / "nope.csv"))
    with pytest.raises(DataError, match="unsupported file type"):
        from advcl.data.readers import iter_rows

        list(iter_rows(_write_path(tmp_path / "x.txt")))


def _write_path(path):
    path.write_text("x")
    return path


def test_batches_are_dynamically_padded():
    from tiny_models import tiny_tokenizer

    data = load_data("sst2:validation").select([0, 1, 2])
    enc = encode(data, tiny_tokenizer(), max_length=16)
    lengths = [len(ids) for ids in enc.input_ids]
    batch = enc.collate([0, 1, 2])
    assert batch["input_ids"].shape == (3, max(lengths))
    assert batch["attention_mask"].sum(1).tolist() == lengths
    assert (batch["input_ids"][batch["attention_mask"] == 0] == 0).all()
    assert batch["labels"].tolist() == data.labels and batch["index"].tolist() == [0, 1, 2]
    assert max(lengths) <= 16


def test_epoch_order_is_a_seeded_permutation():
    a = epoch_batches(10, 3, seed=1, epoch=0)
    assert [len(b) for b in a] == [3, 3, 3, 1]
    assert sorted(i for b in a for i in b) == list(range(10))
    assert a == epoch_batches(10, 3, seed=1, epoch=0)
    assert a != epoch_batches(10, 3, seed=1, epoch=1)
    assert torch.tensor(a[0]).dtype == torch.long


def test_long_examples_are_truncated_and_counted():
    from tiny_models import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    data = load_data("sst2:validation").select(range(40))
    full = [len(tokenizer(t)["input_ids"]) for t in data.texts]
    enc = encode(data, tokenizer, max_length=12)
    assert enc.truncated == sum(n > 12 for n in full) > 0
    for ids, n in zip(enc.input_ids, full):
        assert len(ids) == min(n, 12) and ids[-1] == tokenizer.sep_token_id
    untouched = encode(data, tokenizer, max_length=512)
    assert untouched.truncated == 0 and [len(i) for i in untouched.input_ids] == full
