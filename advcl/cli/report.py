from __future__ import annotations

from pathlib import Path

import typer

from advcl.cli.app import JSON_OPTION, app, print_json, print_table
from advcl.runtime.progress import stderr


@app.command(
    epilog="Examples:\n\n"
    "  advcl eval --model runs/vanilla_sst2 --data sst2:validation --robust pgd\n\n"
    "  advcl eval --model runs/carl_sst2 --data sst2:validation --robust pgd\n\n"
    "  advcl report runs/vanilla_sst2 runs/carl_sst2 --output reports/sst2\n\n"
    "  advcl report runs/* --output reports/all --overwrite --json | jq '.significance'"
)
def report(
    runs: list[Path] = typer.Argument(..., help="Run folders; the first is the baseline of the significance tests. "
                                      "Other folders among them (advcl perturb's datasets) are skipped with a note."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for report.md, report.json and the plots (PNG, and PDF for papers)."),
    trials: int = typer.Option(10_000, min=100, help="Shuffles of the randomisation test (macro-F1, MCC)."),
    seed: int = typer.Option(0, help="Seed of the randomisation test."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the report in an existing output folder."),
    as_json: bool = JSON_OPTION,
):
    """Compare runs: a markdown report with training curves, the robustness curve (accuracy against ε), text-attack
    summaries and significance tests against the first run (McNemar for accuracy, Fisher randomisation for F1/MCC).

    Significance needs per-example predictions on the same evaluation set: run `advcl eval` on each run first.
    Runs that differ only in their seed are drawn as their mean with ± one standard deviation.
    """
    from advcl.report import build_report
    from advcl.runs import refuse_run_folder

    refuse_run_folder(output)  # its report.json would replace the run's
    result = build_report(runs, output, trials, seed, overwrite)
    for path, why in result["skipped"].items():
        stderr.print(f"note: skipped {path}: {why}", highlight=False, soft_wrap=True)
    if result["skipped"]:
        stderr.print(f"note: the baseline is {result['runs'][0]['run']}", highlight=False, soft_wrap=True)
    if as_json:
        print_json(result)
        return
    print_table("runs", ["run", "objective", "status", "best", "accuracy", "macro-F1", "MCC"],
                [[r["run"], r["objective"], r["status"], r["best_metric"], r["accuracy"], r["macro_f1"], r["mcc"]]
                 for r in result["runs"]])
    if result["significance"]:
        print_table("significance against the baseline", ["data", "sample", "run", "McNemar p (accuracy)",
                                                           "p (macro-F1)", "p (MCC)"],
                    [[r["data"], r["sample"], r["run"], r["mcnemar_p"], r["macro_f1_p"], r["mcc_p"]]
                     for r in result["significance"]])
    plots = ", ".join(str(output / plot) for plot in result["plots"]) or "no plots"
    stderr.print(f"wrote {output / 'report.md'}, {output / 'report.json'} and {plots}", soft_wrap=True)
