"""Tasks as types: the data task a spec loads as (known before reading it), what each task does with the same rows,
and the one mapping from data tasks to attack goals."""

import json

import pytest

from advcl.data import tasks
from advcl.data.catalogue import load_data, task_of_spec
from advcl.data.dataset import build_dataset
from advcl.data.readers import DataError
from advcl.errors import BadInput


def test_a_spec_names_its_task_before_it_is_read(tmp_path, monkeypatch):
    assert task_of_spec("stsb:test") is tasks.SIMILARITY
    assert task_of_spec("rte:validation") is tasks.PAIR_CLASSIFICATION
    assert task_of_spec("sst2:test") is tasks.CLASSIFICATION
    assert task_of_spec(str(tmp_path / "mine.jsonl")) is tasks.CLASSIFICATION  # a user file: text and label
    assert task_of_spec("hf:someone/something:train") is tasks.CLASSIFICATION
    with pytest.raises(DataError, match="^data 'sst2' must be a catalogue name with a split"):
        task_of_spec("sst2")  # refused here, before a command loads its model, as load_data refuses it
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "meta.json").write_text(json.dumps({"name": "odd", "task": "regression"}))
    (folder / "train.jsonl").write_text('{"text": "a", "label": 1.5}\n')
    monkeypatch.setenv("ADVCL_DATA_DIR", str(tmp_path))
    for read in (task_of_spec, load_data):
        with pytest.raises(DataError, match="^dataset 'odd' has unknown task 'regression'$"):
            read("odd:train")


def test_a_model_is_scored_only_on_as_many_classes_as_it_has():
    assert load_data("rte:validation", label_names=["yes", "no"]).label_names == ["yes", "no"]  # read by index
    banking77 = load_data("banking77:test").label_names
    with pytest.raises(DataError, match=r"^the model has 77 classes \(card_arrival, card_linking, exchange_rate, "
                       r"card_payment_wrong_exchange_rate, ...\) but hwu64 has 64 \(alarm_query, alarm_remove, alarm_set, "
                       r"audio_volume_down, ...\)$"):
        load_data("hwu64:test", label_names=banking77)
    with pytest.raises(DataError, match=r"^data.labels has 77 classes \(LABEL_0, .*\) but hwu64 has 64 "):
        load_data("hwu64:test", label_names=[f"LABEL_{i}" for i in range(77)], holder="data.labels")


def test_each_task_reads_the_label_column_its_own_way():
    rows = [("f:1", {"text": "a", "text_pair": "b", "label": "2"}), ("f:2", {"text": "c", "text_pair": "d", "label": "0"})]
    columns = tasks.PAIR_CLASSIFICATION.columns
    classes = build_dataset("f", tasks.PAIR_CLASSIFICATION, rows, columns)
    scores = build_dataset("f", tasks.SIMILARITY, rows, columns)
    nothing = build_dataset("f", tasks.UNLABELED, rows, columns)
    assert classes.labels == [2, 0] and classes.label_names == ["0", "1", "2"] and classes.has_class_labels
    assert scores.labels == [2.0, 0.0] and all(isinstance(s, float) for s in scores.labels)
    assert not scores.has_class_labels and scores.label_names is None
    assert nothing.labels is None and not nothing.has_class_labels and nothing.pairs == ["b", "d"]


def test_task_objects_spell_their_meta_json_names():
    assert {str(t) for t in tasks.TASKS.values()} == {"classification", "pair-classification", "sts", "unlabeled"}
    assert f"{tasks.SIMILARITY}" == "sts" and tasks.task_named("sts", "x") is tasks.SIMILARITY


def test_every_labelled_data_task_has_one_attack_goal_and_unlabeled_data_none():
    from advcl.attacks import goals
    from advcl.attacks.victim import SentenceVictim, Victim

    assert set(goals.GOALS) == set(tasks.TASKS.values()) - {tasks.UNLABELED}
    assert goals.goal_for(tasks.SIMILARITY, "stsb:test") is goals.ADVSTS and goals.ADVSTS.victim is SentenceVictim
    for task in (tasks.CLASSIFICATION, tasks.PAIR_CLASSIFICATION):
        assert goals.goal_for(task, "x") is goals.LABEL_FLIP and goals.LABEL_FLIP.victim is Victim
    with pytest.raises(BadInput, match=r"^sentences:train has no class labels or similarity scores: an attack needs"):
        goals.goal_for(tasks.UNLABELED, "sentences:train")
    assert goals.ADVSTS.goal == "AdvSTS" and goals.LABEL_FLIP.goal == ""
