"""`advcl attack`, `advcl perturb` and `advcl resources` as a user drives them, on a tiny run folder."""

import json

import pytest
from conftest import assert_one_line_error, run_cli, write_tiny_recipe

from advcl.attacks import resources
from advcl.data.catalogue import data_dir, load_data


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_model_dir):
    folder = tmp_path_factory.mktemp("attack-cli")
    done = run_cli("train", "--recipe", str(write_tiny_recipe(folder, tiny_model_dir, train={"epochs": 1})))
    assert done.returncode == 0, done.stderr
    return folder / "runs" / "tiny"


@pytest.fixture(scope="module")
def resource_env(tmp_path_factory):
    """ADVCL_RESOURCES for the subprocesses: a folder with what deepwordbug needs (the NLTK stopwords)."""
    folder = tmp_path_factory.mktemp("attack-resources")
    resources.build(folder, data_dir(), only=("stopwords",), log=lambda m: None)
    return {resources.RESOURCES_ENV: str(folder)}


def test_attack_end_to_end_then_again_from_its_results(tiny_run, resource_env):
    args = ("attack", "--attack", "deepwordbug", "--model", str(tiny_run), "--data", "sst2:test", "-n", "5")
    done = run_cli(*args, "--json", env=resource_env)
    assert done.returncode == 0, done.stderr
    assert "nltk_data" not in done.stderr  # NLTK's downloader stays off: no failed download noise, no waiting
    result = json.loads(done.stdout)
    assert result["attack"] == "deepwordbug" and result["runtime"] in ("onnx", "torch")
    summary = result["summary"]
    assert summary["examples"] == 5
    assert set(summary) >= {"original_accuracy", "accuracy_under_attack", "attack_success_rate",
                            "avg_perturbed_word_percent", "avg_words_per_input", "avg_queries"}
    folder = tiny_run / "attacks" / "deepwordbug-sst2-test-n5-seed0"
    assert result["folder"] == str(folder)
    rows = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
    assert [r["index"] for r in rows] == list(range(5))
    assert all({"original_text", "perturbed_text", "label", "perturbed_output", "queries", "status"} <= set(r)
               for r in rows)
    report = json.loads((tiny_run / "report.json").read_text())
    assert report["attacks"]["deepwordbug:sst2:test"]["summary"] == summary
    again = run_cli(*args, env=resource_env)  # every example is done: only the summary, as a table
    assert again.returncode == 0, again.stderr
    assert "Accuracy under attack" in again.stdout and "deepwordbug" in again.stdout
    assert (folder / "results.jsonl").read_text().splitlines() == [json.dumps(r, ensure_ascii=False) for r in rows]


def test_advsts_on_a_classifier_run_uses_its_sentence_embedding(tiny_run, resource_env):
    done = run_cli("attack", "--attack", "deepwordbug", "--model", str(tiny_run), "--data", "stsb:test", "-n", "3",
                   "--json", env=resource_env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["attack"] == "deepwordbug on AdvSTS" and result["options"]["sts_margin"] == 1.0
    assert result["summary"]["examples"] == 3 and "spearman_after" in result["summary"]
    rows = [json.loads(line) for line in (tiny_run / "attacks" / "deepwordbug-stsb-test-n3-seed0" / "results.jsonl")
            .read_text().splitlines()]
    assert all({"original_text_pair", "perturbed_text_pair", "gold_score", "perturbed_score"} <= set(r) for r in rows)
    report = json.loads((tiny_run / "report.json").read_text())
    assert report["attacks"]["deepwordbug:stsb:test"]["summary"] == result["summary"]


def test_perturb_writes_a_dataset_the_catalogue_loads(tiny_run, resource_env, tmp_path, monkeypatch):
    out = tmp_path / "adv"
    done = run_cli("perturb", "--attack", "deepwordbug", "--model", str(tiny_run), "--data", "sst2:validation",
                   "--output", str(out), "-n", "4", "--json", env=resource_env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["file"] == str(out / "validation.jsonl")
    rows = [json.loads(line) for line in (out / "validation.jsonl").read_text().splitlines()]
    assert len(rows) == 4
    assert all(set(r) == {"text", "adv_text", "label", "attack", "status"} and r["attack"] == "deepwordbug"
               for r in rows)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["task"] == "classification" and meta["splits"] == {"validation": 4}
    monkeypatch.setenv("ADVCL_DATA_DIR", str(tmp_path))
    for spec in ("adv:validation", str(out / "validation.jsonl")):
        dataset = load_data(spec, label_names=meta["labels"])
        assert dataset.texts == [r["text"] for r in rows] and dataset.labels == [r["label"] for r in rows]


@pytest.mark.parametrize("args,fragments", [
    (["--attack", "textfoler", "--data", "sst2:test"], ["unknown attack 'textfoler'", "did you mean 'textfooler'"]),
    (["--attack", "deepwordbug", "--data", "trec:test"], ["the model has 2 classes (negative, positive) but trec has 6"]),
    (["--attack", "deepwordbug", "--data", "sst2:test", "--shard", "9/8"], ["--shard must be K/N"]),
    (["--attack", "pwws", "--data", "sst2:test", "--mlm", "x"], ["--mlm is for attacks"]),
    (["--attack", "deepwordbug", "--data", "sst2:test", "--max-length", "100000"],
     ["--max-length 100000 is more than the", "tokens"]),
])
def test_bad_input_is_one_line(tiny_run, resource_env, args, fragments):
    assert_one_line_error(run_cli("attack", "--model", str(tiny_run), *args, env=resource_env), *fragments)


def test_data_without_labels_is_refused(tiny_run, resource_env, tmp_path):
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "meta.json").write_text(json.dumps({"name": "plain", "task": "unlabeled"}))
    (tmp_path / "plain" / "train.jsonl").write_text('{"text": "a sentence"}\n{"text": "another one"}\n')
    done = run_cli("attack", "--attack", "deepwordbug", "--model", str(tiny_run), "--data", "plain:train",
                   env={**resource_env, "ADVCL_DATA_DIR": str(tmp_path)})
    assert_one_line_error(done, "plain:train has no class labels")


def test_missing_resources_say_which_and_how_to_build(tiny_run, tmp_path):
    done = run_cli("attack", "--attack", "textfooler", "--model", str(tiny_run), "--data", "sst2:test",
                   env={resources.RESOURCES_ENV: str(tmp_path)})
    assert_one_line_error(done, "textfooler needs resources missing from", "counter-fitted-vectors",
                          "run `advcl resources build`")
    status = json.loads(run_cli("resources", "status", "--json", env={resources.RESOURCES_ENV: str(tmp_path)}).stdout)
    assert status["folder"] == str(tmp_path)
    assert {r["name"]: r["status"] for r in status["resources"]}["counter-fitted-vectors"] == "missing"
