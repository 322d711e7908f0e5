"""The advcl commands of one grid job, and running them one after another in fresh processes.

A job's steps are worked out from what is on disk when it starts, so that running a grid again does only
what is missing: a run folder whose report.json says "completed" is not trained again, one that exists
otherwise is continued with ``advcl train --resume`` (an interrupted or killed run), and an evaluation whose
result file exists is not repeated. Each evaluation's ``--json`` output is kept as
``OUTPUT_DIR/_grid/JOB/EVALUATION.json`` (written once the command succeeded, by a rename, so a file there is a
finished evaluation); a step's stderr goes to ``…/JOB/STEP.log``; a failed job leaves ``…/JOB/failed.json`` until a
step of it starts again.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from advcl.grid.spec import Evaluation, Grid, Job, flatten
from advcl.runtime.atomic import write_text


@dataclass
class Step:
    label: str  # "train", "resume", "perturb" or the evaluation's label
    args: list[str]  # advcl's arguments
    result: Path | None = None  # where the --json stdout is kept (evaluations, perturb)


@dataclass
class Outcome:
    job: str
    ok: bool
    error: str = ""
    steps: list[str] = field(default_factory=list)  # the steps it ran (not those it found done)


def file_label(label: str) -> str:
    """An evaluation label as a file name: ``sst2:validation@300`` -> ``sst2_validation_300``."""
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", label).strip("_")


def job_dir(grid: Grid, job: Job) -> Path:
    return grid.state_dir / job.name


def result_path(grid: Grid, job: Job, evaluation: Evaluation) -> Path:
    return job_dir(grid, job) / f"{file_label(evaluation.label)}.json"


def train_done(job: Job) -> bool:
    from advcl.runs import RunFolder

    run = RunFolder(job.model)
    if not run.report.is_file():
        return False
    try:
        return json.loads(run.report.read_text(encoding="utf-8")).get("status") == "completed"
    except (OSError, ValueError):
        return False


def stale_settings(job: Job) -> str:
    """Why a run folder already there is not this job's run: the first recipe key whose stored value differs from
    what the grid now asks (a recipe or a ``set`` edited since); "" when they agree or there is no folder yet. Keys
    only one side has (a field added to the schema since) are not compared."""
    config = Path(job.model, "config.toml")
    if job.kind != "run" or not config.is_file():
        return ""
    from advcl.config.recipe import load_recipe, recipe_to_toml

    try:
        stored = flatten(tomllib.loads(config.read_text(encoding="utf-8")))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return f"{config} is not valid TOML (the run folder is damaged)"
    wanted = flatten(tomllib.loads(recipe_to_toml(load_recipe(job.recipe, job.overrides))))
    for key in sorted(stored.keys() & wanted.keys()):
        if stored[key] != wanted[key]:
            return (f"run folder {job.model} was made with other settings than the grid asks ({key} = "
                    f"{stored[key]!r} there, {wanted[key]!r} in the grid): move it away or change output_dir")
    return ""


def evaluation_args(grid: Grid, job: Job, e: Evaluation) -> list[str]:
    """``advcl eval`` / ``advcl attack`` arguments of one evaluation of one job's model."""
    common = ["--model", job.model, "--checkpoint", e.checkpoint, "--json"]
    common += ["--max-length", str(e.max_length)] if e.max_length else []
    if e.kind == "attack":
        folder = job_dir(grid, job) / f"attack-{file_label(e.label)}"  # resumable; kept beside the result
        return ["attack", "--attack", e.attack, "--data", e.data, "--num-examples", str(e.num_examples),
                "--seed", str(e.seed), "--output", str(folder), *common]
    args = ["eval", *common, "--max-examples", str(e.max_examples)]
    if e.kind == "suite":
        return args + ["--suite", e.suite, "--protocol", e.protocol] + (["--tasks", e.tasks] if e.tasks else [])
    args += ["--data", e.data]
    if job.kind == "model":  # a run folder keeps its predictions in RUN/predictions/
        args += ["--predictions", str(job_dir(grid, job) / f"{file_label(e.label)}.predictions.jsonl")]
    if e.kind == "robust":
        args += ["--robust", e.robust]
        args += ["--eps", ",".join(f"{v:g}" for v in e.eps)] if e.eps else []
        args += ["--steps", str(e.steps)] if e.steps else []
        args += ["--norm", e.norm] if e.norm else []
    return args


