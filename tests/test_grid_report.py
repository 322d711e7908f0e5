"""advcl grid report: mean, sample s.d., the seed tests and the per-example tests against hand-computed values on
made-up results and predictions; unfinished cells; the plots."""

from __future__ import annotations

import json
import math

import pytest
from conftest import write_tiny_recipe

from advcl.grid.aggregate import aggregate
from advcl.grid.report import write_report
from advcl.grid.spec import load_grid
from advcl.grid.steps import result_path

BASE = [0.70, 0.72, 0.68]  # clean accuracy per seed 0, 1, 2
ADV = [0.75, 0.80, 0.71]
BASE_EPS = [0.40, 0.50, 0.45]  # accuracy at ε = 0.1
ADV_EPS = [0.60, 0.62]  # seed 2 unfinished


def predictions(path, correct):
    """Made-up predictions: example i has label "pos", predicted right where correct[i]."""
    path.write_text("".join(json.dumps({"text": f"t{i}", "label": "pos", "prediction": "pos" if ok else "neg"}) + "\n"
                            for i, ok in enumerate(correct)))
    return str(path)


@pytest.fixture
def grid(tmp_path, tiny_model_dir):
    recipe = write_tiny_recipe(tmp_path, tiny_model_dir)
    path = tmp_path / "grid.toml"
    path.write_text(f"""output_dir = "{tmp_path}/out"
seeds = [0, 1, 2]
baseline = "base"
[[method]]
name = "base"
recipe = "{recipe}"
[[method]]
name = "adv"
recipe = "{recipe}"
[[evaluate]]
data = "sst2:validation"
[[evaluate]]
data = "sst2:validation"
max_examples = 40
robust = "pgd"
eps = [0.1]
""")
    grid = load_grid(path, check_recipes=False)
    clean, robust = grid.spec.evaluate
    # seed 0: base right on 0-19, adv right on 0-18 and 20-25: b = 1 (19), c = 6 (20-25)
    base_right = [i < 20 for i in range(30)]
    adv_right = [i < 19 or 20 <= i < 26 for i in range(30)]
    for method, accuracies, robust_accuracies, right in (("base", BASE, BASE_EPS, base_right),
                                                         ("adv", ADV, ADV_EPS, adv_right)):
        for seed, accuracy in enumerate(accuracies):
            job = grid.job(f"{method}-s{seed}")
            result_path(grid, job, clean).parent.mkdir(parents=True)
            result = {"accuracy": accuracy, "macro_f1": accuracy / 2, "mcc": 0.1 * seed, "sample": {"examples": 30}}
            if seed == 0:
                result["predictions"] = predictions(tmp_path / f"{method}.jsonl", right)
            result_path(grid, job, clean).write_text(json.dumps(result))
            if seed < len(robust_accuracies):
                attacked = {"clean_accuracy": accuracy, "norm": "l2", "steps": 5, "examples": 40,
                            "results": [{"eps": 0.1, "accuracy": robust_accuracies[seed]}]}
                result_path(grid, job, robust).write_text(json.dumps({"robustness": attacked}))
    return grid


def sample_sd(values):
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def t_statistic(differences):
    return (sum(differences) / len(differences)) / (sample_sd(differences) / math.sqrt(len(differences)))


