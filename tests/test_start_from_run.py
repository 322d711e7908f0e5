"""``model.name`` naming an earlier run folder: the new run starts from that run's selected checkpoint's encoder
with a new head for its own labels (advcl.runs.start_from)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from conftest import assert_one_line_error, run_cli, write_tiny_recipe

from advcl.config.recipe import load_recipe
from advcl.runs import RunFolder
from advcl.runs.checkpoints import read_tensors
from advcl.runs.start_from import load_start_model


@pytest.fixture(scope="module")
def source_run(tmp_path_factory, tiny_model_dir):
    """A tiny mean-pooled SST-2 classifier (2 labels) with periodic validation, so it has a best checkpoint."""
    folder = tmp_path_factory.mktemp("source")
    recipe = write_tiny_recipe(folder, tiny_model_dir, run={"name": "source"}, model={"pooling": "mean"})
    done = run_cli("train", "--recipe", str(recipe))
    assert done.returncode == 0, done.stderr
    return folder / "runs" / "source"


def test_the_encoder_is_the_selected_checkpoints_and_the_head_is_new(source_run, tiny_model_dir):
    from transformers import AutoTokenizer

    run = RunFolder(source_run)
    best, last = run.checkpoint("best"), run.checkpoint("last")
    hf, tokenizer, loaded = load_start_model(str(source_run), ["a", "b", "c"])
    assert loaded == str(best)
    prefix = f"{hf.base_model_prefix}."
    stored = {k: v for k, v in read_tensors(best / "model.safetensors").items() if k.startswith(prefix)}
    state = hf.state_dict()
    assert stored and all(torch.equal(state[k], v) for k, v in stored.items())
    if best != last:  # the selected checkpoint, not merely the newest one
        newest = read_tensors(last / "model.safetensors")
        assert any(not torch.equal(state[k], newest[k]) for k in stored)
    assert hf.classifier.weight.shape == (3, hf.config.hidden_size)
    assert hf.config.id2label == {0: "a", 1: "b", 2: "c"}
    assert tokenizer("a rather good film")["input_ids"] == AutoTokenizer.from_pretrained(tiny_model_dir)(
        "a rather good film")["input_ids"]  # the source run's tokenizer, the one it was trained with


def test_training_from_a_run_folder_keeps_its_pooling_and_takes_new_labels(tmp_path, source_run, tiny_model_dir):
    recipe = write_tiny_recipe(tmp_path, tiny_model_dir, run={"name": "downstream"},
                               model={"name": str(source_run)},
                               data={"train": "trec:train", "validation": "", "max_train_examples": 48},
                               train={"epochs": 1, "eval_every": 0, "save_every": 0})
    assert load_recipe(recipe).model.pooling == "mean"  # "auto" keeps the source run's readout
    done = run_cli("train", "--recipe", str(recipe))
    assert done.returncode == 0, done.stderr
    downstream = tmp_path / "runs" / "downstream"
    config = json.loads((downstream / "model" / "config.json").read_text())
    assert len(config["id2label"]) == 6  # TREC's coarse classes, not the source's 2
    assert load_recipe(downstream / "config.toml").model.pooling == "mean"


def test_a_run_folder_without_a_checkpoint_is_refused_in_one_line(tmp_path, source_run, tiny_model_dir):
    empty = tmp_path / "empty"
    shutil.copytree(source_run, empty, ignore=shutil.ignore_patterns("checkpoints"))
    recipe = write_tiny_recipe(tmp_path, tiny_model_dir, run={"name": "from-empty"}, model={"name": str(empty)})
    assert_one_line_error(run_cli("train", "--recipe", str(recipe)), "has no finished checkpoint")
    assert not (tmp_path / "runs" / "from-empty").exists()


def test_an_unfinished_run_is_refused_in_one_line(tmp_path, source_run, tiny_model_dir):
    stopped = tmp_path / "stopped"
    shutil.copytree(source_run, stopped)
    report = json.loads((stopped / "report.json").read_text())
    (stopped / "report.json").write_text(json.dumps(report | {"status": "interrupted"}))
    recipe = write_tiny_recipe(tmp_path, tiny_model_dir, run={"name": "from-stopped"}, model={"name": str(stopped)})
    assert_one_line_error(run_cli("train", "--recipe", str(recipe)), "has not finished training (status: interrupted)",
                          "advcl train --resume")
    assert not (tmp_path / "runs" / "from-stopped").exists()
