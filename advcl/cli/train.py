from __future__ import annotations

from pathlib import Path

import typer

from advcl.cli.app import JSON_OPTION, app, print_json, print_table
from advcl.completion import recipe_files, recipe_overrides


@app.command(
    epilog="Examples:\n\n"
    "  advcl train --recipe recipes/vanilla_sst2.toml\n\n"
    "  advcl train --recipe recipes/vanilla_sst2.toml --set train.lr=2e-5 --set data.max_train_examples=2000\n\n"
    "  advcl train --recipe recipes/vanilla_sst2.toml --dry-run\n\n"
    "  advcl train --resume runs/vanilla_sst2"
)
def train(
    recipe: Path = typer.Option(None, "--recipe", "-r", help="Recipe TOML file.", autocompletion=recipe_files),
    set_: list[str] = typer.Option(
        [], "--set", "-s", help="Override a recipe field: section.key=value (repeatable).", autocompletion=recipe_overrides
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved recipe and exit."),
    resume: Path = typer.Option(None, "--resume", help="Continue an interrupted run folder from its last checkpoint."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing run folder of the same name."),
    as_json: bool = JSON_OPTION,
):
    """Train an encoder with the objective a recipe names; writes a run folder."""
    from advcl.config.recipe import check_readout, load_recipe, recipe_to_toml
    from advcl.data.adversarial_rows import describe as adversarial_rows_line
    from advcl.errors import BadInput

    if resume is not None:
        if recipe is not None or set_:
            raise BadInput("--resume takes the recipe stored in the run folder; drop --recipe/--set")
        from advcl.engine.session import resume_training

        report = resume_training(resume)
        run_dir = str(resume)
    else:
        if recipe is None:
            raise BadInput("give --recipe FILE (or --resume RUN_DIR)")
        resolved = load_recipe(recipe, set_)
        if dry_run:
            check_readout(resolved)
            print(recipe_to_toml(resolved), end="")
            return
        from advcl.engine.session import run_folder_for, start_training  # torch: after the recipe is checked

        run_dir = str(run_folder_for(resolved).path)
        report = start_training(resolved, overwrite)
    report["run_dir"] = run_dir
    if as_json:
        print_json(report)
        return
    rows = [
        ["run folder", run_dir],
        ["status", report["status"]],
        ["steps", f"{report['step']}/{report['total_steps']}"],
        ["examples seen", report["examples_seen"]],
        ["train time (s)", report["train_seconds"]],
    ]
    if report.get("adversarial_rows"):  # objectives on real adversarial text: rows per attack status
        rows.append(["adversarial rows", adversarial_rows_line(report["adversarial_rows"])])
    if report.get("best_metric") is not None:
        rows.append([f"best {report['select_metric']}", f"{report['best_metric']:.4f} (step {report['best_step']})"])
    print_table("training finished", ["", "value"], rows)
