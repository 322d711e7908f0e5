"""advcl grid report: mean, sample s.d., the 95 % intervals, the seed tests and the per-example tests against
hand-computed values on made-up results and predictions; unfinished cells; a model row against a method baseline;
the plots."""

from __future__ import annotations

import json
import math

import pytest
from conftest import assert_one_line_error, run_cli, write_tiny_recipe, write_two_method_grid

from advcl.grid.aggregate import Cell, aggregate, compare
from advcl.grid.report import comparison_text, write_report
from advcl.grid.spec import load_grid
from advcl.grid.steps import result_path

BASE = [0.70, 0.72, 0.68]  # clean accuracy per seed 0, 1, 2
ADV = [0.75, 0.80, 0.71]
BASE_EPS = [0.40, 0.50, 0.45]  # accuracy at ε = 0.1
ADV_EPS = [0.60, 0.62]  # seed 2 unfinished
BASE_SHIFT = [(0.02, 1.0), (0.03, 1.2), (0.025, 1.1)]  # (cosine, euclidean distance) at ε = 0.1
ADV_SHIFT = [(0.01, 0.8), (0.015, 0.9)]


def predictions(path, correct):
    """Made-up predictions: example i has label "pos", predicted right where correct[i]."""
    path.write_text("".join(json.dumps({"text": f"t{i}", "label": "pos", "prediction": "pos" if ok else "neg"}) + "\n"
                            for i, ok in enumerate(correct)))
    return str(path)


