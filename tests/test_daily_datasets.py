"""Issue 17, item 4: data through Hugging Face `datasets` after the offline catalogue: a save_to_disk folder, a
dataset loaded by `datasets.load_dataset` (a local one, built here: no network), and a JSON-array file; the same
column mapping as a user file and errors that name the row."""

import json

import pytest

from advcl.data.catalogue import load_data
from advcl.data.dataset import Columns
from advcl.data.hf_datasets import resolve_spec
from advcl.data.readers import DataError
from advcl.data.tasks import CLASSIFICATION

datasets = pytest.importorskip("datasets")

SENTENCES = ["a gentle , funny film", "dull and far too long", "the cast is superb", "i walked out"]


def saved(tmp_path, sentences=SENTENCES, splits=("train", "test")):
    table = datasets.Dataset.from_dict({"sentence": sentences, "label": [1, 0, 1, 0][: len(sentences)]})
    table = table.cast_column("label", datasets.ClassLabel(names=["negative", "positive"]))
    folder = tmp_path / "saved"
    (datasets.DatasetDict({s: table for s in splits}) if splits else table).save_to_disk(str(folder))
    return folder


def test_a_save_to_disk_dataset_dict_split(tmp_path):
    folder = saved(tmp_path)
    dataset = load_data(f"{folder}:test", Columns(text="sentence"))
    assert dataset.texts == SENTENCES and dataset.labels == [1, 0, 1, 0]
    assert dataset.label_names == ["negative", "positive"] and dataset.task is CLASSIFICATION
    with pytest.raises(DataError, match=r"holds several splits: name one \(splits: train, test"):
        load_data(str(folder), Columns(text="sentence"))
    with pytest.raises(DataError, match="has no split 'validation'"):
        load_data(f"{folder}:validation", Columns(text="sentence"))


def test_a_save_to_disk_dataset_and_a_bad_row(tmp_path):
    folder = saved(tmp_path, splits=())
    assert load_data(str(folder), Columns(text="sentence")).texts == SENTENCES
    with pytest.raises(DataError, match="missing column 'text'"):
        load_data(str(folder))  # the same column mapping as a file: text by default
    bad = saved(tmp_path / "bad", ["fine", "  ", "fine too", "ok"], splits=("train",))
    with pytest.raises(DataError) as error:
        load_data(f"{bad}:train", Columns(text="sentence"))
    assert str(error.value) == f"{bad}[train] row 2: empty text in column 'sentence'"


def test_a_dataset_through_load_dataset(tmp_path):
    folder = tmp_path / "reviews"
    folder.mkdir()
    for split, rows in (("train", SENTENCES), ("test", SENTENCES[:2])):
        (folder / f"{split}.jsonl").write_text(
            "".join(json.dumps({"review": t, "stars": "good" if i % 2 == 0 else "bad"}) + "\n"
                    for i, t in enumerate(rows)))
    dataset = load_data(f"hf:{folder}:test", Columns(text="review", label="stars"))
    assert dataset.texts == SENTENCES[:2] and dataset.label_names == ["bad", "good"] and dataset.labels == [1, 0]
    with pytest.raises(DataError, match=r"^hub dataset .*reviews validation could not be loaded"):
        load_data(f"hf:{folder}:validation", Columns(text="review", label="stars"))
    with pytest.raises(DataError, match="must be hf:PATH:SPLIT or hf:PATH:CONFIG:SPLIT"):
        load_data("hf:nyu-mll/glue")


def test_a_json_array_file(tmp_path):
    path = tmp_path / "reviews.json"
    path.write_text(json.dumps([{"text": t, "label": i % 2} for i, t in enumerate(SENTENCES)], indent=1))
    dataset = load_data(str(path))
    assert dataset.texts == SENTENCES and dataset.labels == [0, 1, 0, 1]
    path.write_text(json.dumps([{"text": "fine", "label": 0}, {"text": "fine", "label": 1}, {"label": 0}]))
    with pytest.raises(DataError) as error:
        load_data(str(path))
    assert str(error.value) == f"{path} item 3: missing column 'text' (columns: label)"
    path.write_text('[{"text": "fine",\n  "label": 0},\n  oops]')
    with pytest.raises(DataError, match=rf"^{path}:3: not valid JSON"):
        load_data(str(path))
    lines = tmp_path / "lines.json"  # one object per line stays JSON lines
    lines.write_text('{"text": "fine", "label": 0}\n{"text": "good", "label": 1}\n')
    assert resolve_spec(str(lines)) is None and load_data(str(lines)).texts == ["fine", "good"]


def test_the_offline_catalogue_comes_first(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    saved(tmp_path, splits=("validation",)).rename(tmp_path / "sst2")  # a saved folder named like a catalogue entry
    assert len(load_data("sst2:validation")) == 872  # the catalogue's split, not the folder's 4 rows
    assert len(load_data("./sst2:validation", Columns(text="sentence"))) == 4


def test_eval_reads_a_saved_dataset(tmp_path, tiny_model_dir):
    from typer.testing import CliRunner

    from advcl.cli import app

    folder = saved(tmp_path)
    done = CliRunner().invoke(app, ["eval", "--model", str(tiny_model_dir), "--data", f"{folder}:test",
                                    "--text-column", "sentence", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["examples"] == 4


def test_a_saved_folder_is_named_a_task_and_its_class_count_is_checked(tmp_path):
    from advcl.data.catalogue import task_of_spec

    folder = saved(tmp_path, splits=())
    assert task_of_spec(str(folder)) is CLASSIFICATION  # a folder without a split, as load_data reads it
    assert load_data(str(folder), Columns(text="sentence"), ["neg", "pos"]).label_names == ["neg", "pos"]
    with pytest.raises(DataError, match=r"^the model has 3 classes \(a, b, c\) but .*saved has 2 \(negative, positive\)$"):
        load_data(str(folder), Columns(text="sentence"), ["a", "b", "c"])
