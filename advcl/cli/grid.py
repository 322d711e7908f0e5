"""``advcl grid run``, ``status``, ``report``, ``archive`` and ``restore``: an experiment (recipes × overrides ×
seeds, and the evaluations of every finished run) as one TOML file (advcl.grid)."""

from __future__ import annotations

from pathlib import Path

import typer

from advcl.cli.app import JSON_OPTION, app, print_json, print_table

grid_app = typer.Typer(
    help="Experiments as one file: recipes × overrides × seeds, evaluated and aggregated (docs/results/*.toml).",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
app.add_typer(grid_app, name="grid")

GRID_ARGUMENT = typer.Argument(..., help="The grid file (TOML).", exists=False)


@grid_app.command(
    "run",
    epilog="Examples:\n\n"
    "  advcl grid run docs/results/sst2_supervised.toml --dry-run\n\n"
    "  advcl grid run docs/results/sst2_supervised.toml --workers 2\n\n"
    "  advcl grid run docs/results/sentence_embeddings.toml --only simcse --only 'rse-s0'   # and what they need\n\n"
    "  advcl grid run docs/results/sst2_supervised.toml --executor slurm --partition gpu --gpus 1 --time 240",
)
def run(
    grid_file: Path = GRID_ARGUMENT,
    workers: int = typer.Option(1, "--workers", "-w", help="Jobs at once (local executor)."),
    threads: int = typer.Option(0, "--threads", min=0, help="Threads per worker [default: the cores / --workers]."),
    executor: str = typer.Option("local", "--executor", help="local (worker processes here) or slurm (submitit)."),
    partition: str = typer.Option(None, "--partition", help="SLURM partition [default: the grid's [slurm] table]."),
    time_min: int = typer.Option(None, "--time", min=1, help="SLURM time limit per job, minutes."),
    gpus: int = typer.Option(None, "--gpus", min=0, help="GPUs per SLURM job."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List every job, its steps and evaluations; run nothing."),
    only: list[str] = typer.Option(
        [], "--only", help="Only the jobs whose name, setting or method matches this shell pattern (simcse, "
        "'rse-s*'), and what they need; repeatable [default: every job]."),
    as_json: bool = JSON_OPTION,
):
    """Train every run of the grid and evaluate every finished run and model; finished work is skipped and
    interrupted runs resume. Exit 0 when every job succeeded, 1 when some failed (each named, with its log)."""
    import dataclasses

    from advcl.errors import BadInput, RunFailed
    from advcl.grid.local import View, run_local, thread_count
    from advcl.grid.spec import load_grid
    from advcl.grid.steps import pending_steps, stale_settings

    if executor not in ("local", "slurm"):
        raise BadInput(f"--executor must be local or slurm, got {executor!r}")
    grid = load_grid(grid_file)
    jobs = grid.select(only)
    # a SLURM job has the cores it asks for ([slurm] cpus), not this machine's
    threads = thread_count(workers, threads) if executor == "local" else threads or grid.spec.slurm.cpus or 1
    if dry_run:
        listing = [{"job": j.name, "kind": j.kind, "setting": j.setting, "seed": j.seed, "needs": j.needs,
                    "stale": stale_settings(j),
                    "steps": [{"step": s.label, "command": "advcl " + " ".join(s.args)}
                              for s in pending_steps(grid, j)]} for j in jobs]
        if as_json:
            print_json(listing)
            return
        for job in listing:
            seed = f", seed {job['seed']}" if job["seed"] is not None else ""
            needs = f", after {', '.join(job['needs'])}" if job["needs"] else ""
            state = f": cannot run: {job['stale']}" if job["stale"] else "" if job["steps"] else ": nothing left to do"
            print(f"{job['job']} ({job['kind']} of {job['setting']}{seed}{needs}){state}")
            for step in job["steps"]:
                print(f"  {step['step']}: {step['command']}")
        runs = sum(j.kind == "run" for j in jobs)
        evaluations = sum(len(j.evaluations) for j in jobs)
        print(f"{len(jobs)} jobs: {runs} runs, {evaluations} evaluations; "
              f"{sum(1 for j in listing if j['steps'])} with work left")
        return
    grid.output_dir.mkdir(parents=True, exist_ok=True)
    with View(len(jobs)).shown() as view:
        if executor == "local":
            queue = run_local(grid, jobs, workers, threads, view)
        else:
            from advcl.grid.slurm import run_slurm

            overrides = {"partition": partition, "time_min": time_min, "gpus": gpus}
            settings = dataclasses.replace(grid.spec.slurm, **{k: v for k, v in overrides.items() if v is not None})
            queue = run_slurm(grid, jobs, threads, view, settings)
    if as_json:
        print_json({"done": sorted(queue.done), "failed": queue.failed})
    if queue.failed:
        names = ", ".join(sorted(queue.failed))
        raise RunFailed(f"{len(queue.failed)} of {len(jobs)} jobs failed ({names}); why: "
                        f"{grid.state_dir}/JOB/failed.json; run the grid again to retry them")


@grid_app.command(
    "status",
    epilog="Examples:\n\n"
    "  advcl grid status docs/results/agnews_robust.toml\n\n"
    "  advcl grid status docs/results/agnews_robust.toml --json | jq '.jobs[] | select(.state == \"failed\")'",
)
def status(grid_file: Path = GRID_ARGUMENT, as_json: bool = JSON_OPTION):
    """Where the grid stands, from what is on disk (safe while `advcl grid run` works): each job done, training
    (step of total), perturbing, evaluating, waiting or failed (why), its evaluations done, and an estimate of the
    training time left."""
    from advcl.grid.spec import load_grid
    from advcl.grid.status import grid_status

    result = grid_status(load_grid(grid_file, check_recipes=False))
    if as_json:
        print_json(result)
        return
    rows = [[j["job"], j["state"], j["training"], f"{j['evaluations_done']} of {j['evaluations']}",
             j["error"] or ", ".join(label for label in j["left"] if label not in ("train", "resume"))]
            for j in result["jobs"]]
    print_table(str(grid_file), ["job", "state", "training", "evaluations", "left (or why it failed)"], rows)
    counts = ", ".join(f"{n} {state}" for state, n in result["counts"].items() if n)
    print(f"{len(result['jobs'])} jobs: {counts}; evaluations {result['evaluations_done']} of "
          f"{result['evaluations']}; training left: {_training_left(result)}")


def _training_left(result: dict) -> str:
    seconds, unknown = result["training_seconds_left"], result["runs_without_estimate"]
    runs = f"{unknown} run{'s' * (unknown > 1)} with no estimate yet"
    if not seconds:
        return f"unknown ({runs})" if unknown else "none"
    return f"≈ {_duration(seconds)} of one worker's time" + (f", and {runs}" if unknown else "")


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


@grid_app.command(
    "report",
    epilog="Examples:\n\n"
    "  advcl grid report docs/results/sst2_supervised.toml\n\n"
    "  advcl grid report docs/results/sst2_supervised.toml --output paper/tables --seed-test wilcoxon\n\n"
    "  advcl grid report docs/results/agnews_robust.toml --baseline freelb --no-plots "
    "--output docs/results/agnews_robust/vs_freelb",
)
def report(
    grid_file: Path = GRID_ARGUMENT,
    output: Path = typer.Option(None, "--output", "-o", help="Report folder [default: OUTPUT_DIR/_grid/report]."),
    seed_test: str = typer.Option("t", "--seed-test", help="Test over seeds: t (paired t) or wilcoxon."),
    baseline: str = typer.Option(None, "--baseline", help="Test every setting against this method or model "
                                 "instead of the grid file's baseline."),
    trials: int = typer.Option(10_000, min=1, help="Shuffles of the randomisation test."),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Draw accuracy against ε (--no-plots: tables "
                               "only, e.g. a second report of the same runs against another --baseline)."),
    as_json: bool = JSON_OPTION,
):
    """One table per evaluation: mean ± sample s.d. over seeds, n, and against the baseline the effect (the mean
    paired difference) with its 95 % t-interval over seeds and a test (paired t or Wilcoxon over seeds; McNemar
    and randomisation on the per-example predictions); for a robustness evaluation also the shift of the sentence
    vector (cosine and l2 distance) at each ε, and accuracy against ε as PNG, PDF and SVG. Writes report.md and
    report.json; cells with unfinished runs say so."""
    from advcl.runtime.progress import stderr
    from advcl.errors import BadInput
    from advcl.grid.report import refuse_foreign_folder, write_report
    from advcl.grid.spec import load_grid
    from advcl.runs import refuse_run_folder

    if seed_test not in ("t", "wilcoxon"):
        raise BadInput(f"--seed-test must be t or wilcoxon, got {seed_test!r}")
    grid = load_grid(grid_file, check_recipes=False, baseline=baseline)
    output = output or grid.state_dir / "report"
    refuse_run_folder(output)
    refuse_foreign_folder(output)
    result = write_report(grid, output, seed_test, trials, plots)
    if as_json:
        print_json(result)
        return
    print((output / "report.md").read_text(encoding="utf-8"), end="")
    stderr.print(f"wrote {output / 'report.md'}, {output / 'report.json'}"
                 + "".join(f", {output / p}" for p in result["plots"]), soft_wrap=True, highlight=False)


@grid_app.command(
    "archive",
    epilog="Examples:\n\n"
    "  advcl grid archive docs/results/sentence_downstream.toml --output docs/results/sentence_downstream/archive\n\n"
    "  advcl grid archive docs/results/sst2_supervised.toml --only cat --output /project/keep/sst2",
)
def archive(
    grid_file: Path = GRID_ARGUMENT,
    output: Path = typer.Option(..., "--output", "-o", help="The archive folder (new, empty, or an earlier "
                                "archive of this grid, which is brought up to date)."),
    only: list[str] = typer.Option([], "--only", help="Only the jobs matching this shell pattern, and what they "
                                   "need; repeatable [default: every job]."),
    as_json: bool = JSON_OPTION,
):
    """Keep the grid's results without its weights: every finished evaluation's result, and of each completed run
    its config.toml, report.json, metrics.jsonl and predictions (a few hundred kB a job). `advcl grid restore` puts them
    back under the grid's output folder, elsewhere or later, where `advcl grid run` counts them done and
    `advcl grid report` reads them beside new runs."""
    from advcl.grid.archive import archive as archive_grid
    from advcl.grid.spec import load_grid
    from advcl.runs import refuse_run_folder

    grid = load_grid(grid_file, check_recipes=False)
    refuse_run_folder(output)
    result = archive_grid(grid, grid.select(only), output)
    if as_json:
        print_json(result)
        return
    print(f"archived {len(result['archived'])} jobs ({', '.join(result['archived']) or 'none finished'}) into "
          f"{output}: {len(result['files'])} files")


@grid_app.command(
    "restore",
    epilog="Examples:\n\n"
    "  advcl grid restore docs/results/sentence_downstream.toml --from docs/results/sentence_downstream/archive",
)
def restore(
    grid_file: Path = GRID_ARGUMENT,
    source: Path = typer.Option(..., "--from", help="A folder written by `advcl grid archive`."),
    as_json: bool = JSON_OPTION,
):
    """Copy an archive's results back under the grid's output folder, never over a file: one already there with the
    same contents is skipped; one with other contents stops the command before anything is copied."""
    from advcl.grid.archive import restore as restore_grid
    from advcl.grid.spec import load_grid

    grid = load_grid(grid_file, check_recipes=False)
    result = restore_grid(grid, source)
    if as_json:
        print_json(result)
        return
    print(f"restored {len(result['restored'])} files into {grid.output_dir} ({len(result['already_there'])} "
          f"already there); jobs in the archive: {', '.join(result['jobs']) or 'none'}")
