"""Issue 17, item 2: a --max-examples sample is kept beside (never over) the whole split's evaluation, `advcl report`
pairs only predictions on the same sample and says which, and the sts / alignment suites honour --max-examples."""

import json
import shutil

import pytest

from advcl.evaluation.predictions import pair_predictions
from advcl.evaluation.significance import mcnemar
from conftest import run_cli
from daily_helpers import train_tiny

FULL_SST2_VALIDATION = 872  # lines of the shipped sst2/validation.jsonl


def invoke(*args):
    from typer.testing import CliRunner

    from advcl.cli import app

    return CliRunner().invoke(app, list(args))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_model_dir):
    return train_tiny(tmp_path_factory.mktemp("daily-eval"), tiny_model_dir)


def read_report(run):
    return json.loads((run / "report.json").read_text())


def test_a_sample_never_replaces_the_whole_split(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    done = invoke("eval", "--model", str(run), "--data", "sst2:validation", "--json")
    assert done.exit_code == 0, done.output
    full = read_report(run)["evaluations"]["sst2:validation"]
    assert full["examples"] == FULL_SST2_VALIDATION
    assert full["sample"] == {"examples": FULL_SST2_VALIDATION, "of": FULL_SST2_VALIDATION, "seed": None}
    full_predictions = (run / full["predictions"]).read_text()

    done = run_cli("eval", "--model", str(run), "--data", "sst2:validation", "--max-examples", "20", "--json")
    assert done.returncode == 0, done.stderr
    assert "'sst2:validation@20'" in done.stderr and "never over" in done.stderr
    printed = json.loads(done.stdout)
    assert printed["key"] == "sst2:validation@20" and printed["sample"] == {"examples": 20, "of": 872, "seed": 0}
    evaluations = read_report(run)["evaluations"]
    assert evaluations["sst2:validation"] == full  # untouched
    assert (run / full["predictions"]).read_text() == full_predictions
    sample = evaluations["sst2:validation@20"]
    assert sample["examples"] == 20 and sample["predictions"] == "predictions/sst2_validation_20.jsonl"
    rows = [json.loads(line) for line in (run / sample["predictions"]).read_text().splitlines()]
    whole = [json.loads(line) for line in full_predictions.splitlines()]
    assert len(rows) == 20 and all(row in whole for row in rows)  # a sample of the same split, same predictions
    assert sum(r["label"] == r["prediction"] for r in rows) / 20 == pytest.approx(sample["accuracy"])
    # a --max-examples at least the split's size is the whole split, kept under the plain key
    done = invoke("eval", "--model", str(run), "--data", "sst2:validation", "--max-examples", "5000", "--json")
    assert done.exit_code == 0 and json.loads(done.stdout)["key"] == "sst2:validation"


def test_report_pairs_the_same_sample_and_says_which(tiny_run, tmp_path):
    runs = [tmp_path / "a", tmp_path / "b"]
    for run, options in zip(runs, (["--max-examples", "30"], ["--max-examples", "40"])):
        shutil.copytree(tiny_run, run)
        for extra in ([], options):
            done = invoke("eval", "--model", str(run), "--data", "sst2:validation", *extra, "--json")
            assert done.exit_code == 0, done.output
    done = invoke("eval", "--model", str(runs[1]), "--data", "sst2:validation", "--max-examples", "30", "--json")
    assert done.exit_code == 0, done.output
    out = tmp_path / "report"
    done = invoke("report", str(runs[0]), str(runs[1]), "--output", str(out), "--trials", "200", "--json")
    assert done.exit_code == 0, done.output
    rows = {row["data"]: row for row in json.loads(done.stdout)["significance"]}
    assert set(rows) == {"sst2:validation", "sst2:validation@30"}  # b's @40 has no partner in a
    assert rows["sst2:validation"]["sample"] == "all 872" and rows["sst2:validation"]["examples"] == 872
    assert rows["sst2:validation@30"]["sample"] == "random 30 of 872 (seed 0)"
    assert rows["sst2:validation@30"]["examples"] == 30
    paired = pair_predictions(*(run / "predictions" / "sst2_validation_30.jsonl" for run in runs))
    assert rows["sst2:validation@30"]["mcnemar_p"] == mcnemar(paired.a == paired.labels,
                                                              paired.b == paired.labels)["p_value"]
    markdown = (out / "report.md").read_text()
    assert "| sst2:validation@30 | random 30 of 872 (seed 0) |" in markdown
    assert "| sst2:validation | all 872 |" in markdown


def test_sts_and_alignment_suites_honour_max_examples(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    done = invoke("eval", "--model", str(run), "--suite", "sts", "--tasks", "stsb:validation,sts12:test",
                  "--max-examples", "25", "--json")
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    for task in ("stsb:validation", "sts12:test"):
        assert result["tasks"][task]["pairs"] == 25 and result["tasks"][task]["sample"]["examples"] == 25
    assert result["tasks"]["stsb:validation"]["sample"]["of"] == 1500
    report = read_report(run)
    assert "sts" not in report and report["sts@25"]["average"] == result["average"]

    plot = tmp_path / "plane.svg"
    done = invoke("eval", "--model", str(run), "--suite", "alignment", "--max-examples", "60", "--plot", str(plot),
                  "--json")
    assert done.exit_code == 0, done.output
    assert done.stderr.strip().splitlines()[-1] == f"wrote {plot}" and plot.read_bytes().lstrip().startswith(b"<?xml")
    result = json.loads(done.stdout)
    assert result["sample"] == {"examples": 60, "of": 1500, "seed": 0}
    assert result["sentences"] <= 120 and result["positive_pairs"] < 60
    assert read_report(run)["alignment@60"]["alignment"] == result["alignment"]
