"""advcl eval --predictions and advcl report: files, plots, and significance computed from the predictions."""

import json

import pytest

from advcl.evaluation.predictions import pair_predictions
from advcl.evaluation.significance import mcnemar
from conftest import run_cli, write_tiny_recipe

EVAL = ["--data", "sst2:validation", "--max-examples", "40", "--robust", "pgd", "--eps", "0.05,0.2", "--steps", "2"]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, tiny_model_dir):
    """Two tiny runs that differ in seed and learning rate, each evaluated with predictions and robustness."""
    runs = []
    for name, lr in (("baseline", 1e-3), ("other", 3e-4)):
        folder = tmp_path_factory.mktemp(name)
        recipe = write_tiny_recipe(folder, tiny_model_dir, run={"name": name, "seed": 3},
                                   train={"epochs": 1, "lr": lr}, data={"max_train_examples": 48, "max_eval_examples": 40})
        done = run_cli("train", "--recipe", str(recipe))
        assert done.returncode == 0, done.stderr
        run = folder / "runs" / name
        done = run_cli("eval", "--model", str(run), *EVAL, "--json")
        assert done.returncode == 0, done.stderr
        runs.append(run)
    return runs


def test_eval_keeps_predictions_in_the_run_folder(two_runs, tmp_path):
    run = two_runs[0]
    evaluation = json.loads((run / "report.json").read_text())["evaluations"]["sst2:validation@40"]  # a sample
    assert evaluation["predictions"] == "predictions/sst2_validation_40.jsonl"
    rows = [json.loads(line) for line in (run / evaluation["predictions"]).read_text().splitlines()]
    assert len(rows) == 40 and set(rows[0]) == {"text", "label", "prediction"}
    assert sum(r["label"] == r["prediction"] for r in rows) / 40 == pytest.approx(evaluation["accuracy"])
    elsewhere = tmp_path / "p.jsonl"
    done = run_cli("eval", "--model", str(run), "--data", "sst2:validation", "--max-examples", "40",
                   "--predictions", str(elsewhere), "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["predictions"] == str(elsewhere)
    assert elsewhere.read_text() == (run / evaluation["predictions"]).read_text()


def test_report_writes_markdown_plots_and_significance(two_runs, tmp_path):
    out = tmp_path / "report"
    done = run_cli("report", *map(str, two_runs), "--output", str(out), "--trials", "2000", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert {p.name for p in out.iterdir()} == {"report.md", "report.json", "training_curves.png", "robustness.png",
                                               "training_curves.pdf", "robustness.pdf"}  # PDF twins for papers
    for plot in ("training_curves.png", "robustness.png"):
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (out / plot).stat().st_size > 10_000
    [row] = result["significance"]
    assert (row["baseline"], row["run"], row["data"], row["examples"]) == ("baseline", "other", "sst2:validation@40",
                                                                           40)
    paired = pair_predictions(*(run / "predictions" / "sst2_validation_40.jsonl" for run in two_runs))
    assert row["mcnemar_p"] == mcnemar(paired.a == paired.labels, paired.b == paired.labels)["p_value"]
    assert 0 < row["macro_f1_p"] <= 1 and 0 < row["mcc_p"] <= 1
    assert {r["eps"] for r in result["robustness"]} == {0.05, 0.2} and len(result["robustness"]) == 4
    markdown = (out / "report.md").read_text()
    for fragment in ("## Runs", "## Significance against the baseline", "## Robustness", "![training curves]"):
        assert fragment in markdown
    again = run_cli("report", *map(str, two_runs), "--output", str(out))
    assert again.returncode == 2 and "already exists" in again.stderr and "--overwrite" in again.stderr


def test_report_refuses_a_folder_that_is_not_a_run(tmp_path):
    done = run_cli("report", str(tmp_path), "--output", str(tmp_path / "out"))
    assert done.returncode == 2 and done.stderr.strip() == f"error: {tmp_path} is not a run folder (no config.toml and model/ in it)"
