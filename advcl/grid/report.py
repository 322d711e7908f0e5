"""``advcl grid report``: report.md and report.json (advcl.grid.aggregate's tables) and, per embedding-space
robustness evaluation, accuracy against ε with ± s.d. error bars over seeds (advcl.plots) as PNG, PDF and SVG."""

from __future__ import annotations

import json
from pathlib import Path

from advcl.grid.aggregate import aggregate, training_rows
from advcl.grid.spec import Grid
from advcl.grid.steps import file_label

TEST_NAMES = {"t": "paired t-test", "wilcoxon": "Wilcoxon signed-rank test"}


def cell_text(metric: dict, percent: bool = False, digits: int | None = None) -> str:
    """``85.1 ± 0.9`` (× 100 for accuracies); a single result alone."""
    scale, digits = (100, 1 if digits is None else digits) if percent else (1, 2 if digits is None else digits)
    text = f"{scale * metric['mean']:.{digits}f}"
    return text if metric["sd"] is None else f"{text} ± {scale * metric['sd']:.{digits}f}"


def _p(value) -> str:
    return "–" if value is None else f"{value:.3f}" if value >= 1e-3 else f"{value:.1e}"


def comparison_text(test: dict, percent: bool = False, digits: int = 2) -> str:
    """``+1.40 [-0.99, +3.80] (0.139)``: the mean difference, its 95 % interval (left out under 2 pairs) and p.
    Where every seed gave the same difference the interval has no width and the test is undefined: said so."""
    scale = 100 if percent else 1
    if test["ci95"] is not None and test["ci95"][0] == test["ci95"][1]:
        return f"{scale * test['difference']:+.{digits}f} (the same at every seed: no interval, no test)"
    bounds = "" if test["ci95"] is None else ", ".join(f"{scale * x:+.{digits}f}" for x in test["ci95"])
    interval = f" [{bounds}]" if bounds else ""
    return f"{scale * test['difference']:+.{digits}f}{interval} ({_p(test['p'])})"


def _markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [f"| {' | '.join(header)} |", "|---" * len(header) + "|"] + [f"| {' | '.join(r)} |" for r in rows]


def table_markdown(label: str, table: dict, test: str) -> list[str]:
    metrics = list(dict.fromkeys(m for row in table["rows"] for m in row["metrics"]))
    examples = sorted({row["examples"] for row in table["rows"] if row["examples"]})
    lines = [f"## {label}", ""]
    if examples:
        lines += [f"{table.get('what', table['kind'] + ' evaluation')} on {', '.join(map(str, examples))} examples"
                  + (" (× 100)" if table["percent"] else "") + "; mean ± sample s.d. over seeds.", ""]
    rows = []
    for row in table["rows"]:
        n = f"{row['n']}" + (f" of {row['of']} ({len(row['unfinished'])} unfinished)" if row["unfinished"] else "")
        rows.append([row["setting"], n, *(cell_text(row["metrics"][m], table["percent"], table.get("digits"))
                                          if m in row["metrics"] else "unfinished" for m in metrics)])
    lines += _markdown_table(["setting", "n", *metrics], rows)
    tested = [row for row in table["rows"] if "baseline" in row]
    if tested and metrics:
        lines += [""] + comparison_markdown(tested, metrics, table["percent"], test, table.get("digits") or 2)
    return lines + [""]


def comparison_markdown(tested: list[dict], metrics: list[str], percent: bool, test: str,
                        digits: int = 2) -> list[str]:
    """Each setting against its baseline: ``Δ [lo, hi] (p)`` per metric, "unfinished" where no seed pairs."""
    per_example = any("per_example" in r["tests"] for r in tested)
    pairs = sorted({t["pairs"] for r in tested for m, t in r["tests"].items() if m != "per_example"})
    mcnemar = ("; McNemar p (accuracy) on the per-example predictions of each seed (report.json adds the "
               "randomisation test's p for macro-F1 and MCC)") if per_example else ""
    caption = ("Against the baseline (same seed paired; a model's single result with each seed): Δ, the mean of the "
               f"paired differences setting − baseline{' (× 100)' if percent else ''}; [lo, hi], its 95 % t-interval "
               f"over seeds (n = {', '.join(map(str, pairs)) or '–'} pairs; no interval under 2); p, the "
               f"{TEST_NAMES[test]} over seeds{mcnemar}.")
    rows = []
    for row in tested:
        tests = row["tests"]
        cells = [comparison_text(tests[m], percent, digits) if m in tests else "unfinished" for m in metrics]
        if per_example:
            cells.append(", ".join(_p(t["mcnemar_p"]) for t in tests.get("per_example", {}).values()) or "–")
        rows.append([row["setting"], row["baseline"], *cells])
    header = ["setting", "baseline", *(f"{m} Δ [95 % CI] (p)" for m in metrics)]
    return [caption, ""] + _markdown_table(header + ["McNemar p per seed"] * per_example, rows)


