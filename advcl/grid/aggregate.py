"""The numbers of ``advcl grid report``: per evaluation and setting, mean ± sample standard deviation over the
seeds that finished, and tests against the baseline setting.

- Over seeds: the per-seed differences ``d`` = setting − baseline at the same seed, their mean (the effect) and
  its 95 % t-interval ``mean(d) ± t_{0.975, n−1} · s_d / √n`` (for either test), and the two-sided p of the paired
  t-test (Student 1908; ``t = mean(d) / (s_d / √n)``, n − 1 degrees of freedom) or of the Wilcoxon signed-rank test
  (Wilcoxon 1945), through scipy. A model's single result (an untouched encoder, no seed) is paired with each seed
  of the other side, whether it is the baseline or the setting; a seeded run is paired only at its own seed.
- Per example (clean evaluations, whose per-example predictions are kept): McNemar's test for accuracy and
  approximate randomisation for macro-F1 and MCC between each seed and the baseline's same seed, with
  ``advcl report``'s code (advcl.evaluation.significance, advcl.evaluation.predictions).
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from advcl.grid.spec import Evaluation, Grid, Job
from advcl.grid.steps import result_path

PERCENT_KINDS = ("clean", "robust")  # results in [0, 1], shown × 100; suites and attacks report their own scale
RANDOMISED = ("macro_f1", "mcc")


def metrics_of(evaluation: Evaluation, result: dict) -> dict[str, float]:
    """The numbers of one evaluation's result (its ``--json`` output), in table order."""
    if evaluation.kind == "clean":
        return {m: result[m] for m in ("accuracy", "macro_f1", "mcc")}
    if evaluation.kind == "robust":
        attacked = result["robustness"]
        return {"clean": attacked["clean_accuracy"]} | {f"ε={r['eps']:g}": r["accuracy"] for r in attacked["results"]}
    if evaluation.kind == "suite":
        key = "spearman" if evaluation.suite == "sts" else "accuracy"
        scores = {task.split(":")[0]: score[key] for task, score in result["tasks"].items()}
        return scores | {"average": result["average"]}
    return {k: v for k, v in result["summary"].items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def shift_of(evaluation: Evaluation, result: dict) -> dict[str, float]:
    """How far the attack moved the sentence vector at each ε (CARL Table 4): mean cosine distance ``cos ε=…`` and
    mean euclidean distance ``l2 ε=…`` between clean and adversarial representations."""
    shifts = {}
    for r in result["robustness"]["results"]:
        if "cosine_distance" in r:
            shifts[f"cos ε={r['eps']:g}"] = r["cosine_distance"]
            shifts[f"l2 ε={r['eps']:g}"] = r["euclidean_distance"]
    return shifts


def spread(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (n − 1; None for a single value)."""
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else None


def constant(differences: list[float]) -> bool:
    """Every paired difference the same, up to float rounding (accuracies are k/n: 0.644 − 0.600 and 0.670 − 0.626
    differ in the last bit, and a t-test would read that as a certain effect)."""
    scale = max(1.0, *(abs(d) for d in differences))
    return max(differences) - min(differences) <= 1e-9 * scale


def t_interval(differences: list[float]) -> list[float] | None:
    """95 % t-interval of the mean difference, ``mean ± t_{0.975, n−1} · s / √n``; None under 2 differences, no
    width for :func:`constant` differences."""
    from scipy import stats

    if len(differences) < 2:
        return None
    mean, sd = spread(differences)
    if constant(differences):
        return [mean, mean]
    half = float(stats.t.ppf(0.975, len(differences) - 1)) * sd / math.sqrt(len(differences))
    return [mean - half, mean + half]


def paired(ours: dict, theirs: dict) -> dict:
    """``{seed: (our value, their value)}`` at the seeds both have; a single unseeded result (key None, a model)
    is paired with each seed of the other side."""
    if None in theirs:
        return {s: (v, theirs[None]) for s, v in ours.items()}
    if None in ours:
        return {s: (ours[None], v) for s, v in theirs.items()}
    return {s: (v, theirs[s]) for s, v in ours.items() if s in theirs}


def seed_test(ours: list[float], theirs: list[float], test: str) -> float | None:
    """Two-sided p of the paired test over seeds; None when it is undefined (under 2 pairs, no variation)."""
    from scipy import stats

    differences = [a - b for a, b in zip(ours, theirs)]
    if len(differences) < 2 or constant(differences):
        return None
    if test == "wilcoxon":
        p = stats.wilcoxon(differences).pvalue
    else:
        p = stats.ttest_rel(ours, theirs).pvalue
    return None if math.isnan(p) else float(p)


def example_tests(baseline: Path, other: Path, trials: int, seed: int) -> dict:
    """McNemar (accuracy) and randomisation (macro-F1, MCC) p-values on two prediction files of the same examples."""
    from advcl.evaluation.predictions import pair_predictions
    from advcl.evaluation.significance import mcnemar, randomisation_test

    paired = pair_predictions(baseline, other)
    tests = {"examples": len(paired.labels),
             "mcnemar_p": mcnemar(paired.a == paired.labels, paired.b == paired.labels)["p_value"]}
    shuffled = randomisation_test(paired.labels, paired.a, paired.b, paired.num_classes, RANDOMISED, trials, seed)
    return tests | {f"{m}_p": shuffled[m]["p_value"] for m in RANDOMISED}


@dataclass
class Cell:
    """One setting's results on one evaluation."""

    setting: str
    runs: list[str]
    values: dict[str, dict] = field(default_factory=dict)  # metric -> {seed or job name: value}
    predictions: dict = field(default_factory=dict)  # seed (or None) -> predictions file
    examples: int | None = None
    missing: list[str] = field(default_factory=list)


def read_cell(grid: Grid, evaluation: Evaluation, setting: str, jobs: list[Job], numbers=metrics_of) -> Cell:
    """One setting's ``numbers`` (:func:`metrics_of`, :func:`shift_of`) on one evaluation, per seed."""
    cell = Cell(setting, [j.name for j in jobs])
    for job in jobs:
        path = result_path(grid, job, evaluation)
        if not path.is_file():
            cell.missing.append(job.name)
            continue
        result = json.loads(path.read_text(encoding="utf-8"))
        for metric, value in numbers(evaluation, result).items():
            cell.values.setdefault(metric, {})[job.seed] = value
        if evaluation.kind == "clean" and result.get("predictions"):
            cell.predictions[job.seed] = Path(result["predictions"])
        cell.examples = (result.get("robustness") or {}).get("examples") or _examples(result) or cell.examples
    return cell


def _examples(result: dict) -> int | None:
    sample = result.get("sample") or result.get("summary", {})
    return sample.get("examples") if isinstance(sample, dict) else None


def baseline_of(grid: Grid, job: Job) -> str | None:
    """The setting a job's setting is tested against: the baseline method at the same axis values (or the
    baseline model); None for the baseline itself or without a baseline."""
    base = grid.spec.baseline
    if not base or job.method == base:
        return None
    if any(j.method == base and j.kind == "model" for j in grid.jobs):
        return base
    return base + job.setting[len(job.method):]


def compare(cell: Cell, base: Cell, test: str, trials: int, seed: int) -> dict:
    """Per metric: the mean of the paired differences, its 95 % t-interval (``ci95``, None under 2 pairs), the
    seeds paired and the seed test's p; for clean evaluations the per-example tests of each paired seed."""
    tests = {}
    for metric, values in cell.values.items():
        pairs = list(paired(values, base.values.get(metric, {})).values())
        if not pairs:
            continue
        differences = [a - b for a, b in pairs]
        tests[metric] = {"difference": statistics.mean(differences), "ci95": t_interval(differences),
                         "ci_method": "t", "pairs": len(pairs), "test": test,
                         "p": seed_test([a for a, _ in pairs], [b for _, b in pairs], test)}
    per_example = {str(s): example_tests(theirs, path, trials, seed)
                   for s, (path, theirs) in paired(cell.predictions, base.predictions).items()}
    if per_example:
        tests["per_example"] = per_example
    return tests


def training_rows(grid: Grid) -> list[dict]:
    """Per trained setting: the runs completed of all, and mean ± s.d. of their training seconds and steps."""
    rows: dict[str, dict] = {}
    for job in grid.jobs:
        if job.kind != "run" or not job.evaluations:
            continue
        row = rows.setdefault(job.setting, {"setting": job.setting, "of": 0, "train_seconds": [], "steps": []})
        row["of"] += 1
        report = Path(job.model, "report.json")
        data = json.loads(report.read_text(encoding="utf-8")) if report.is_file() else {}
        if data.get("status") == "completed":
            row["train_seconds"].append(data.get("train_seconds") or 0.0)
            row["steps"].append(data.get("step") or 0)
    for row in rows.values():
        row["n"] = len(row["steps"])
        for key in ("train_seconds", "steps"):
            mean, sd = spread(row[key]) if row[key] else (None, None)
            row[key] = {"mean": mean, "sd": sd, "n": row["n"]}
    return list(rows.values())


def aggregate(grid: Grid, test: str = "t", trials: int = 10_000, seed: int = 0) -> dict:
    """``{evaluation label: {"kind", "percent", "rows": [...]}}``: a row per evaluated setting, in grid order; a
    robustness evaluation adds ``"LABEL shift"`` (kind ``shift``): the representation shift at each ε."""
    settings: dict[str, list[Job]] = {}
    for job in grid.jobs:
        if job.evaluations:
            settings.setdefault(job.setting, []).append(job)
    tables = {}
    for evaluation in grid.spec.evaluate:
        tables[evaluation.label] = _table(grid, evaluation, settings, metrics_of, test, trials, seed) | {
            "kind": evaluation.kind, "percent": evaluation.kind in PERCENT_KINDS}
        if evaluation.kind == "robust":
            shift = _table(grid, evaluation, settings, shift_of, test, trials, seed)
            if any(row["metrics"] for row in shift["rows"]):
                tables[f"{evaluation.label} shift"] = shift | {
                    "kind": "shift", "percent": False, "digits": 4,
                    "what": "mean cosine (cos) and euclidean (l2) distance between clean and attacked sentence vectors"}
    return tables


def _table(grid: Grid, evaluation: Evaluation, settings: dict[str, list[Job]], numbers, test: str, trials: int,
           seed: int) -> dict:
    """Rows of one evaluation's ``numbers`` per setting, each tested against its baseline."""
    cells = {s: read_cell(grid, evaluation, s, jobs, numbers) for s, jobs in settings.items()}
    rows = []
    for setting, cell in cells.items():
        row = {"setting": setting, "runs": cell.runs, "n": len(cell.runs) - len(cell.missing),
               "of": len(cell.runs), "unfinished": cell.missing, "examples": cell.examples, "metrics": {}}
        for metric, values in cell.values.items():
            mean, sd = spread(list(values.values()))
            row["metrics"][metric] = {"mean": mean, "sd": sd, "n": len(values)}
        base = baseline_of(grid, settings[setting][0])
        if base is not None and base in cells:
            row["baseline"] = base
            row["tests"] = compare(cell, cells[base], test, trials, seed)
        rows.append(row)
    return {"rows": rows}