@pytest.fixture
def grid(tmp_path, tiny_model_dir):
    recipe = write_tiny_recipe(tmp_path, tiny_model_dir)
    path = write_two_method_grid(tmp_path, recipe, """[[evaluate]]
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
    for method, accuracies, robust_accuracies, shifts, right in (("base", BASE, BASE_EPS, BASE_SHIFT, base_right),
                                                                 ("adv", ADV, ADV_EPS, ADV_SHIFT, adv_right)):
        for seed, accuracy in enumerate(accuracies):
            job = grid.job(f"{method}-s{seed}")
            result_path(grid, job, clean).parent.mkdir(parents=True)
            result = {"accuracy": accuracy, "macro_f1": accuracy / 2, "mcc": 0.1 * seed, "sample": {"examples": 30}}
            if seed == 0:
                result["predictions"] = predictions(tmp_path / f"{method}.jsonl", right)
            result_path(grid, job, clean).write_text(json.dumps(result))
            if seed < len(robust_accuracies):
                attacked = {"clean_accuracy": accuracy, "norm": "l2", "steps": 5, "examples": 40,
                            "results": [{"eps": 0.1, "accuracy": robust_accuracies[seed],
                                         "cosine_distance": shifts[seed][0], "euclidean_distance": shifts[seed][1]}]}
                result_path(grid, job, robust).write_text(json.dumps({"robustness": attacked}))
    return grid


def sample_sd(values):
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def t_statistic(differences):
    return (sum(differences) / len(differences)) / (sample_sd(differences) / math.sqrt(len(differences)))


# t_{0.975, df} in closed form: df = 1 is Cauchy, tan(π(p − ½)); df = 2 is (2p − 1) / √(2p(1 − p)).
T_975 = {1: math.tan(math.pi * 0.475), 2: 0.95 / math.sqrt(2 * 0.975 * 0.025)}


def interval(differences):
    mean = sum(differences) / len(differences)
    half = T_975[len(differences) - 1] * sample_sd(differences) / math.sqrt(len(differences))
    return [mean - half, mean + half]


def test_the_interval_is_the_t_interval_of_the_paired_differences():
    assert T_975[2] == pytest.approx(4.302652729749464, rel=1e-12)  # the table's t_{0.975, 2}
    theirs = {0: 0.30, 1: -0.20, 2: 1.10}
    ours = Cell("ours", [], values={"score": {s: v + d for (s, v), d in zip(theirs.items(), (1.0, 2.5, 0.7))}})
    tested = compare(ours, Cell("base", [], values={"score": theirs}), "t", trials=10, seed=0)["score"]
    # d = 1.0, 2.5, 0.7: mean 1.4, s² = (0.16 + 1.21 + 0.49) / 2 = 0.93, half-width t_{0.975,2} · √(0.93 / 3)
    half = 4.302652729749464 * math.sqrt(0.93 / 3)
    assert tested["difference"] == pytest.approx(1.4)
    assert tested["ci95"] == pytest.approx([1.4 - half, 1.4 + half], rel=1e-9)
    assert (tested["ci_method"], tested["pairs"]) == ("t", 3)
    wilcoxon = compare(ours, Cell("base", [], values={"score": theirs}), "wilcoxon", trials=10, seed=0)["score"]
    assert wilcoxon["ci95"] == pytest.approx(tested["ci95"]) and wilcoxon["p"] == pytest.approx(2 / 2**3)


def test_no_interval_under_two_pairs():
    one = compare(Cell("ours", [], values={"score": {0: 0.9, 1: 0.8}}),
                  Cell("base", [], values={"score": {1: 0.5, 2: 0.4}}), "t", trials=10, seed=0)["score"]
    assert (one["pairs"], one["difference"], one["ci95"], one["p"]) == (1, pytest.approx(0.3), None, None)
    assert compare(Cell("ours", [], values={"score": {0: 0.9}}),
                   Cell("base", [], values={"score": {1: 0.5}}), "t", trials=10, seed=0) == {}


def test_the_same_difference_at_every_seed_is_said_not_shown_as_an_interval():
    tested = compare(Cell("ours", [], values={"score": {0: 0.75, 1: 0.5, 2: 0.25}}),
                     Cell("base", [], values={"score": {0: 0.5, 1: 0.25, 2: 0.0}}), "t", trials=10, seed=0)["score"]
    assert (tested["difference"], tested["ci95"], tested["p"]) == (0.25, [0.25, 0.25], None)
    assert comparison_text(tested, percent=True) == "+25.00 (the same at every seed: no interval, no test)"
    # equal on paper, not in floats: 0.644 − 0.600, 0.670 − 0.626, 0.702 − 0.658 (k/500 accuracies)
    rounded = compare(Cell("ours", [], values={"score": {0: 0.600, 1: 0.626, 2: 0.658}}),
                      Cell("base", [], values={"score": {0: 0.644, 1: 0.670, 2: 0.702}}), "t", trials=10, seed=0)["score"]
    assert len({0.600 - 0.644, 0.626 - 0.670, 0.658 - 0.702}) > 1  # the case this guards against
    assert rounded["p"] is None and rounded["ci95"][0] == rounded["ci95"][1]
    assert comparison_text(rounded, percent=True) == "-4.40 (the same at every seed: no interval, no test)"
    varied = dict(tested, ci95=[0.125, 0.375], p=0.0416)
    assert comparison_text(varied, percent=True) == "+25.00 [+12.50, +37.50] (0.042)"


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
    assert adv["tests"]["accuracy"]["ci95"] == pytest.approx(interval([a - b for a, b in zip(ADV, BASE)]))
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
    # seeds 0-1 paired, 1 degree of freedom: (0.20, 0.12), mean 0.16 ± 12.7062 · 0.04 · √2 / √2
    assert robust["tests"]["ε=0.1"]["ci95"] == pytest.approx([0.16 - T_975[1] * 0.04, 0.16 + T_975[1] * 0.04])


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
    # clean, × 100: d = 5, 8, 3; mean 16/3, s.d. √(19/3), t = (16/3) / √(19/9) = 3.671 with 2 d.f.: p = 0.067
    lo, hi = (16 / 3 + sign * T_975[2] * math.sqrt(19 / 9) for sign in (-1, 1))
    t = (16 / 3) / math.sqrt(19 / 9)
    assert f"| adv | base | +5.33 [{lo:+.2f}, {hi:+.2f}] ({1 - t / math.sqrt(2 + t * t):.3f}) |" in markdown
    assert "| adv | base | +5.33 [-0.92, +11.58] (0.067) |" in markdown
    assert "its 95 % t-interval over seeds (n = 3 pairs; no interval under 2); p, the paired t-test" in markdown
    assert "(n = 2 pairs; no interval under 2); p, the paired t-test over seeds.\n" in markdown  # ε: seeds 0-1
    assert "| adv | base | +6.50 [-12.56, +25.56] (0.144) | +16.00 [-34.82, +66.82] (0.156) |" in markdown
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


def test_no_plots_writes_the_tables_alone(grid, tmp_path):
    assert write_report(grid, tmp_path / "tables", "t", trials=20)["plots"]  # an earlier report with plots
    result = write_report(grid, tmp_path / "tables", "t", trials=20, plots=False)
    assert result["plots"] == [] and sorted(p.name for p in (tmp_path / "tables").iterdir()) == ["report.json", "report.md"]
    markdown = (tmp_path / "tables" / "report.md").read_text()
    assert "![" not in markdown and "| adv | base | +5.33 [-0.92, +11.58] (0.067) |" in markdown


def test_a_seeded_result_is_paired_only_with_its_own_seed(grid):
    """Before, a baseline whose other seeds were unfinished was paired with every seed of the setting."""
    robust = grid.spec.evaluate[1]
    for seed in (1, 2):
        result_path(grid, grid.job(f"base-s{seed}"), robust).unlink()
    rows = {row["setting"]: row for row in aggregate(grid, "t", trials=20)["pgd:sst2:validation@40"]["rows"]}
    tested = rows["adv"]["tests"]["ε=0.1"]
    assert (tested["pairs"], tested["difference"], tested["ci95"]) == (1, pytest.approx(0.20), None)


def test_a_model_row_against_a_method_baseline_is_paired_with_each_seed(grid, tmp_path):
    grid.path.write_text(grid.path.read_text() + '[[model]]\nname = "untouched"\n')
    with_model = load_grid(grid.path, check_recipes=False)
    clean = with_model.spec.evaluate[0]
    path = result_path(with_model, with_model.job("untouched"), clean)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"accuracy": 0.69, "macro_f1": 0.30, "mcc": 0.0}))
    result = write_report(with_model, tmp_path / "report", "t", trials=20)
    model = {row["setting"]: row for row in result["evaluations"]["sst2:validation"]["rows"]}["untouched"]
    # untouched − base per seed: −0.01, −0.03, +0.01: mean −0.01, s.d. 0.02
    half = T_975[2] * 0.02 / math.sqrt(3)
    assert (model["baseline"], model["tests"]["accuracy"]["pairs"]) == ("base", 3)
    assert model["tests"]["accuracy"]["ci95"] == pytest.approx([-0.01 - half, -0.01 + half])
    assert "per_example" not in model["tests"]  # the model kept no predictions
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert f"| untouched | base | -1.00 [{-1 - 100 * half:+.2f}, {-1 + 100 * half:+.2f}] (" in markdown
    assert "| untouched | 1 | 69.0 |" in markdown


def test_the_report_can_test_against_another_setting_than_the_files_baseline(grid):
    from advcl.grid.spec import GridError

    other = load_grid(grid.path, check_recipes=False, baseline="adv")
    rows = {row["setting"]: row for row in aggregate(other, "t", trials=20)["sst2:validation"]["rows"]}
    assert "tests" not in rows["adv"] and rows["base"]["baseline"] == "adv"
    assert rows["base"]["tests"]["accuracy"]["difference"] == pytest.approx(-(5 + 8 + 3) / 300)  # BASE − ADV
    assert load_grid(grid.path, check_recipes=False).spec.baseline == "base"  # the file is unchanged
    with pytest.raises(GridError, match=r"^--baseline 'nope' is no evaluated setting \(one of adv, base\)$"):
        load_grid(grid.path, check_recipes=False, baseline="nope")


def test_grid_report_baseline_option(grid, tmp_path):
    done = run_cli("grid", "report", str(grid.path), "--baseline", "adv", "--output", str(tmp_path / "vs_adv"),
                   "--trials", "20", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["baseline"] == "adv"
    rows = {row["setting"]: row for row in result["evaluations"]["sst2:validation"]["rows"]}
    assert rows["base"]["tests"]["accuracy"]["difference"] == pytest.approx(-(5 + 8 + 3) / 300)
    assert "| base | adv | -5.33 [" in (tmp_path / "vs_adv" / "report.md").read_text()
    assert_one_line_error(run_cli("grid", "report", str(grid.path), "--baseline", "nope"),
                          "--baseline 'nope' is no evaluated setting")


def test_the_representation_shift_under_attack_is_a_table_of_its_own(grid, tmp_path):
    """CARL's Table 4: how far the attack moves the sentence vector, not scaled like the accuracies."""
    shift = {row["setting"]: row for row in aggregate(grid, "t", trials=20)["pgd:sst2:validation@40 shift"]["rows"]}
    adv = shift["adv"]
    assert adv["metrics"]["cos ε=0.1"]["mean"] == pytest.approx(0.0125)
    assert adv["metrics"]["l2 ε=0.1"]["sd"] == pytest.approx(math.sqrt(0.005))  # 0.8, 0.9
    assert adv["tests"]["cos ε=0.1"]["difference"] == pytest.approx(-0.0125)  # seeds 0-1: −0.01, −0.015
    assert adv["tests"]["l2 ε=0.1"]["difference"] == pytest.approx(-0.25)
    write_report(grid, tmp_path / "report", "t", trials=20)
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "| adv | 2 of 3 (1 unfinished) | 0.0125 ± 0.0035 | 0.8500 ± 0.0707 |" in markdown
    assert "| base | 3 | 0.0250 ± 0.0050 | 1.1000 ± 0.1000 |" in markdown
