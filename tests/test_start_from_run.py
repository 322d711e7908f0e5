"""``model.name`` naming an earlier run folder: the new run starts from that run's selected checkpoint's encoder
with a new head for its own labels (advcl.runs.start_from)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from conftest import assert_one_line_error, run_cli, train_until_interrupted, write_tiny_recipe

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


def test_the_encoder_is_the_selected_checkpoints_and_the_head_is_new(tmp_path, source_run):
    run = RunFolder(shutil.copytree(source_run, tmp_path / "source"))
    first, *_, last = sorted(run.checkpoints.glob("step-*"))
    state = json.loads((last / "state.json").read_text())  # select the first checkpoint, whatever validation said
    (last / "state.json").write_text(json.dumps(state | {"best_step": int(first.name.split("-")[1])}))
    config = json.loads((run.model_dir / "tokenizer_config.json").read_text())  # mark the run's own tokenizer
    (run.model_dir / "tokenizer_config.json").write_text(json.dumps(config | {"model_max_length": 77}))
    hf, tokenizer, loaded = load_start_model(str(run.path), ["a", "b", "c"])
    assert loaded == str(first)
    prefix = f"{hf.base_model_prefix}."
    stored = {k: v for k, v in read_tensors(first / "model.safetensors").items() if k.startswith(prefix)}
    newest = read_tensors(last / "model.safetensors")
    state = hf.state_dict()
    assert stored and all(torch.equal(state[k], v) for k, v in stored.items())
    assert any(not torch.equal(state[k], newest[k]) for k in stored)  # the selected checkpoint, not the newest
    assert hf.classifier.weight.shape == (3, hf.config.hidden_size)
    assert hf.config.id2label == {0: "a", 1: "b", 2: "c"}
    assert tokenizer.model_max_length == 77


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
    assert_one_line_error(run_cli("train", "--recipe", str(recipe)), "has no checkpoint to start from")
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


def final_files(run_dir):
    last = sorted((run_dir / "checkpoints").glob("step-*"))[-1]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return last.name, (last / "model.safetensors").read_bytes(), [r["step"] for r in rows if r["split"] == "train"]


def test_a_run_started_from_a_run_folder_resumes_bit_identically_without_its_source(tmp_path, source_run,
                                                                                    tiny_model_dir):
    source = shutil.copytree(source_run, tmp_path / "source")
    downstream = {"model": {"name": str(source)}, "data": {"train": "trec:train", "validation": "",
                                                           "max_train_examples": 96},
                  "train": {"epochs": 2, "eval_every": 0, "save_every": 3, "log_every": 1}}
    (tmp_path / "reference").mkdir()
    reference = write_tiny_recipe(tmp_path / "reference", tiny_model_dir, **downstream)
    assert run_cli("train", "--recipe", str(reference)).returncode == 0
    recipe = write_tiny_recipe(tmp_path, tiny_model_dir, **downstream)
    run_dir = tmp_path / "runs" / "tiny"
    assert train_until_interrupted(recipe, run_dir)[0] == 130
    assert json.loads((run_dir / "report.json").read_text())["status"] == "interrupted"
    assert json.loads((run_dir / "report.json").read_text())["started_from"] == str(RunFolder(source).checkpoint())
    shutil.move(source, tmp_path / "moved")  # the source is not needed to resume
    resumed = run_cli("train", "--resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr
    assert final_files(run_dir) == final_files(tmp_path / "reference" / "runs" / "tiny")