def pending_steps(grid: Grid, job: Job) -> list[Step]:
    """What is left of ``job``, from what is on disk now."""
    steps = []
    if job.kind == "perturb":
        p = job.perturb
        result = job_dir(grid, job) / "perturb.json"
        if not result.is_file():  # advcl perturb resumes in its folder by itself
            steps.append(Step("perturb", ["perturb", "--attack", p.attack, "--model", p.model, "--data", p.data,
                                          "--num-examples", str(p.num_examples), "--seed", str(p.seed),
                                          "--output", str(grid.output_dir / p.name), "--json"], result))
        return steps
    if job.kind == "run" and not train_done(job):
        if Path(job.model, "config.toml").is_file():
            steps.append(Step("resume", ["train", "--resume", job.model]))
        else:
            steps.append(Step("train", ["train", "--recipe", job.recipe,
                                        *(a for o in job.overrides for a in ("--set", o))]))
    for e in job.evaluations:
        result = result_path(grid, job, e)
        if not result.is_file():
            steps.append(Step(e.label, evaluation_args(grid, job, e), result))
    return steps


def worker_env(threads: int) -> dict[str, str]:
    """The environment of a step's process: its own thread count (N workers × threads ≤ cores)."""
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(threads)
    env["TOKENIZERS_PARALLELISM"] = "false"
    return env


def start_step(grid: Grid, job: Job, step: Step, threads: int) -> subprocess.Popen:
    """Start ``advcl ARGS`` in its own session (a Ctrl-C at the terminal reaches the grid, which passes it on
    once), stdout to the result's temporary file, stderr to the step's log."""
    folder = job_dir(grid, job)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "failed.json").unlink(missing_ok=True)  # worked on again: no longer failed (grid status)
    log = open(folder / f"{file_label(step.label)}.log", "w", encoding="utf-8")
    out = open(_partial(step), "w", encoding="utf-8") if step.result else subprocess.DEVNULL
    try:
        return subprocess.Popen([sys.executable, "-m", "advcl", *step.args], stdout=out, stderr=log,
                                env=worker_env(threads), start_new_session=True)
    finally:
        log.close()
        if step.result:
            out.close()


def _partial(step: Step) -> Path:
    return step.result.with_name(f".{step.result.name}.partial")


def finish_step(grid: Grid, job: Job, step: Step, returncode: int) -> str:
    """After the step's process ended: keep its result (exit 0) or say why it failed ("" = it succeeded)."""
    if returncode == 0:
        if step.result:
            text = _partial(step).read_text(encoding="utf-8", errors="replace")
            try:  # the --json object (anything a library printed before it is dropped)
                result = json.loads(text[text.find("{"):])
            except ValueError:
                return f"{step.label}: its output is not the JSON result it should print"
            write_text(step.result, json.dumps(result, indent=2) + "\n")
            _partial(step).unlink()
        return ""
    if step.result:
        _partial(step).unlink(missing_ok=True)
    if returncode < 0:
        return f"{step.label}: killed by signal {-returncode}"
    log = job_dir(grid, job) / f"{file_label(step.label)}.log"
    lines = [ln.strip() for ln in log.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    reason = next((ln for ln in reversed(lines) if ln.startswith("error:")), lines[-1] if lines else "no output")
    return f"{step.label}: exit {returncode}: {reason[:300]} (log: {log})"


def record(grid: Grid, job: Job, error: str) -> None:
    """failed.json with the error of a failed job; removed once the job succeeds."""
    failed = job_dir(grid, job) / "failed.json"
    if error:
        failed.parent.mkdir(parents=True, exist_ok=True)
        failed.write_text(json.dumps({"job": job.name, "error": error}, indent=2) + "\n", encoding="utf-8")
    else:
        failed.unlink(missing_ok=True)


def run_job(grid: Grid, job: Job, threads: int, cwd: str | None = None) -> Outcome:
    """Every pending step of ``job`` in turn, in this process's children (the SLURM executor's job body), from
    ``cwd`` (the grid's relative paths are the submitting folder's)."""
    if cwd is not None:
        os.chdir(cwd)
    done, stale = [], stale_settings(job)
    if stale:
        record(grid, job, stale)
        return Outcome(job.name, False, stale)
    for step in pending_steps(grid, job):
        process = start_step(grid, job, step, threads)
        error = finish_step(grid, job, step, process.wait())
        if error:
            record(grid, job, error)
            return Outcome(job.name, False, error, done)
        done.append(step.label)
    record(grid, job, "")
    return Outcome(job.name, True, "", done)
