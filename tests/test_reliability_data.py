"""Issue 16, bad data: each mistake is a DataError (exit 2) naming file:line or the meta.json field, in one line,
never a traceback, a MemoryError or a silently wrong label set."""

from __future__ import annotations

import json

import pytest

from advcl.data.catalogue import load_data
from advcl.data.dataset import Columns
from advcl.data.readers import DataError


def test_a_csv_field_over_the_csv_limit_names_the_line(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("text,label\nshort,0\n\"" + "x" * 131_073 + "\",1\n")
    with pytest.raises(DataError, match=rf"{path}:3: not readable as CSV \(field larger than field limit"):
        load_data(str(path))


@pytest.mark.parametrize("rows, where, words", [
    ([{"text": "a", "label": 0}, {"text": "b", "label": 10**12}], ":2", "beyond 100,000 classes"),
    ([{"text": "a", "label": 0}, {"text": "b", "label": "1"}], ":2", "use one kind for every row"),
    ([{"text": "a", "label": "x"}, {"text": "b", "label": 1}], ":2", "use one kind for every row"),
    ([{"text": "a", "label": 0}, {"text": "b", "label": 1.5}], ":2", "neither a class index nor a name"),
    ([{"text": "a", "label": True}], ":1", "neither a class index nor a name"),
])
def test_labels_that_cannot_define_a_label_set_name_the_line(tmp_path, rows, where, words):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError, match=words) as raised:
        load_data(str(path))
    assert f"{path}{where}:" in str(raised.value)


def test_integer_and_string_labels_alone_still_work(tmp_path):
    ints, strs = tmp_path / "ints.jsonl", tmp_path / "strs.jsonl"
    ints.write_text('{"text": "a", "label": 2}\n{"text": "b", "label": 0}\n')
    strs.write_text('{"text": "a", "label": "pos"}\n{"text": "b", "label": "neg"}\n')
    assert load_data(str(ints)).label_names == ["0", "1", "2"]
    assert load_data(str(strs)).labels == [1, 0]


@pytest.mark.parametrize("meta, field", [
    ([], "must be a JSON object"),
    ({"task": "sts", "score_range": "0-5"}, "'score_range' must be [low, high]"),
    ({"task": "sts", "score_range": [5, 0]}, "'score_range' must be [low, high]"),
    ({"task": "sts", "hub": {"path": "x", "score_range": ["a", "b"]}}, "'hub.score_range'"),
    ({"task": "classification", "labels": "negative"}, "'labels' must be a list of distinct label names"),
    ({"task": "classification", "labels": ["neg", "neg"]}, "'labels' must be a list of distinct label names"),
    ({"task": 3}, "'task' must be a string"),
])
def test_a_bad_meta_json_names_the_field(tmp_path, meta, field):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "meta.json").write_text(json.dumps(meta))
    (folder / "train.jsonl").write_text('{"text": "a", "label": 0, "sentence1": "a", "sentence2": "b", "score": 1}\n')
    with pytest.raises(DataError) as raised:
        load_data(f"{folder}:train", Columns())
    assert str(folder / "meta.json") in str(raised.value) and field in str(raised.value)