def test_mean_sd_and_tests_match_hand_computed_values(grid):
    tables = aggregate(grid, "t", trials=200)
    clean = {row["setting"]: row for row in tables["sst2:validation"]["rows"]}
    adv = clean["adv"]
    assert adv["metrics"]["accuracy"]["mean"] == pytest.approx(sum(ADV) / 3)
    assert adv["metrics"]["accuracy"]["sd"] == pytest.approx(sample_sd(ADV))
    assert (adv["n"], adv["unfinished"], adv["baseline"]) == (3, [], "base")
    # paired t over 3 seeds: 2 degrees of freedom, whose two-sided p is 1 − |t| / √(2 + t²)
    t = t_statistic([a - b for a, b in zip(ADV, BASE)])
    assert adv["tests"]["accuracy"]["p"] == pytest.approx(1 - abs(t) / math.sqrt(2 + t * t), rel=1e-9)
    assert adv["tests"]["accuracy"]["difference"] == pytest.approx((sum(ADV) - sum(BASE)) / 3)
    assert adv["tests"]["mcc"]["p"] is None  # the same mcc for both at every seed: no variation to test
    # McNemar on seed 0's predictions: b = 1, c = 6, exact: 2 · (C(7,0) + C(7,1)) / 2^7
    assert adv["tests"]["per_example"]["0"]["mcnemar_p"] == pytest.approx(2 * (1 + 7) / 2**7)
    assert adv["tests"]["per_example"]["0"]["examples"] == 30 and list(adv["tests"]["per_example"]) == ["0"]
    assert "tests" not in clean["base"]
    robust = {row["setting"]: row for row in tables["pgd:sst2:validation@40"]["rows"]}["adv"]
    assert (robust["n"], robust["of"], robust["unfinished"]) == (2, 3, ["adv-s2"])
    assert robust["metrics"]["ε=0.1"]["mean"] == pytest.approx(0.61)
    # two pairs: 1 degree of freedom, two-sided p = 1 − (2/π)·atan|t|
    t = t_statistic([a - b for a, b in zip(ADV_EPS, BASE_EPS)])
    assert robust["tests"]["ε=0.1"]["p"] == pytest.approx(1 - 2 / math.pi * math.atan(abs(t)), rel=1e-9)
    assert robust["tests"]["ε=0.1"]["pairs"] == 2


def test_wilcoxon_over_seeds(grid):
    adv = {row["setting"]: row for row in aggregate(grid, "wilcoxon", trials=50)["sst2:validation"]["rows"]}["adv"]
    assert adv["tests"]["accuracy"]["p"] == pytest.approx(2 / 2**3)  # all 3 differences positive: exact 2·(1/8)


def test_report_files_say_which_cells_are_unfinished(grid, tmp_path):
    for seed, seconds in ((0, 12.5), (1, 14.5)):
        (tmp_path / "out" / f"adv-s{seed}").mkdir()
        report = {"status": "completed", "train_seconds": seconds, "step": 64}
        (tmp_path / "out" / f"adv-s{seed}" / "report.json").write_text(json.dumps(report))
    result = write_report(grid, tmp_path / "report", "t", trials=50)
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "| base | 0 of 3 | unfinished | unfinished |" in markdown
    assert f"| adv | 2 of 3 | 13.5 ± {math.sqrt(2):.1f} | 64 ± 0 |" in markdown  # training seconds, steps
    assert "| adv | 2 of 3 (1 unfinished) | 77.5 ± 3.5 | 61.0 ± 1.4 |" in markdown  # seeds 0-1: clean, ε = 0.1
    assert "| adv | 3 | 75.3 ± 4.5 |" in markdown
    assert sorted(result["plots"]) == [f"robustness_pgd_sst2_validation_40.{s}" for s in ("pdf", "png", "svg")]
    for name in result["plots"]:
        assert (tmp_path / "report" / name).stat().st_size > 1000
    assert "n = 2, 3 seeds per setting, on 40 examples" in markdown
    stored = json.loads((tmp_path / "report" / "report.json").read_text())
    assert stored["evaluations"]["sst2:validation"]["rows"][1]["metrics"]["accuracy"]["n"] == 3


def test_the_report_replaces_only_its_own_folder(grid, tmp_path):
    from advcl.errors import BadInput
    from advcl.grid.report import refuse_foreign_folder

    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "draft.md").write_text("mine")
    with pytest.raises(BadInput, match="holds other files and no grid report"):
        refuse_foreign_folder(foreign)
    assert (foreign / "draft.md").read_text() == "mine"
    write_report(grid, tmp_path / "report", "t", trials=20)
    refuse_foreign_folder(tmp_path / "report")  # its own earlier report: replaced
    refuse_foreign_folder(tmp_path / "new")
