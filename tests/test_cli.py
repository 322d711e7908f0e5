"""The command line as a user drives it: help, results on stdout, one-line errors with exit status 2."""

import json
import shutil

import numpy as np
import pytest
import scipy.stats
import torch
from safetensors.torch import load_file

from conftest import SHARED_DATA, assert_one_line_error, run_cli, write_tiny_recipe


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_model_dir):
    folder = tmp_path_factory.mktemp("cli")
    recipe = write_tiny_recipe(folder, tiny_model_dir, train={"epochs": 1})
    done = run_cli("train", "--recipe", str(recipe), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "completed" and report["run_dir"].endswith("tiny")
    return folder / "runs" / "tiny"


def test_help_lists_commands_and_each_command_shows_examples():
    top = run_cli("--help")
    assert top.returncode == 0
    for command in ("train", "eval", "embed", "export", "plugins", "data"):
        assert command in top.stdout
        sub = run_cli(command, "--help")
        assert sub.returncode == 0 and "Examples" in sub.stdout, command


def test_dry_run_prints_the_resolved_recipe_and_creates_nothing(tmp_path, tiny_model_dir):
    import tomllib

    recipe = write_tiny_recipe(tmp_path, tiny_model_dir)
    done = run_cli("train", "--recipe", str(recipe), "--dry-run", "--set", "train.lr=2e-5")
    assert done.returncode == 0, done.stderr
    resolved = tomllib.loads(done.stdout)
    assert resolved["train"]["lr"] == 2e-5 and resolved["train"]["grad_accum_steps"] == 1
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["train", "--recipe", "nope.toml"], ["recipe not found: nope.toml"]),
        (["train", "--recipe", "RECIPE", "--set", "train.lrr=1"], ["unknown recipe key 'train.lrr' (did you mean 'train.lr'?)"]),
        (["train", "--recipe", "RECIPE", "--set", "train.epochs=two"], ["'train.epochs' must be an integer"]),
        (["train", "--recipe", "RECIPE", "--set", "data.train=missing.csv"], ["data file not found: missing.csv"]),
        (["train", "--recipe", "RECIPE", "--set", "model.name=/nonexistent/model"], ["model folder not found"]),
        (["train", "--recipe", "RECIPE", "--set", "run.precision=bf16"], ["needs a CUDA device"]),
        (["eval", "--model", "/nonexistent/folder", "--data", "sst2:validation"], ["model folder not found"]),
        (["eval", "--model", "TINYRUN", "--data", "sst2:nosuchsplit"], ["dataset 'sst2' has no split 'nosuchsplit'"]),
        (["eval", "--model", "TINYRUN", "--data", "ag_news:test"],
         ["the model has 2 classes (negative, positive) but ag_news has 4 (World, Sports, Business, Sci/Tech)"]),
        (["embed", "--model", "TINYRUN", "--input", "nope.txt", "--output", "x.npy"], ["input file not found"]),
        (["embed", "--model", "TINYRUN", "--input", "nope.txt", "--output", "x.csv"], ["must end in .npy"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, tiny_model_dir, tiny_run, args, fragments):
    recipe = write_tiny_recipe(tmp_path, tiny_model_dir)
    args = [str(recipe) if a == "RECIPE" else str(tiny_run) if a == "TINYRUN" else a for a in args]
    assert_one_line_error(run_cli(*args, cwd=tmp_path), *fragments)


def test_unreadable_model_folder(tmp_path, tiny_model_dir):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    recipe = write_tiny_recipe(tmp_path, tiny_model_dir, model={"name": str(tmp_path / "broken")})
    assert_one_line_error(run_cli("train", "--recipe", str(recipe)), "could not load model")


def test_existing_run_folder_is_refused_and_kept(tiny_run, tmp_path):
    config = (tiny_run / "config.toml").read_text()
    recipe = tmp_path / "again.toml"
    recipe.write_text(config)
    assert_one_line_error(run_cli("train", "--recipe", str(recipe)), "already exists", "--overwrite")
    assert (tiny_run / "report.json").is_file()


def test_eval_table_and_json(tiny_run):
    table = run_cli("eval", "--model", str(tiny_run), "--data", "sst2:validation", "--max-examples", "40")
    assert table.returncode == 0, table.stderr
    assert "accuracy" in table.stdout and "MCC" in table.stdout
    done = run_cli("eval", "--model", str(tiny_run), "--data", "sst2:validation", "--max-examples", "40", "--json")
    result = json.loads(done.stdout)  # stdout holds the JSON only
    assert result["examples"] == 40 and 0 <= result["accuracy"] <= 1 and -1 <= result["mcc"] <= 1


def test_eval_refuses_an_encoder_without_a_trained_head():
    assert_one_line_error(run_cli("eval", "--model", "all-MiniLM-L6-v2", "--data", "sst2:validation"), "no trained classification head")


def test_export_loads_in_plain_transformers_with_the_same_logits(tiny_run, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from advcl.runs import load_model

    out = tmp_path / "export"
    done = run_cli("export", "--model", str(tiny_run), "--output", str(out))
    assert done.returncode == 0, done.stderr
    assert {"model.safetensors", "config.json", "tokenizer.json", "vocab.txt"} <= {p.name for p in out.iterdir()}
    plain = AutoModelForSequenceClassification.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    batch = tokenizer(["a gorgeous film", "dull , lifeless and long"], return_tensors="pt", padding=True)
    ours = load_model(str(tiny_run)).model.eval()
    with torch.no_grad():
        assert torch.allclose(plain(**batch).logits, ours(**batch).logits, atol=1e-6)
    assert plain.config.id2label == {0: "negative", 1: "positive"}
    assert_one_line_error(run_cli("export", "--model", str(tiny_run), "--output", str(out)), "already exists", "--overwrite")
    assert run_cli("export", "--model", str(tiny_run), "--output", str(out), "--overwrite").returncode == 0


def test_export_of_a_run_without_checkpoint_is_refused(tiny_run, tmp_path):
    import shutil

    copy = tmp_path / "unfinished"
    shutil.copytree(tiny_run, copy, ignore=shutil.ignore_patterns("step-*"))
    assert_one_line_error(run_cli("export", "--model", str(copy), "--output", str(tmp_path / "o")), "no finished checkpoint")


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_embed_writes_one_vector_per_line_in_every_format(tiny_run, tmp_path, pooling):
    from advcl.modeling.encoder import model_inputs
    from advcl.modeling.pooling import pool
    from advcl.runs import load_model

    sentences = ["the film is wonderful", "i hated every minute of it", "ok"]
    source = tmp_path / "s.txt"
    source.write_text("\n".join(sentences) + "\n")
    loaded = load_model(str(tiny_run))
    batch = loaded.tokenizer(sentences, return_tensors="pt", padding=True)
    with torch.no_grad():
        states = loaded.model.hf(**model_inputs(batch), output_hidden_states=True).hidden_states[-1]
    expected = pool(states, batch["attention_mask"], pooling)
    outputs = {}
    for suffix in ("npy", "safetensors", "jsonl"):
        out = tmp_path / f"emb.{suffix}"
        done = run_cli("embed", "--model", str(tiny_run), "--input", str(source), "--output", str(out), "--pooling", pooling)
        assert done.returncode == 0, done.stderr
        outputs[suffix] = out
    npy = torch.from_numpy(np.load(outputs["npy"]))
    assert npy.shape == (3, 32)
    assert torch.allclose(npy, expected, atol=1e-5)
    assert torch.equal(load_file(outputs["safetensors"])["embeddings"], npy)
    rows = [json.loads(line) for line in outputs["jsonl"].read_text().splitlines()]
    assert [r["text"] for r in rows] == sentences
    assert torch.allclose(torch.tensor([r["embedding"] for r in rows]), npy)


def test_embed_rejects_an_empty_line(tiny_run, tmp_path):
    source = tmp_path / "s.txt"
    source.write_text("fine\n\nalso fine\n")
    assert_one_line_error(
        run_cli("embed", "--model", str(tiny_run), "--input", str(source), "--output", str(tmp_path / "e.npy")),
        "s.txt:2: empty line",
    )


def spearman_of_embed(run, tmp_path, *pooling) -> float:
    """STS-B validation Spearman x 100 computed here from `advcl embed`'s vectors (with ``pooling`` options)."""
    pairs = [json.loads(line) for line in (SHARED_DATA / "stsb" / "validation.jsonl").read_text().splitlines()]
    embedded = []
    for side in ("sentence1", "sentence2"):
        (tmp_path / f"{side}.txt").write_text("".join(p[side] + "\n" for p in pairs))
        done = run_cli("embed", "--model", str(run), "--input", str(tmp_path / f"{side}.txt"),
                       "--output", str(tmp_path / f"{side}.npy"), *pooling)
        assert done.returncode == 0, done.stderr
        embedded.append(np.load(tmp_path / f"{side}.npy").astype(np.float64))
    first, second = embedded
    cosines = (first * second).sum(1) / np.linalg.norm(first, axis=1) / np.linalg.norm(second, axis=1)
    return 100 * scipy.stats.spearmanr(cosines, [p["score"] for p in pairs]).statistic


def test_embed_gives_the_embeddings_that_the_sts_suite_scores(tiny_run, tmp_path):
    expected = spearman_of_embed(tiny_run, tmp_path)
    done = run_cli("eval", "--model", str(tiny_run), "--suite", "sts", "--tasks", "stsb:validation", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tasks"]["stsb:validation"]["spearman"] == pytest.approx(expected, abs=1e-3)


def test_a_suite_with_another_pooling_is_kept_beside_the_runs_own(tiny_run, tmp_path):
    expected = spearman_of_embed(tiny_run, tmp_path, "--pooling", "mean")  # the run pools [CLS]
    done = run_cli("eval", "--model", str(tiny_run), "--suite", "sts", "--tasks", "stsb:validation", "--pooling",
                   "mean", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["pooling"] == "mean" and result["average"] == pytest.approx(expected, abs=1e-3)
    kept = json.loads((tiny_run / "report.json").read_text())
    assert kept["sts (mean pooling)"]["average"] == result["average"]
    assert kept.get("sts", {}).get("pooling", "cls") == "cls"  # the run's own suite result is not replaced
    assert_one_line_error(run_cli("eval", "--model", str(tiny_run), "--suite", "sts", "--pooling", "max"),
                          "--pooling must be one of")
    assert_one_line_error(run_cli("eval", "--model", str(tiny_run), "--data", "sst2:validation", "--pooling", "mean"),
                          "--pooling and --max-length go with --suite")


def test_a_suite_at_another_max_length_scores_as_a_run_trained_at_it_and_is_kept_beside(tiny_run, tmp_path):
    """--max-length N scores the run's sentences as a copy of the run whose recipe says model.max_length = N does;
    the run's own result (at its training length, 32) is not replaced."""
    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    config = copy / "config.toml"
    config.write_text(config.read_text().replace("max_length = 32", "max_length = 8"))
    suite = ("--suite", "sts", "--tasks", "stsb:validation", "--json")
    expected = run_cli("eval", "--model", str(copy), *suite)
    own = run_cli("eval", "--model", str(tiny_run), *suite)
    shorter = run_cli("eval", "--model", str(tiny_run), *suite, "--max-length", "8")
    for done in (expected, own, shorter):
        assert done.returncode == 0, done.stderr
    expected, own, shorter = (json.loads(done.stdout) for done in (expected, own, shorter))
    assert (own["max_length"], shorter["max_length"], expected["max_length"]) == (32, 8, 8)
    assert shorter["average"] == pytest.approx(expected["average"], abs=1e-9)
    assert abs(shorter["average"] - own["average"]) > 0.01  # STS-B sentences are longer than 8 tokens
    kept = json.loads((tiny_run / "report.json").read_text())
    assert kept["sts (max length 8)"]["average"] == shorter["average"]
    assert kept["sts"]["average"] == own["average"]
    assert_one_line_error(run_cli("eval", "--model", str(tiny_run), "--data", "sst2:validation", "--max-length", "8"),
                          "--max-length go with --suite")
    assert_one_line_error(run_cli("eval", "--model", str(tiny_run), *suite, "--max-length", "129"),
                          "--max-length 129 is more than the 128 tokens")  # the tiny BERT's positions
    assert run_cli("eval", "--model", str(tiny_run), *suite, "--max-length", "128").returncode == 0


def test_a_recipe_longer_than_the_models_positions_is_one_line(tiny_model_dir, tmp_path):
    recipe = write_tiny_recipe(tmp_path, tiny_model_dir)
    assert_one_line_error(run_cli("train", "--recipe", str(recipe), "--set", "model.max_length=129"),
                          "'model.max_length' = 129 is above the 128 positions")
    assert not (tmp_path / "runs").exists()


def test_plugins_and_data_json():
    plugins = json.loads(run_cli("plugins", "--json").stdout)
    assert {"kind": "objective", "name": "vanilla", "plugin": "advcl.objectives.vanilla", "version": "0.1.0"} in plugins["components"]
    data = json.loads(run_cli("data", "--json").stdout)
    sst2 = {r["split"]: r for r in data["datasets"] if r["name"] == "sst2"}
    assert sst2["validation"]["resolves_to"] == "local" and sst2["validation"]["rows"] == 872


def test_data_shows_hub_and_missing_when_the_folder_is_absent(tmp_path):
    data = json.loads(run_cli("data", "--json", env={"ADVCL_DATA_DIR": str(tmp_path)}).stdout)
    where = {(r["name"], r["split"]): r["resolves_to"] for r in data["datasets"]}
    assert where[("sst2", "train")] == "hub" and where[("hwu64", "train")] == "missing"


def test_python_dash_m_works():
    assert "Usage" in run_cli("--help").stdout


def test_eval_suites_sts_and_alignment(tiny_run, tmp_path):
    done = run_cli("eval", "--model", str(tiny_run), "--suite", "sts", "--tasks", "stsb:validation", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["pooling"] == "cls" and result["tasks"]["stsb:validation"]["pairs"] == 1500
    assert result["average"] == pytest.approx(result["tasks"]["stsb:validation"]["spearman"])
    assert json.loads((tiny_run / "report.json").read_text())["sts"]["average"] == result["average"]
    assert -100 <= result["average"] <= 100  # Spearman x100
    plot = tmp_path / "au.png"
    done = run_cli("eval", "--model", str(tiny_run), "--also", "all-MiniLM-L6-v2", "--suite", "alignment",
                   "--plot", str(plot), "--json")
    assert done.returncode == 0, done.stderr
    both = json.loads(done.stdout)
    assert set(both) == {str(tiny_run), "all-MiniLM-L6-v2"} and plot.stat().st_size > 0
    assert_one_line_error(run_cli("eval", "--model", str(tiny_run), "--suite", "stss"), "--suite must be one of")
    assert_one_line_error(run_cli("eval", "--model", str(tiny_run)), "give --data SPLIT")