def robustness_rows(label: str, table: dict, grid: Grid) -> tuple[list[dict], dict[str, list[str]]]:
    """advcl.plots.robustness_plot's rows (one per run and ε) and its seed groups (setting -> runs)."""
    evaluation = next(e for e in grid.spec.evaluate if e.label == label)
    rows, groups = [], {}
    for row in table["rows"]:
        for job_name in row["runs"]:
            path = grid.state_dir / job_name / f"{file_label(label)}.json"
            if not path.is_file():
                continue
            attacked = json.loads(path.read_text(encoding="utf-8"))["robustness"]
            groups.setdefault(row["setting"], []).append(job_name)
            rows += [{"run": job_name, "data": evaluation.data, "eps": r["eps"], "accuracy": r["accuracy"],
                      "clean_accuracy": attacked["clean_accuracy"], "steps": attacked["steps"],
                      "norm": attacked["norm"], "examples": attacked.get("examples")} for r in attacked["results"]]
    return rows, groups


def refuse_foreign_folder(output: Path) -> None:
    """The report replaces only its own files: a folder that holds anything else and no grid report is refused."""
    from advcl.errors import BadInput

    if output.is_file():
        raise BadInput(f"--output {output} is a file, not a folder")
    if output.is_dir() and any(output.iterdir()):
        try:
            ours = "evaluations" in json.loads((output / "report.json").read_text(encoding="utf-8"))
        except (OSError, ValueError, TypeError):
            ours = False
        if not ours:
            raise BadInput(f"--output {output} holds other files and no grid report: give an empty or new folder")


def write_report(grid: Grid, output: Path, test: str = "t", trials: int = 10_000, plots: bool = True) -> dict:
    """Aggregate, draw (unless not ``plots``) and write; returns what report.json holds."""
    tables = aggregate(grid, test, trials)
    output.mkdir(parents=True, exist_ok=True)
    for old in output.glob("robustness_*"):  # an earlier report's plots (refuse_foreign_folder: this folder is ours)
        if old.suffix in (".png", ".pdf", ".svg"):
            old.unlink()
    result = {"grid": str(grid.path), "baseline": grid.spec.baseline or None, "seed_test": test, "trials": trials,
              "evaluations": tables, "plots": []}
    parts = [f"# {grid.path.stem}", "", f"Grid {grid.path}; runs in {grid.output_dir}. Baseline: "
             f"{grid.spec.baseline or 'none'}.", ""]
    result["training"] = training_rows(grid)
    if result["training"]:
        parts += ["## training", "", "Runs completed of all, and their training time and steps (mean ± s.d.).", ""]
        parts += _markdown_table(["setting", "n", "train s", "steps"], [
            [row["setting"], f"{row['n']} of {row['of']}"]
            + ["unfinished" if row[k]["mean"] is None else cell_text(row[k], digits=d)
               for k, d in (("train_seconds", 1), ("steps", 0))] for row in result["training"]])
        parts.append("")
    for label, table in tables.items():
        parts += table_markdown(label, table, test)
        if table["kind"] != "robust" or not plots:
            continue
        rows, groups = robustness_rows(label, table, grid)
        if not rows:
            continue
        from advcl.plots import robustness_plot

        stem = output / f"robustness_{file_label(label)}"
        written = [path for suffix in (".png", ".svg")
                   for path in robustness_plot(rows, stem.with_suffix(suffix), groups)]
        result["plots"] += [p.name for p in written]
        seeds = sorted({len(members) for members in groups.values()})
        examples = sorted({r["examples"] for r in rows if r["examples"]})
        parts += [f"![accuracy under attack against ε]({stem.name}.png)", "",
                  f"*Accuracy under the attack against ε (0 = clean): mean ± sample s.d. over "
                  f"n = {', '.join(map(str, seeds))} seeds per setting, on {', '.join(map(str, examples))} examples. "
                  f"Vector: [{stem.name}.pdf]({stem.name}.pdf), [{stem.name}.svg]({stem.name}.svg).*", ""]
    (output / "report.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (output / "report.md").write_text("\n".join(parts), encoding="utf-8")
    return result
